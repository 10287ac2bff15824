"""Trains one stage of an experiment: teacher, baseline, a student or the
finetune (what scripts/noisy_student.py runs in sequence).

    python scripts/train.py --config=noisy_student_tf/configs/fashion_mnist_demo.py \
        --workdir=runs/demo --stage=teacher
    python scripts/train.py ... --stage=iter1     # after labeling + filter

A config with a top-level `model` (a single stage, e.g. a method config)
trains as is into --workdir. Reruns resume from the last checkpoint.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment or stage config: path.py[:arg].",
    lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiment directory.")
_STAGE = flags.DEFINE_string(
    "stage", "teacher", "teacher, baseline, iter<N>, ceiling or finetune.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Hide progress.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import stages

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    result = stages.train_named(config, _WORKDIR.value, _STAGE.value,
                                progress=not _NO_PROGRESS.value)
    print(f"{_STAGE.value}: top-1 {result['eval'].get('top1')} "
          f"model {result['model_path']}")


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
