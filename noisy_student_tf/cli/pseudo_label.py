"""Pseudo-labels the unlabeled data for one iteration, some shards at a
time, so many hosts can label in parallel.

    # host k of 8, each labeling its own shards of 64:
    python scripts/pseudo_label.py --config=... --workdir=runs/exp \
        --iteration=1 --num_shards=64 --shard_index=3,11,19

Complete shards are skipped; a killed run leaves no partial shard.
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiment directory.")
_ITERATION = flags.DEFINE_integer("iteration", 1, "Iteration (1-based).")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", None, "Total shards (default: config.labeling.num_shards).")
_SHARD_INDEX = flags.DEFINE_list(
    "shard_index", None, "Shards this host labels (default: all).")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Hide progress.")
_ENGINE_FLAGS = script_utils.define_engine_flags(__name__)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import stages
    from noisy_student_tf.experiment import workdir

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    script_utils.apply_engine_flags(config, _ENGINE_FLAGS)
    if _NUM_SHARDS.value:
        config.labeling.num_shards = _NUM_SHARDS.value
    indices = None
    if _SHARD_INDEX.value:
        indices = [int(i) for i in _SHARD_INDEX.value]
        bad = [i for i in indices if not 0 <= i < config.labeling.num_shards]
        if bad:
            raise ValueError(f"shard_index {bad} not in [0, "
                             f"{config.labeling.num_shards})")
    result, stage = stages.teacher_of_iteration(config, _WORKDIR.value,
                                                _ITERATION.value)
    summary = stages.label(
        config, result, stage,
        workdir.iteration_dir(_WORKDIR.value, _ITERATION.value),
        shard_indices=indices, progress=not _NO_PROGRESS.value)
    print(f"labeled {summary['num_records']} images "
          f"({summary.get('shards_labeled')} shards now, "
          f"{summary.get('shards_skipped')} already done)")


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
