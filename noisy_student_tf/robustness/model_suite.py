"""The robustness suite on saved models, cached, and its comparison table.

The suite and the attacks work on PIXELS, float32 on the 0-255 scale at
the model's input size (docs/reference/related_methods.md section 4.5:
attack in pixel space, normalisation inside the model), so each model's
eval pp string is split at its first `normalize` / `value_range`:

    decode(channels=1)|pad_to_size(32) | normalize("fashion_mnist")
    \\____ pp_fn: raw image -> uint8 pixels / \\__ logits_fn: batched __/

`keep` / `onehot` only touch labels and are dropped (`pixel_views`). Each
model's report is cached as `robustness.json` in a directory the caller
names (written atomically with the settings it was computed with), so a
resumed run and a rerun of the script skip finished models. Released data
(CIFAR-10-C `.npy`, TFDS `cifar10_corrupted` / `imagenet2012_corrupted`,
`imagenet_a`) are used when the robustness settings name them. Settings
default to `configs.common.ROBUSTNESS_DEFAULTS`.
"""

import json
import os

import ml_collections
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.configs import common as config_common
from noisy_student_tf.data import sources
from noisy_student_tf.robustness import frost as frost_lib
from noisy_student_tf.robustness import pixel_views
from noisy_student_tf.robustness import suite
from noisy_student_tf.training import checkpoints

CACHE_FILE = "robustness.json"
PLOT_FILE = "robustness.png"
# Bump when a change makes cached reports stale.
_CACHE_VERSION = 1
# Released data sets that decide the corruption constants themselves.
_RELEASED_CONSTANTS = {"cifar10_corrupted": "cifar",
                       "imagenet2012_corrupted": "imagenet"}


# === One model ===


def _as_dict(config):
    if isinstance(config, ml_collections.ConfigDict):
        return config.to_dict()
    return dict(config)


def resolve_config(robustness_config):
    """`configs.common.robustness_config()` updated with the given settings.

    Raises:
      ValueError: an unknown setting (a typo would silently do nothing).
    """
    settings = _as_dict(robustness_config or {})
    defaults = config_common.robustness_config().to_dict()
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f"unknown robustness settings {unknown}; valid: "
                         f"{sorted(defaults)}")
    return ml_collections.ConfigDict(dict(defaults, **settings),
                                     type_safe=False)


def _cache_key(model_path, eval_source_config, eval_pp_string, rcfg):
    stat = tf.io.gfile.stat(model_path)
    settings = {k: v for k, v in rcfg.items() if k != "enabled"}
    key = {"version": _CACHE_VERSION,
           "model": os.path.basename(model_path),
           "model_bytes": stat.length, "model_mtime_ns": stat.mtime_nsec,
           "eval_source": eval_source_config, "eval_pp": eval_pp_string,
           "settings": settings,
           # photographs vs synthetic frost changes the corruption numbers
           "frost": frost_lib.describe()}
    # JSON round trip: tuples and lists, ConfigDicts and dicts compare equal.
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def _constants(rcfg, pixel_shape):
    released = _RELEASED_CONSTANTS.get(rcfg.get("tfds_name"))
    if rcfg.get("cifar10_c_dir"):
        released = "cifar"
    if released:
        return released  # the data's own benchmark, whatever the config
    if rcfg.constants != "auto":
        return rcfg.constants
    return "cifar" if max(pixel_shape[:2]) <= 64 else "imagenet"


def evaluate_model_robustness(model_path, eval_source_config, eval_pp_string,
                              robustness_config, workdir_for_cache=None,
                              progress=True):
    """Runs the robustness suite on one saved model (or reads its cache).

    Args:
      model_path: a `.keras` model written by a stage.
      eval_source_config: source config (see `sources.make_source`) of the
        clean labelled images; the first `num_examples` are used.
      eval_pp_string: the model's eval pp string.
      robustness_config: settings as in `configs.common.robustness_config`.
      workdir_for_cache: directory for `robustness.json` (None: no cache).
        A cache computed with other settings, another eval pp or source,
        or another model file is recomputed.
      progress: show progress bars.

    Returns:
      The `run_robustness_suite` report, plus "imagenet_a" when
      `tfds_name` is "imagenet_a".

    Raises:
      FileNotFoundError: a missing model or released data.
      ValueError: a bad pp string or setting.
    """
    rcfg = resolve_config(robustness_config)
    source_config = ml_collections.ConfigDict(_as_dict(eval_source_config))
    if not tf.io.gfile.exists(model_path):
        raise FileNotFoundError(f"model file {model_path!r} does not exist")
    key = _cache_key(model_path, source_config.to_dict(), eval_pp_string,
                     rcfg.to_dict())
    cache = (os.path.join(workdir_for_cache, CACHE_FILE)
             if workdir_for_cache else None)
    if cache and tf.io.gfile.exists(cache):
        cached = io_utils.read_json(cache)
        if cached.get("cache_key") == key:
            return cached["report"]

    model = checkpoints.load_model(model_path)
    pp_fn, logits_fn = pixel_views.logits_fn_for(model, eval_pp_string)
    records = sources.make_source(source_config).map(
        lambda r: (r["image"], r["label"]))
    images, labels = pixel_views.load_pixels(
        records, pp_fn, rcfg.num_examples, rcfg.batch_size)
    constants = _constants(rcfg, images.shape[1:])
    corrupted = pixel_views.released_corruptions(rcfg, pp_fn, len(images))
    report = suite.run_robustness_suite(
        logits_fn, images, labels, corruptions=rcfg.corruptions,
        severities=rcfg.severities, constants=constants,
        corrupted_data=corrupted, perturbations=rcfg.perturbations,
        num_perturbation_sequences=rcfg.num_perturbation_sequences,
        num_frames=rcfg.num_frames, epsilons=rcfg.epsilons,
        pgd_steps=rcfg.pgd_steps,
        num_adversarial_examples=rcfg.num_adversarial_examples,
        batch_size=rcfg.batch_size, seed=rcfg.seed, progress=progress)
    if rcfg.get("tfds_name") == "imagenet_a":
        report["imagenet_a"] = pixel_views.imagenet_a_accuracy(
            logits_fn, pp_fn, rcfg.get("tfds_data_dir"), rcfg.batch_size)
    if cache:
        io_utils.ensure_writable_dir(workdir_for_cache)
        io_utils.atomic_write_json(cache, {"cache_key": key,
                                           "report": report})
    return report


# === Several models ===


def evaluate_models(models, eval_source_config, robustness_config,
                    output_dir, progress=True):
    """Evaluates several models and draws the comparison plot.

    Args:
      models: list of (name, model_path, eval_pp_string, cache_dir) in
        legend order; cache_dir may be None.
      eval_source_config: the clean eval source.
      robustness_config: settings as in `configs.common.robustness_config`.
      output_dir: where `robustness.png` goes.
      progress: show progress bars.

    Returns:
      JSON-serialisable {"names": [name, ...], "models": {name: report},
      "model_paths": {name: path}, "plot": "robustness.png" or None
      (nothing to plot)}.

    Raises:
      FileNotFoundError: a model file is missing (checked first).
    """
    # Fail before hours of work on the first model, not after.
    for _, model_path, _, _ in models:
        if not tf.io.gfile.exists(model_path):
            raise FileNotFoundError(
                f"model file {model_path!r} does not exist")
    reports, paths = {}, {}
    for name, model_path, pp_string, cache_dir in models:
        # The driver's log prefix (training/trainer.py `log`), without
        # importing the trainer.
        print(f"[noisy-student] robustness: {name}" + (
            f" ({model_path})" if name != model_path else ""), flush=True)
        reports[name] = evaluate_model_robustness(
            model_path, eval_source_config, pp_string, robustness_config,
            cache_dir, progress)
        paths[name] = model_path
    plot = None
    if any(r.get("corruptions") or r.get("adversarial")
           for r in reports.values()):
        plot = PLOT_FILE
        suite.plot_robustness(reports, os.path.join(output_dir, plot))
    # "names" keeps the order: JSON writers here sort keys.
    return {"names": list(reports), "models": reports, "model_paths": paths,
            "plot": plot}


# === Markdown ===


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}"


def _num(value):
    return "-" if value is None else f"{value:.2f}"


def _ordered(robustness_result):
    models = robustness_result["models"]
    names = robustness_result.get("names") or list(models)
    return {name: models[name] for name in names}


def format_table(robustness_result):
    """Markdown table: one row per model, accuracies and errors in %."""
    reports = _ordered(robustness_result)
    # Numeric order: reports read back from sorted-key JSON are not.
    epsilons = sorted({eps for r in reports.values()
                       for eps in (r.get("adversarial") or {}).get(
                           "fgsm", {})}, key=float)
    has_a = any(r.get("imagenet_a") for r in reports.values())
    header = (["model", "clean top-1", "corruption error", "mCE",
               "mean flip prob."] + (["ImageNet-A top-1"] if has_a else [])
              + [f"FGSM ε={e}" for e in epsilons]
              + [f"PGD ε={e}" for e in epsilons])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for name, r in reports.items():
        corr = r.get("corruptions") or {}
        pert = r.get("perturbations") or {}
        adv = r.get("adversarial") or {}
        cells = [name, _pct(r["clean"]["top1"]),
                 _num(corr.get("mean_corruption_error")),
                 _num(corr.get("mce")),
                 _num(pert.get("mean_flip_probability"))]
        if has_a:
            cells.append(_pct((r.get("imagenet_a") or {}).get("top1")))
        for attack in ("fgsm", "pgd"):
            cells += [_pct(adv.get(attack, {}).get(e)) for e in epsilons]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_lines(robustness_result):
    """Markdown lines of report.md's robustness section (table + plot)."""
    reports = _ordered(robustness_result)
    first = next(iter(reports.values()), None)
    if first is None:
        return []
    settings = first.get("settings", {})
    adv = first.get("adversarial") or {}
    lines = [
        "## Robustness", "",
        f"{first['num_examples']} clean eval images, "
        f"{settings.get('constants')} corruption constants"
        + (" (released data)" if settings.get("released_corruptions")
           else " (generated)")
        + (f", frost from {settings['frost']}" if settings.get("frost")
           else "")
        + (f"; FGSM / PGD-{settings.get('pgd_steps')} on the first "
           f"{adv.get('num_examples')}, ε on the 0-255 scale" if adv
           else "")
        + ". Accuracies in %; corruption error = 100 × mean error "
        "(unnormalised); mCE vs AlexNet (full ImageNet-C settings only); "
        "flip probability in %, unnormalised.", "",
        format_table(robustness_result), ""]
    if robustness_result.get("plot"):
        lines += [f"![robustness]({robustness_result['plot']})", ""]
    return lines
