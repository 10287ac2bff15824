"""The resolved trainer config of every stage of a Noisy Student experiment.

An experiment config names a teacher, students (one per iteration), and
optional baseline / student_baselines / ceiling / finetune blocks; each
stage's complete config is the experiment's defaults, then the block,
then what the previous stage hands on (`common.stage_config`): the
pseudo-label shards or, online, the teacher file; the teacher's weights
with `init_from_teacher`. The driver and the per-stage binaries resolve
stages here, so a stage is the same whichever of them trains it.
"""

import os
import re

import ml_collections

from noisy_student_tf.configs import common
from noisy_student_tf.labeling import filtering
from noisy_student_tf.training import finetune
from noisy_student_tf.training.objectives import noisy_student


def students_of(config):
    """The experiment's students in iteration order."""
    return list(config.students.values()) if config.get("students") else []


def enabled(block):
    """A block is on when present and not `enabled=False`."""
    return bool(block) and block.get("enabled", True)


def teacher_stage(config):
    return common.stage_config(config, config.teacher)


def pseudo_source(config, iteration_dir):
    """The filtered pseudo-label shards of an iteration, as a source."""
    return {"kind": "pseudo_labels", "num_classes": config.num_classes,
            "pattern": filtering.filtered_pattern(
                os.path.join(iteration_dir, "filter"))}


def reads_pseudo_labels(config, student):
    """True when the student trains on stored pseudo labels (offline, with
    unlabeled images), so its iteration labels and filters first."""
    return (not noisy_student.is_online(student)
            and bool(_unlabel_ratio(config, student)))


def _unlabel_ratio(config, student):
    """The student's unlabel_ratio; an explicit 0 is the labels-only
    control (the same init, schedule and noise without pseudo labels:
    does a student's gain come from the unlabeled data or from more
    steps?). Missing is an error: a student without it is a mistake."""
    ratio = student.get("unlabel_ratio",
                        config.defaults.get("unlabel_ratio"))
    if ratio is None or ratio < 0:
        raise ValueError("a student needs unlabel_ratio > 0 (or an "
                         "explicit 0: the labels-only control)")
    return ratio


def student_stage(config, student, teacher_result, pseudo=None):
    """Complete config of a student: noised, fed its teacher's targets
    (`pseudo`, the filtered shards, offline; the teacher file online;
    neither for the labels-only control, unlabel_ratio=0)."""
    extra = {}
    with_pseudo = bool(_unlabel_ratio(config, student))
    if with_pseudo and noisy_student.is_online(student):
        extra["teacher"] = {"path": teacher_result["model_path"]}
        extra["data"] = {"unlabeled": config.data.unlabeled.to_dict()}
    elif with_pseudo:
        extra["data"] = {"unlabeled": pseudo}
    if student.get("init_from_teacher"):
        extra["model"] = {"init": teacher_result["model_path"]}
    return common.stage_config(config, student, **extra)


def baseline_stage(config, student):
    """A student architecture trained on the labels alone with the
    teacher's recipe (`student_baselines` overrides on top)."""
    overrides = config.student_baselines.to_dict()
    overrides.pop("enabled", None)
    recipe = config.teacher.to_dict()
    recipe.pop("path", None)  # the baseline trains; it is no file
    return common.stage_config(config, ml_collections.ConfigDict(recipe),
                               model=student.model.to_dict(), **overrides)


def ceiling_of(config):
    """The ceiling block: `config.ceiling` (its labeled data is the full
    labeled pool), with the last student's model unless it names one."""
    ceiling = config.ceiling.to_dict()
    ceiling.pop("enabled", None)
    students = students_of(config)
    last = students[-1] if students else config.teacher
    ceiling.setdefault("model", last.model.to_dict())
    return ml_collections.ConfigDict(ceiling)


def ceiling_stage(config):
    return common.stage_config(config, ceiling_of(config))


def finetune_stage(config, last_stage, last_result):
    """Resolution finetune of the last model (training/finetune.py)."""
    return finetune.finetune_config(config, last_stage,
                                    last_result["model_path"])


def iteration_of(name):
    """N of a stage name `iterN` (N >= 1), for the per-stage binaries."""
    match = re.fullmatch(r"iter(\d+)", name)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"stage must be teacher, baseline, iter<N> (N >= 1)"
                         f", ceiling or finetune, got {name!r}")
    return int(match.group(1))


def student_of(config, iteration):
    """The student block of `iteration` (1-based), checked."""
    students = students_of(config)
    if not 1 <= iteration <= len(students):
        raise ValueError(f"iteration {iteration} not in the config's "
                         f"{len(students)} students")
    return students[iteration - 1]


def optional_stage(config, name):
    """The config of the optional stage `name` (baseline or ceiling).

    Raises:
      ValueError: the experiment has no such stage.
    """
    if not config.get(name):
        raise ValueError(
            "this config has no baseline stage (the teacher is the "
            "baseline)" if name == "baseline" else
            f"this config has no {name} stage")
    if name == "ceiling":
        return ceiling_stage(config)
    return common.stage_config(config, config[name])
