r"""Exports a model file as a SavedModel with serving signatures that take
uint8 images or encoded bytes and apply the eval preprocessing.

    python scripts/export.py --model=runs/demo/iter2/student/model.keras \
        --config=noisy_student_tf/configs/fashion_mnist_demo.py \
        --export_dir=runs/demo/export

Each run writes the next version folder, `--export_dir/<N>/` (TF Serving's
layout: serve `--model_base_path=runs/demo/export`). Class names come from
the config's `class_names` when it has them.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config (for pp.eval): path.py[:arg].",
    lock_config=False)
_MODEL = flags.DEFINE_string("model", None, "A .keras model file.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Output directory.")
_PP = flags.DEFINE_string("pp", None, "Eval pp string (default: the "
                          "config's teacher pp.eval).")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes returned per image.")
flags.mark_flags_as_required(["model", "export_dir"])


def main(argv):
    del argv
    from noisy_student_tf import export

    if _PP.value:
        pp = _PP.value
    elif _CONFIG.value is not None:
        pp = _CONFIG.value.teacher.pp.eval
    else:
        raise ValueError("give --config or --pp for the eval preprocessing")
    config = _CONFIG.value
    class_names = config.get("class_names") if config is not None else None
    path = export.export_saved_model(_MODEL.value, pp, _EXPORT_DIR.value,
                                     top_k=_TOP_K.value,
                                     class_names=class_names)
    print(f"exported to {path} (signatures: serving_default, "
          "predict_images, predict_bytes)")


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
