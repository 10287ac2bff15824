"""Where an experiment's stages live on disk, and whether they are done.

    WORKDIR/config.json              the resolved experiment config
    WORKDIR/teacher/                 a stage: config.json, checkpoints,
                                     model.keras, result.json (= done)
    WORKDIR/iter{i}/labels|filter|student|baseline/
    WORKDIR/ceiling/ finetune/ export/<version>/
    WORKDIR/report.json report.md wall_seconds.json

A stage is complete when its `result.json` exists (written last and
atomically, `io_utils.mark_stage_done`), so a rerun skips it. Every name
the driver, the per-stage binaries and the ablation use comes from here.
"""

import os
import time

import ml_collections

from noisy_student_tf import io_utils
from noisy_student_tf.training import trainer

TEACHER = "teacher"
CEILING = "ceiling"
FINETUNE = "finetune"
EXPORT = "export"
CONFIG_FILE = "config.json"
WALL_FILE = "wall_seconds.json"


def log(message):
    """One driver line, in the trainer's format."""
    trainer.log(message)


def iteration_dir(workdir, iteration):
    """`WORKDIR/iter{iteration}` (1-based)."""
    return os.path.join(workdir, f"iter{iteration}")


def iteration_stage(iteration, part):
    """Relative name of a part (labels, filter, student, baseline) of an
    iteration, e.g. `iter2/student`."""
    return os.path.join(f"iter{iteration}", part)


def teacher_name(iteration):
    """Relative name of the stage whose model teaches `iteration`: the
    teacher for the first, the previous student after that."""
    return TEACHER if iteration == 1 else iteration_stage(
        iteration - 1, "student")


def prepare(config, workdir):
    """Creates the workdir, clears a killed run's temporaries of the
    driver's own files (config, report, the export's temporary
    directory) and saves the resolved config."""
    io_utils.ensure_writable_dir(workdir)
    io_utils.remove_stale_temporaries(workdir)
    io_utils.atomic_write_json(os.path.join(workdir, CONFIG_FILE),
                               config.to_dict())


def finished_stage(workdir, name, needed_by=""):
    """(result, resolved stage config) of a complete stage.

    Raises:
      FileNotFoundError: the stage has not finished; `needed_by` says
        what needs it.
    """
    stage_dir = os.path.join(workdir, name)
    if not io_utils.stage_done(stage_dir):
        raise FileNotFoundError(
            f"{stage_dir} is not complete: train it first"
            + (f" ({needed_by} needs it)" if needed_by else ""))
    stage = ml_collections.ConfigDict(
        io_utils.read_json(os.path.join(stage_dir, CONFIG_FILE)))
    return io_utils.read_stage_result(stage_dir), stage


def done_result(stage_dir):
    """The stored result of a complete stage, else None."""
    if io_utils.stage_done(stage_dir):
        return io_utils.read_stage_result(stage_dir)
    return None


def add_wall_seconds(workdir, start):
    """Wall time of all runs of this workdir so far (a resumed run adds
    its own time to the stored total)."""
    path = os.path.join(workdir, WALL_FILE)
    previous = io_utils.read_json(path)["total"] if \
        os.path.exists(path) else 0.0
    total = previous + time.time() - start
    io_utils.atomic_write_json(path, {"total": total})
    return total


def load_config(config):
    """Accepts a ConfigDict or a plain dict (a stored config.json)."""
    if isinstance(config, ml_collections.ConfigDict):
        return config
    return ml_collections.ConfigDict(config)
