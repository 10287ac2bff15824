r"""Top-k predictions for a folder (or globs) of images, one row per image.

    python scripts/predict.py --model=runs/demo/export \
        --images=my_photos/ --output=predictions.csv

--model is a `.keras` file (a stage's `model.keras`: its eval
preprocessing and class names are read from the run's config.json files;
a converted checkpoint needs --config or --pp) or an export folder (the
base: its highest version, or one version folder). --images is a directory
(walked at any depth, image extensions in any case) or a glob; repeat it
for more. Writes CSV (path, class_1, prob_1, ...) or JSON lines by the
--output extension. Undecodable files are skipped, counted and named.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: class_names, and the teacher's "
    "pp.eval for a .keras model without a stage config.json beside it "
    "(e.g. a converted checkpoint): path.py[:arg].",
    lock_config=False)
_MODEL = flags.DEFINE_string("model", None, "A .keras model file or an "
                             "export folder (base or version).")
_IMAGES = flags.DEFINE_multi_string(
    "images", None, "A directory (recursive) or a glob; repeatable.")
_OUTPUT = flags.DEFINE_string("output", None, "Output .csv or .jsonl.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes per image.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Images per model call.")
_PP = flags.DEFINE_string("pp", None, "Eval pp string for a .keras model "
                          "(default: its stage config's pp.eval, else "
                          "--config's teacher pp.eval).")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "No progress bar.")
flags.mark_flags_as_required(["model", "images", "output"])


def main(argv):
    del argv
    from noisy_student_tf import inference

    config = _CONFIG.value
    # --config's teacher view only for a model without its stage's
    # config.json (a converted checkpoint); --pp beats both.
    fallback = config.teacher.pp.eval if config is not None else None
    names = config.get("class_names") if config is not None else None
    predictor = inference.load_predictor(_MODEL.value, _PP.value, names,
                                         fallback_pp=fallback)
    summary = inference.predict_files(
        predictor, _IMAGES.value, _OUTPUT.value, top_k=_TOP_K.value,
        batch_size=_BATCH.value, progress=not _NO_PROGRESS.value)
    print(f"wrote {summary['num_predicted']} rows to {summary['output']}; "
          + inference.skipped_line(summary))


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
