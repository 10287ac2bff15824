"""Robustness report for saved models: corruptions, flips, FGSM / PGD.

Eval images and eval pp from an experiment config (its `data.eval` and
`teacher.pp.eval`; its `robustness` settings unless --quick):

    python scripts/robustness.py \
        --config=noisy_student_tf/configs/fashion_mnist_demo.py \
        --model=runs/demo/teacher/model.keras \
        --model=runs/demo/iter2/student/model.keras \
        --names=teacher,student --output_dir=runs/demo/robustness

or explicitly (--source: fashion_mnist, tfds:NAME, tfrecord:GLOB or
folder:ROOT; --split defaults to test):

    python scripts/robustness.py --source=fashion_mnist \
        --pp='decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")' \
        --model=a.keras,b.keras --output_dir=/tmp/robustness --quick

Released data instead of generated corruptions: --cifar10_c_dir=DIR (the
CIFAR-10-C .npy files), or --tfds_name=cifar10_corrupted /
imagenet2012_corrupted / imagenet_a (prepared under --tfds_data_dir).
Writes robustness.json and robustness.png into --output_dir, caches each
model under output_dir/cache/ (a rerun skips finished models) and prints
the table.
"""

import os
import re

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_MODELS = flags.DEFINE_multi_string(
    "model", None, "Model .keras path(s); repeat the flag or give a comma "
    "list.")
_NAMES = flags.DEFINE_list(
    "names", None, "Names of the models, in order (default: file paths).")
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config path.py[:arg] giving the eval source "
    "and eval pp.", lock_config=False)
_SOURCE = flags.DEFINE_string(
    "source", None, "Eval source without --config: fashion_mnist, "
    "tfds:NAME, tfrecord:GLOB or folder:ROOT.")
_SPLIT = flags.DEFINE_string("split", "test", "Split for fashion_mnist "
                             "and tfds sources.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "data_dir of the --source.")
_PP = flags.DEFINE_string("pp", None, "Eval pp string (overrides the "
                          "config's teacher.pp.eval).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output directory.")
_QUICK = flags.DEFINE_bool("quick", False, "Seconds-long settings (64 "
                           "images, 3 corruptions, 2 epsilons).")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", None,
                                     "Clean eval images to use.")
_CIFAR10_C_DIR = flags.DEFINE_string(
    "cifar10_c_dir", None, "Released CIFAR-10-C folder (<corruption>.npy, "
    "labels.npy).")
_TFDS_NAME = flags.DEFINE_enum(
    "tfds_name", None, ["cifar10_corrupted", "imagenet2012_corrupted",
                        "imagenet_a"], "Prepared TFDS robustness set.")
_TFDS_DATA_DIR = flags.DEFINE_string("tfds_data_dir", None,
                                     "TFDS data_dir of --tfds_name.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False,
                                 "Hide progress bars.")
flags.mark_flags_as_required(["model", "output_dir"])

_SOURCE_KINDS = {"tfds": "name", "tfrecord": "pattern", "folder": "root"}


def source_config(spec, split, data_dir):
    """`--source` -> a source config dict (see data/sources.py)."""
    kind, _, value = spec.partition(":")
    if kind == "fashion_mnist" and not value:
        config = dict(kind=kind, split=split)
    elif kind in _SOURCE_KINDS and value:
        config = dict(kind=kind, split=split, **{_SOURCE_KINDS[kind]: value})
    else:
        raise ValueError(f"bad --source={spec!r}: use fashion_mnist, "
                         "tfds:NAME, tfrecord:GLOB or folder:ROOT")
    if data_dir:
        config["data_dir"] = data_dir
    return config


def main(argv):
    del argv
    from noisy_student_tf import io_utils
    from noisy_student_tf.configs import common as config_common
    from noisy_student_tf.robustness import model_suite

    paths = [p for value in _MODELS.value for p in value.split(",") if p]
    names = _NAMES.value or paths
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ValueError(f"--names needs {len(paths)} distinct names, got "
                         f"{names}")
    config = _CONFIG.value
    if (config is None) == (_SOURCE.value is None):
        raise ValueError("give exactly one of --config and --source")
    if config is not None:
        if not config.get("data", {}).get("eval"):
            raise ValueError("the --config has no data.eval source")
        source = config.data.eval.to_dict()
        pp = _PP.value or config.teacher.pp.eval
        settings = config.get("robustness")
    else:
        source = source_config(_SOURCE.value, _SPLIT.value, _DATA_DIR.value)
        pp, settings = _PP.value, None
    if not pp:
        raise ValueError("--source needs --pp (the models' eval pp string)")
    if _QUICK.value or not settings:
        settings = config_common.robustness_config(quick=_QUICK.value)
    settings = model_suite.resolve_config(settings)
    for key, value in (("num_examples", _NUM_EXAMPLES.value),
                       ("cifar10_c_dir", _CIFAR10_C_DIR.value),
                       ("tfds_name", _TFDS_NAME.value),
                       ("tfds_data_dir", _TFDS_DATA_DIR.value)):
        if value is not None:
            settings[key] = value

    output_dir = io_utils.ensure_writable_dir(_OUTPUT_DIR.value)
    models = [(name, path, pp, os.path.join(
        output_dir, "cache", re.sub(r"[^\w.-]+", "_", name).strip("_")))
              for name, path in zip(names, paths)]
    result = model_suite.evaluate_models(
        models, source, settings, output_dir,
        progress=not _NO_PROGRESS.value)
    result["settings"] = settings.to_dict()
    io_utils.atomic_write_json(os.path.join(output_dir, "robustness.json"),
                               result)
    print("\n" + model_suite.format_table(result) + "\n", flush=True)


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
