"""Filters and balances an iteration's pseudo labels (confidence threshold,
per-class target count with the reference's subsample/duplicate rule),
writing stats, thresholds and plots next to the filtered shards.

    python scripts/filter.py --config=... --workdir=runs/exp --iteration=1 \
        [--shard_index=0,1] [--config.filter.min_threshold=0.5]
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiment directory.")
_ITERATION = flags.DEFINE_integer("iteration", 1, "Iteration (1-based).")
_SHARD_INDEX = flags.DEFINE_list(
    "shard_index", None, "Shards this host writes (default: all).")
_ENGINE_FLAGS = script_utils.define_engine_flags(__name__)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import stages
    from noisy_student_tf.experiment import workdir

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    script_utils.apply_engine_flags(config, _ENGINE_FLAGS)
    indices = [int(i) for i in _SHARD_INDEX.value] if _SHARD_INDEX.value \
        else None
    stats = stages.filter_labels(
        config, workdir.iteration_dir(_WORKDIR.value, _ITERATION.value),
        shard_indices=indices)
    print(f"kept {stats['num_records']} pseudo-labeled records of "
          f"{stats['num_predictions']} predictions; per class "
          f"{stats['per_class_after']}")


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
