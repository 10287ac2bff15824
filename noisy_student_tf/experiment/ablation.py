"""Ablation harness: one experiment config, named variants, one table.

Each variant edits the students of a copy of the experiment (the paper's
Table 6 / Section 4 questions) and runs the whole driver in its own
sub-directory of the ablation workdir:

    base               the config as written
    no_noise           students without input noise, dropout or
                       stochastic depth (pp noise ops removed)
    no_input_noise     only the pp noise ops removed (Table 6's rows)
    no_model_noise     only dropout and stochastic depth removed
    teacher_size_students  students of the teacher's architecture (for
                       recipes whose students are larger)
    labels_only        students without pseudo labels (same init,
                       schedule and noise): the gain from more steps
    hard_labels        students fit the teacher's argmax (label_type=hard)
    unlabel_ratio_1    one unlabeled image per labeled image
    no_balancing       every pseudo label above the threshold, once
    init_from_teacher  students start from their teacher's weights
    from_scratch       students start from random weights

Stages whose inputs are the same as an earlier variant's (the teacher,
and the first iteration's labels and filter when the variant leaves the
filter alone) are copied from it instead of being recomputed, so the
variants differ only where they should; `reuse` names a finished run of
the experiment (e.g. the demo's workdir) to copy from as well.
`ablation.json` / `ablation.md` (with `ablation.png`) tabulate every
variant's students side by side; rerunning resumes, as the driver does.
"""

import json
import os
import shutil

from noisy_student_tf import io_utils
from noisy_student_tf import models
from noisy_student_tf.configs import common
from noisy_student_tf.data import preprocess
from noisy_student_tf.experiment import noisy_student
from noisy_student_tf.experiment import report
from noisy_student_tf.experiment import stage_configs
from noisy_student_tf.experiment import workdir as workdir_lib

# Ops that only add noise: a student without them sees the clean view.
NOISE_OPS = frozenset({"flip_lr", "pad_crop", "cutout", "randaug"})


def strip_noise(pp_string):
    """The pp string without its noise ops (inception_crop -> center_crop).

    `inception_crop(size)` becomes `center_crop(size)`, the reference's
    eval crop, so the image size is unchanged.
    """
    kept = []
    for spec in preprocess.parse_pp_string(pp_string):
        if spec.name in NOISE_OPS:
            continue
        if spec.name == "inception_crop":
            size = spec.args[0] if spec.args else spec.kwargs["size"]
            spec = preprocess.OpSpec("center_crop", (size,), {})
        kept.append(str(spec))
    return "|".join(kept)


def _without_input_noise(student):
    for key in ("labeled", "unlabeled"):
        if student.pp.get(key):
            student.pp[key] = strip_noise(student.pp[key])


def _without_model_noise(student):
    overrides = dict(student.model.get("overrides") or {})
    valid = models.valid_overrides(student.model.name)
    for key in ("dropout_rate", "stochastic_depth_rate"):
        if key in valid:
            overrides[key] = 0.0
    student.model.overrides = overrides


def _without_noise(student):
    _without_input_noise(student)
    _without_model_noise(student)


def _teacher_size_students(config):
    for student in config.students.values():
        student.model = config.teacher.model.to_dict()


def _set(key, value):
    def edit(student):
        student[key] = value
    return edit


# variant -> (edit of each student, edit of the experiment config, what).
VARIANTS = {
    "base": (None, None, "the config as written"),
    "no_noise": (_without_noise, None,
                 "students without RandAugment/flip/crop/cutout, dropout "
                 "and stochastic depth"),
    # The paper's Table 6 removes input and model noise separately.
    "no_input_noise": (_without_input_noise, None,
                       "students without RandAugment/flip/crop/cutout"),
    "no_model_noise": (_without_model_noise, None,
                       "students without dropout and stochastic depth"),
    "teacher_size_students": (None, _teacher_size_students,
                              "students of the teacher's architecture"),
    # Students of the same init, schedule and noise without pseudo labels:
    # is a student's gain from the unlabeled data or from more steps?
    "labels_only": (_set("unlabel_ratio", 0), None,
                    "students train on the labels alone (the control)"),
    "hard_labels": (_set("label_type", "hard"), None,
                    "students fit the teacher's argmax"),
    "unlabel_ratio_1": (_set("unlabel_ratio", 1), None,
                        "unlabeled batch = labeled batch"),
    "no_balancing": (None, lambda c: setattr(c.filter, "use_all", True),
                     "all pseudo labels above the threshold, once each"),
    "init_from_teacher": (_set("init_from_teacher", True), None,
                          "students start from the teacher's weights"),
    "from_scratch": (_set("init_from_teacher", False), None,
                     "students start from random weights"),
}
# teacher_size_students only differs from base when students are larger.
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v != "teacher_size_students")


def variant_config(config, name, iterations=None):
    """The experiment config of variant `name` (a modified copy).

    Args:
      config: the experiment ConfigDict.
      name: a key of VARIANTS.
      iterations: keep only the first N students (None: all).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown ablation variant {name!r}; valid: "
                         f"{', '.join(VARIANTS)}")
    students = stage_configs.students_of(config)
    if not students:
        raise ValueError("an ablation needs a config with students")
    if iterations is not None and not 1 <= iterations <= len(students):
        raise ValueError(f"iterations={iterations}: the config has "
                         f"{len(students)} students")
    c = workdir_lib.load_config(config.to_dict())
    keys = list(c.students.keys())[:iterations or len(students)]
    c.students = {key: c.students[key].to_dict() for key in keys}
    edit_student, edit_config, _ = VARIANTS[name]
    for key in keys:
        if edit_student:
            edit_student(c.students[key])
    if edit_config:
        edit_config(c)
    c.name = f"{config.get('name', 'experiment')}/{name}"
    # Reference stages that no variant changes are not rerun per variant.
    for block in ("ceiling", "student_baselines"):
        if c.get(block):
            c[block].enabled = False
    # Reports carry only the variant's own students.
    c.export = dict(enabled=False)
    return c


def shared_stages(config):
    """(stage path, key) of the stages a variant may copy from another.

    Two variants with equal keys would compute the same stage: the teacher
    (its resolved config), the first iteration's labels (teacher, labeling,
    unlabeled data) and filter (labels + filter settings), and its student
    (all of those + the student's own settings and the shared defaults).
    """
    teacher = common.stage_config(config, config.teacher).to_dict()
    stages = [("teacher", _key(teacher))]
    inputs = [teacher]
    first = stage_configs.students_of(config)[0]
    if stage_configs.reads_pseudo_labels(config, first):
        labels = [teacher, config.labeling.to_dict(),
                  config.data.unlabeled.to_dict()]
        inputs = labels + [config.filter.to_dict()]
        stages.append((os.path.join("iter1", "labels"), _key(labels)))
        stages.append((os.path.join("iter1", "filter"), _key(inputs)))
    # Resolved like the teacher's (defaults, seed, data, classes); the
    # paths the driver adds (teacher model, pseudo labels) are `inputs`.
    student = inputs + [common.stage_config(config, first).to_dict()]
    stages.append((os.path.join("iter1", "student"), _key(student)))
    return stages


def _key(obj):
    return json.dumps(obj, sort_keys=True, default=str)


def copy_stage(source, target):
    """Copies a finished stage directory, rewriting its absolute paths."""
    if io_utils.stage_done(target):
        return
    partial = f"{target}.tmp-copy"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    old, new = os.path.abspath(source), os.path.abspath(target)
    for root, _, files in os.walk(partial):
        for name in files:
            if name.endswith((".json", ".jsonl")):
                path = os.path.join(root, name)
                with open(path) as handle:
                    text = handle.read()
                io_utils.atomic_write_bytes(
                    path, text.replace(old + os.sep, new + os.sep).encode())
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(partial, target)


def finished_stages(run_dir):
    """{stage key: run_dir} of the shareable stages a finished experiment
    run (a `scripts/noisy_student.py --workdir`) has completed."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: --reuse takes the "
                                "workdir of a scripts/noisy_student.py run")
    config = workdir_lib.load_config(io_utils.read_json(path))
    return {key: run_dir for stage, key in shared_stages(config)
            if io_utils.stage_done(os.path.join(run_dir, stage))}


def run_ablation(config, workdir, variants=DEFAULT_VARIANTS, iterations=1,
                 progress=True, reuse=None):
    """Runs every variant in sequence; returns (and writes) the table.

    Args:
      config: the experiment ConfigDict.
      workdir: the ablation directory (one sub-directory per variant).
      variants: names from VARIANTS, in order.
      iterations: students per variant (the first N of the config).
      progress: progress bars.
      reuse: workdir of a finished run (e.g. the demo's) whose stages are
        copied where a variant's inputs match them, instead of recomputed.

    Returns:
      The ablation dict written to `ablation.json`.
    """
    configs = {name: variant_config(config, name, iterations)
               for name in variants}  # every name checked before any run
    io_utils.ensure_writable_dir(workdir)
    # stage key -> directory of a run or variant that has it
    finished = finished_stages(reuse) if reuse else {}
    reports = {}
    for name, variant in configs.items():
        variant_dir = os.path.join(workdir, name)
        stages = shared_stages(variant)
        for path, key in stages:
            if key in finished:
                copy_stage(os.path.join(finished[key], path),
                           os.path.join(variant_dir, path))
        workdir_lib.log(f"ablation variant {name}: {VARIANTS[name][2]}")
        reports[name] = noisy_student.run(variant, variant_dir, progress)
        for path, key in stages:
            finished.setdefault(key, variant_dir)
    return report.write_ablation(
        config, reports, workdir,
        {name: VARIANTS[name][2] for name in reports})
