"""Runs a related-method experiment (KD, MEAL V2, MPL), resumable.

    python scripts/run_method.py \
        --config=noisy_student_tf/configs/kd_fashion_mnist.py:quick \
        --workdir=runs/kd_quick [--config.student.alpha=0.5]

Trains the teachers the method needs, then the method stage(s), each in
its own subdirectory, and writes `report.json`. Rerunning the same command
resumes: finished stages are skipped.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiment directory.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False,
                                 "Hide progress bars.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import methods

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    methods.run_method(config, _WORKDIR.value,
                      progress=not _NO_PROGRESS.value)


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
