"""Runs named variants of one experiment in sequence and tabulates them.

    python scripts/ablate.py \
        --config=noisy_student_tf/configs/fashion_mnist_demo.py \
        --workdir=runs/ablation --variants=base,no_noise,hard_labels \
        --iterations=1 [--reuse=runs/fashion_mnist_demo]

Variants (noisy_student_tf/experiment/ablation.py): base, no_noise,
no_input_noise, no_model_noise, labels_only, hard_labels, unlabel_ratio_1,
no_balancing, init_from_teacher, from_scratch, and teacher_size_students
(not run by default). Stages the variants share (the teacher, first-iteration labels)
are computed once, or copied from the --reuse run when their inputs
match. Writes
ablation.json, ablation.md and ablation.png into --workdir; rerunning
resumes.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Ablation directory.")
_VARIANTS = flags.DEFINE_list(
    "variants", None, "Variants to run, in order (default: all but "
    "teacher_size_students).")
_ITERATIONS = flags.DEFINE_integer(
    "iterations", 1, "Students per variant (the config's first N).")
_REUSE = flags.DEFINE_string(
    "reuse", None, "Workdir of a finished scripts/noisy_student.py run of "
    "this experiment: stages whose inputs match are copied from it.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False,
                                 "Hide progress bars.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import ablation

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    ablation.run_ablation(
        config, _WORKDIR.value,
        variants=_VARIANTS.value or ablation.DEFAULT_VARIANTS,
        iterations=_ITERATIONS.value, progress=not _NO_PROGRESS.value,
        reuse=_REUSE.value)


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
