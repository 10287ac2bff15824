"""Single stages of an experiment, by name, for the per-stage binaries.

`loop.run` runs everything in order; these functions let users run one
stage (on one host, for some shards) with the same directory layout, so
the driver later skips what they finished.
"""

import os
import re

from noisy_student_tf import io_utils
from noisy_student_tf import loop
from noisy_student_tf.configs import common
from noisy_student_tf.training import trainer


def _iteration(name):
    match = re.fullmatch(r"iter(\d+)", name)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"stage must be teacher, baseline, iter<N> (N >= 1)"
                         f", ceiling or finetune, got {name!r}")
    return int(match.group(1))


def student_config(config, workdir, iteration):
    """Resolved config of student `iteration`, from the finished stages."""
    students = loop.students_of(config)
    if not 1 <= iteration <= len(students):
        raise ValueError(f"iteration {iteration} not in the config's "
                         f"{len(students)} students")
    student = students[iteration - 1]
    teacher_result, _ = loop.teacher_of_iteration(config, workdir, iteration)
    iteration_dir = os.path.join(workdir, f"iter{iteration}")
    pseudo = None
    if student.get("mode", "offline") == "offline":
        if not io_utils.stage_done(os.path.join(iteration_dir, "filter")):
            raise FileNotFoundError(
                f"{iteration_dir}/filter is not complete: run "
                f"scripts/pseudo_label.py and scripts/filter.py for "
                f"iteration {iteration} first")
        pseudo = loop.pseudo_source_for(config, iteration_dir)
    return loop.student_stage(config, student, teacher_result, pseudo)


def train_named_stage(config, workdir, name, progress=True):
    """Trains `name` of an experiment (or a single-stage config)."""
    # A stage config has a top-level `model`; an experiment never does (an
    # online student's stage config also has `teacher`, its teacher file).
    if "model" in config:
        return trainer.train(config, workdir, progress=progress)
    io_utils.ensure_writable_dir(workdir)
    if name == "teacher":
        stage = common.stage_config(config, config.teacher)
    elif name == "baseline":
        if not config.get("baseline"):
            raise ValueError("this config has no baseline stage (the "
                             "teacher is the baseline)")
        stage = common.stage_config(config, config.baseline)
    elif name == "ceiling":
        if not config.get("ceiling"):
            raise ValueError("this config has no ceiling stage")
        stage = common.stage_config(config, loop.ceiling_of(config))
    elif name == "finetune":
        if not config.get("finetune"):
            raise ValueError("this config has no finetune stage")
        last = len(loop.students_of(config)) + 1
        result, last_stage = loop.teacher_of_iteration(config, workdir, last)
        stage = loop.finetune_stage(config, last_stage, result)
    else:
        iteration = _iteration(name)
        stage = student_config(config, workdir, iteration)
        name = os.path.join(f"iter{iteration}", "student")
    return loop.run_stage(name, stage, workdir, progress)

