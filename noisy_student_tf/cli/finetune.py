"""Resolution-discrepancy finetune of an experiment's last model: rebuilt
at the test resolution, stem and first K blocks frozen, no augmentation.

    python scripts/finetune.py --config=... --workdir=runs/exp \
        [--config.finetune.image_size=800 --config.finetune.freeze_blocks=20]
"""

from absl import flags
from ml_collections import config_flags

from noisy_student_tf.cli import script_utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: path.py[:arg].", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Experiment directory.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Hide progress.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from noisy_student_tf.experiment import stages

    config = script_utils.apply_runtime_flags(_CONFIG.value)
    result = stages.train_named(config, _WORKDIR.value, "finetune",
                                progress=not _NO_PROGRESS.value)
    print(f"finetune: top-1 {result['eval'].get('top1')} "
          f"model {result['model_path']}")


def run():
    """Console-script entry point (setup.py)."""
    script_utils.run(main)


if __name__ == "__main__":
    run()
