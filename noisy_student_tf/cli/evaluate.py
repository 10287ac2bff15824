"""Clean top-1 / top-5 of a model file on an experiment's eval data.

    python scripts/evaluate.py --model=runs/demo/iter2/student/model.keras \
        --config=noisy_student_tf/configs/fashion_mnist_demo.py [--split=eval]

The eval preprocessing is the teacher stage's (`pp.eval`) unless --pp is
given. Prints JSON.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_MODEL = flags.DEFINE_string("model", None, "A .keras model file.")
_SPLIT = flags.DEFINE_string("split", "eval", "Config data split: eval or "
                             "validation.")
_PP = flags.DEFINE_string("pp", None, "Eval pp string (default: the "
                          "teacher's pp.eval).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Eval batch size.")
flags.mark_flags_as_required(["config", "model"])


def main(argv):
    del argv
    import json

    from noisy_student_tf.data import pipeline
    from noisy_student_tf.data import sources
    from noisy_student_tf.training import checkpoints
    from noisy_student_tf.training import evaluate

    config = _CONFIG.value
    if not config.data.get(_SPLIT.value):
        raise ValueError(f"config has no data.{_SPLIT.value}")
    pp = _PP.value or config.teacher.pp.eval
    model = checkpoints.load_model(_MODEL.value)
    dataset = pipeline.make_eval_dataset(
        sources.make_source(config.data[_SPLIT.value]), pp, _BATCH.value)
    result = evaluate.evaluate(model, dataset)
    print(json.dumps({k: float(v) for k, v in result.items()}, indent=2))


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
