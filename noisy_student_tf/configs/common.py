"""Shared config helpers: `:arg` parsing, stage merging, pp strings.

An experiment config has top-level `data`, `defaults` (training knobs every
stage inherits), `teacher`, `students` (one per iteration), `labeling`,
`filter`, `finetune`, `export` and `robustness`. `stage_config` merges
`defaults` under a stage and adds the shared data, seed and class count,
giving the complete config the trainer gets and saves. The robustness
suite's defaults live here too (`robustness_config`), so configs import
no stage or library code for them.
"""

import copy
import difflib

import ml_collections

# Trainer knobs and their reference values (noisystudent main.py).
TRAIN_DEFAULTS = dict(
    batch_size=128,
    optimizer="rmsprop",
    learning_rate=0.016,  # per 256 labeled images, scaled by batch/256.
    momentum=0.9,
    nesterov=True,  # sgd only
    beta_1=0.9,  # adamw only
    beta_2=0.999,  # adamw only
    rmsprop_decay=0.9,
    rmsprop_epsilon=1e-3,
    schedule="exponential",
    warmup_epochs=5,
    decay_epochs=2.4,
    decay_factor=0.97,
    final_lr=None,
    schedule_offset_steps=0,
    weight_decay=1e-5,
    label_smoothing=0.1,
    ema_decay=0.9999,
    clip_global_norm=None,
    unlabel_ratio=0,
    unlabeled_loss_weight=None,
    label_type="soft",
    temperature=1.0,
    checkpoint_every_steps=500,
    keep_checkpoints=3,
    log_every_steps=50,
    eval_every_steps=0,
    steps_per_loop=1,
    eval_batch_size=256,
    # "none" / "bf16" / "fp16" (training/precision.py; legacy True = bf16).
    mixed_precision="none",
    # k micro-batches of batch_size / k per optimizer step
    # (training/accumulation.py).
    accumulation_steps=1,
    jit_compile=False,  # XLA made EfficientNet 6-7x slower on CPU here.
    strategy="auto",
    tpu=None,
    cache=True,
    skip_corrupt=False,
    freeze_blocks=-1,
    # Bound on records re-read to name a bad file when input fails.
    diagnose_max_records=None,
)


# Stage keys beyond the trainer knobs above.
STAGE_KEYS = frozenset({
    "model", "pp", "data", "teacher", "total_steps", "total_epochs",
    "warmup_steps", "mode", "init_from_teacher", "method", "seed",
    "export_top_k",
})
# The experiment's teacher may be a model file instead of a trained stage.
TEACHER_KEYS = frozenset({"path"})
FINETUNE_KEYS = frozenset({"enabled", "image_size"})
# No `temperature`: labeling stores the plain softmax and the student's
# `temperature` tempers it once (noisystudent predict_label.py / main.py).
LABELING_KEYS = frozenset({"num_shards", "batch_size", "has_true_labels",
                           "engine", "beam_options"})
FILTER_KEYS = frozenset({"min_threshold", "num_image", "max_prob",
                         "upsample", "use_all", "use_top"})
EXPORT_KEYS = frozenset({"enabled"})
EXPERIMENT_KEYS = frozenset({
    "name", "seed", "num_classes", "channels", "class_names", "data",
    "defaults", "teacher", "baseline", "students", "labeling", "filter",
    "finetune", "export", "robustness", "ceiling", "student_baselines",
})


class ConfigKeyError(LookupError):
    """A command-line override names a key no block of its kind has."""


def check_keys(config, allowed, where):
    """Raises ValueError naming unknown keys (typos never pass silently)."""
    unknown = sorted(set(config.keys()) - set(allowed))
    if unknown:
        close = [match for key in unknown for match in
                 difflib.get_close_matches(key, sorted(allowed), n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" \
            if close else ""
        raise ValueError(
            f"unknown config key(s) {unknown}{hint} in {where}; valid keys: "
            f"{', '.join(sorted(allowed))}")


def check_experiment(config):
    """Checks every key-checked block of an experiment config.

    The top level, `defaults`, the teacher, baseline, students, ceiling and
    student baselines, and the `labeling`, `filter` and `export` blocks: an
    unknown key (a typo such as `filter.num_images`) raises ValueError with
    a did-you-mean.
    """
    check_keys(config, EXPERIMENT_KEYS, "the experiment config")
    for path in _checked_blocks(config):
        block = _block_at(config, path)
        if block is not None:
            check_keys(block, block_keys(path), path)
    for name, student in (config.get("students") or {}).items():
        if "model" not in student:
            raise ValueError(
                f"students.{name} has no model: it is not one of the "
                f"config's students ({', '.join(config.students)}); "
                f"override those, e.g. --config.students."
                f"{next(iter(config.students))}.unlabel_ratio=5")


def _checked_blocks(config):
    paths = ["defaults", "teacher", "baseline", "labeling", "filter",
             "export", "ceiling", "student_baselines", "finetune"]
    return paths + [f"students.{name}"
                    for name in (config.get("students") or {})]


def block_keys(path):
    """Known keys of the experiment block at dotted `path`, or None.

    Stage blocks (teacher, baseline, students.<name>, finetune and the
    method configs' student / teachers.<name>) and `defaults` take every
    training default and stage key.
    """
    train = frozenset(TRAIN_DEFAULTS)
    # `defaults` is merged under every stage, so it may hold stage keys
    # (e.g. warmup_steps) as well.
    fixed = {"defaults": train | STAGE_KEYS, "labeling": LABELING_KEYS,
             "filter": FILTER_KEYS, "export": EXPORT_KEYS,
             "teacher": train | STAGE_KEYS | TEACHER_KEYS,
             "baseline": train | STAGE_KEYS, "student": train | STAGE_KEYS,
             "finetune": train | STAGE_KEYS | FINETUNE_KEYS,
             # Stages the driver trains on request (`enabled`).
             "ceiling": train | STAGE_KEYS | {"enabled"},
             "student_baselines": train | STAGE_KEYS | {"enabled"}}
    if path in fixed:
        return fixed[path]
    parent, _, _ = path.rpartition(".")
    if parent in ("students", "teachers"):
        return train | STAGE_KEYS
    return None


# Types of known keys whose default does not say (None, or an int where a
# fraction is meaningful); every other key takes its default's type, and a
# key with neither (a later addition defaulting to None) any literal.
_KEY_TYPES = {
    "final_lr": float, "clip_global_norm": float,
    "unlabeled_loss_weight": float, "tpu": str,
    "diagnose_max_records": int, "unlabel_ratio": float,
    "warmup_epochs": float, "total_epochs": float, "total_steps": int,
    "warmup_steps": int, "mode": str, "init_from_teacher": bool,
    "method": str, "seed": int, "export_top_k": int, "path": str,
    "enabled": bool, "image_size": int, "num_shards": int,
    "batch_size": int, "temperature": float, "has_true_labels": bool,
    "min_threshold": float, "num_image": int, "max_prob": float,
    "upsample": bool, "use_all": bool, "use_top": bool, "engine": str,
    "beam_options": str,
}


def _key_type(key):
    if key in _KEY_TYPES:
        return _KEY_TYPES[key]
    default = TRAIN_DEFAULTS.get(key)
    return type(default) if default is not None else object


def _block_at(config, path):
    block = config
    for part in path.split("."):
        if not isinstance(block, ml_collections.ConfigDict) or \
                part not in block:
            return None
        block = block[part]
    return block if isinstance(block, ml_collections.ConfigDict) else None


def add_override_fields(config, paths):
    """Adds the known fields that command-line overrides name, typed.

    `ml_collections.config_flags` only overrides fields a config file
    already has (and cannot parse a field whose value is None). Any known
    key of a stage, of `defaults` or of the labeling/filter/export blocks
    (see `block_keys`) can be overridden, so each such path gets an empty
    field of the key's type before the overrides are applied.

    Args:
      config: the experiment ConfigDict, as its get_config returned it.
      paths: dotted override paths (`students.iter1.unlabel_ratio`).

    Returns:
      `config`, changed in place.

    Raises:
      ConfigKeyError: an unknown key of such a block (with a
        did-you-mean), or a student / teacher the config does not have.
    """
    for path in paths:
        parent, _, key = path.rpartition(".")
        known, block = block_keys(parent), _block_at(config, parent)
        group, _, name = parent.rpartition(".")
        siblings = _block_at(config, group)
        if group in ("students", "teachers") and block is None and \
                siblings is not None:
            raise ConfigKeyError(
                f"{group} has no {name!r} (it has {', '.join(siblings)}): "
                f"name one, e.g. --config.{group}."
                f"{next(iter(siblings), name)}.{key}=...")
        if known is None or block is None:
            continue  # not a key-checked block: config_flags decides.
        if key not in block and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigKeyError(
                f"unknown config key {key!r} in {parent}" +
                (f" (did you mean {close[0]!r}?)" if close else ""))
        if key in known and (key not in block or block[key] is None):
            block[key] = ml_collections.FieldReference(
                None, field_type=_key_type(key))
    return config


def parse_arg(arg, **defaults):
    """`"quick,full=0,size=32"` -> ConfigDict over `defaults` (big_vision).

    A bare name sets a bool to True. Unknown keys raise ValueError.
    """
    result = dict(defaults)
    for part in filter(None, (arg or "").split(",")):
        key, _, value = part.partition("=")
        if key not in result:
            raise ValueError(f"Unknown config arg {key!r}; valid: "
                             f"{sorted(result)}")
        if not _:
            result[key] = True
            continue
        kind = type(result[key]) if result[key] is not None else str
        if kind is bool:
            result[key] = value.lower() in ("1", "true", "yes")
        else:
            result[key] = kind(value)
    return ml_collections.ConfigDict(result)


def deep_update(base, update):
    """Merges the nested dict `update` into `base` (in place; returns it):
    dicts merge key by key, anything else replaces."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def stage_config(config, stage, **extra):
    """Complete trainer config for one stage of an experiment.

    Args:
      config: the experiment ConfigDict.
      stage: the stage's ConfigDict (teacher, a student, finetune...).
      **extra: last-word overrides (e.g. the pseudo-label source).
    """
    merged = deep_update(copy.deepcopy(TRAIN_DEFAULTS),
                          config.defaults.to_dict())
    merged = deep_update(merged, stage.to_dict())
    merged["seed"] = config.seed
    merged.setdefault("data", {})
    # `validation` (e.g. SVHN's dev split) picks checkpoints during training;
    # it is never the test set (`eval`).
    for key in ("labeled", "validation", "eval"):
        if key not in merged["data"] and config.data.get(key):
            merged["data"][key] = config.data[key].to_dict()
    for key in ("labeled", "validation", "eval"):
        # Labeled sources check every label against the class count.
        if merged["data"].get(key):
            merged["data"][key].setdefault("num_classes", config.num_classes)
    merged["model"]["num_classes"] = config.num_classes
    merged["model"].setdefault("channels", config.get("channels", 3))
    deep_update(merged, extra)
    return ml_collections.ConfigDict(merged)


def model_key(stage):
    """Architecture identity of a stage (name, size, overrides)."""
    model = stage.model
    return (model.name, model.get("image_size"),
            tuple(sorted((model.get("overrides") or {}).items())))


def make_config(**kwargs):
    """ConfigDict that accepts None-valued fields later set to other types."""
    return ml_collections.ConfigDict(kwargs, type_safe=False)


# The robustness suite's settings (`c.robustness`; robustness/model_suite.py
# resolves a config's block against them). The corruption names are the 15
# of ImageNet-C (Hendrycks & Dietterich 2019), written out so configs import
# no library code; a test checks them against robustness/corruptions.py.
ROBUSTNESS_DEFAULTS = dict(
    enabled=True,
    num_examples=1000,  # the first N eval images
    corruptions=[
        "gaussian_noise", "shot_noise", "impulse_noise",
        "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "snow", "frost", "fog", "brightness",
        "contrast", "elastic_transform", "pixelate", "jpeg_compression"],
    severities=[1, 2, 3, 4, 5],
    constants="auto",
    # One per family: noise, blur, brightness, translation, rotation.
    perturbations=["gaussian_noise", "motion_blur", "brightness",
                   "translate", "rotate"],
    num_perturbation_sequences=100,
    num_frames=10,
    epsilons=[1, 2, 4, 8, 16],  # 0-255 scale
    pgd_steps=10,
    num_adversarial_examples=500,
    batch_size=256,
    seed=0,
    cifar10_c_dir=None,
    tfds_name=None,
    tfds_data_dir=None,
)
# Seconds-long settings for tests and `:quick` configs.
ROBUSTNESS_QUICK = dict(
    num_examples=64,
    corruptions=["gaussian_noise", "defocus_blur", "contrast"],
    severities=[1, 3],
    epsilons=[2, 8],
    pgd_steps=2,
    perturbations=["brightness"],
    num_perturbation_sequences=4,
    num_frames=5,
    num_adversarial_examples=32,
)


def robustness_config(quick=False):
    """Default robustness settings (`c.robustness` of an experiment).

    Args:
      quick: seconds-long settings for tests and `:quick` configs: 64
        images, 3 corruptions at 2 severities, 2 epsilons, PGD-2 and one
        perturbation with 4 sequences.

    Returns:
      A ConfigDict. `constants="auto"` picks "cifar" for images of at most
      64 px and "imagenet" above. `cifar10_c_dir` / `tfds_name` (with
      `tfds_data_dir`) name released data to use instead of on-the-fly
      corruptions ("imagenet_a" adds an ImageNet-A top-1).
    """
    settings = copy.deepcopy(ROBUSTNESS_DEFAULTS)
    if quick:
        settings.update(copy.deepcopy(ROBUSTNESS_QUICK))
    return make_config(**settings)
