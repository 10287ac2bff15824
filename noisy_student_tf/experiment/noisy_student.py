"""The Noisy Student driver: Algorithm 1 of Xie et al. (2020).

    teacher = train(labeled)                               # teacher/
    for i, student in enumerate(students, 1):
        labels = predict(teacher, unlabeled)               # iter{i}/labels
        pseudo = filter_and_balance(labels)                # iter{i}/filter
        teacher = train(student, labeled + pseudo, noised) # iter{i}/student
    finetune(teacher) at the test resolution               # finetune/
    export(teacher)                                        # export/N/
    report                                                 # report.json/md

Every stage writes into its own directory and is skipped when complete
(`stages.py`), so rerunning the same command after a crash resumes where
it stopped. Online students skip labeling and filtering: the teacher runs
in the step. The comparisons around the algorithm (a labels-only baseline
per student architecture, the all-labels ceiling) and the robustness
suite are optional stages of the same run.
"""

import time

from noisy_student_tf.configs import common
from noisy_student_tf.experiment import report as report_lib
from noisy_student_tf.experiment import stage_configs
from noisy_student_tf.experiment import stages
from noisy_student_tf.experiment import workdir as workdir_lib


def run(config, workdir, progress=True):
    """Runs (or resumes) the whole experiment.

    Args:
      config: the experiment ConfigDict (a file under configs/).
      workdir: the experiment directory (local or gs://).
      progress: show progress bars.

    Returns:
      The report dict, also written to `workdir/report.json` / report.md.
    """
    start = time.time()
    common.check_experiment(config)
    workdir_lib.prepare(config, workdir)

    # === Teacher: trained on the labeled data, or a given file ===
    teacher, teacher_stage = stages.teacher(config, workdir, progress)
    report = report_lib.new_report(config, teacher)
    _labels_only_baseline(config, report, workdir, progress)

    # === Iterate: label, filter and balance, train the noised student,
    # === which then teaches the next iteration ===
    for index in range(1, len(stage_configs.students_of(config)) + 1):
        teacher, teacher_stage, row = stages.student(
            config, index, teacher, teacher_stage, workdir, progress)
        report["iterations"].append(row)

    # === Comparisons: each student architecture on the labels alone, and
    # === the last one on every label (the ceiling) ===
    if stage_configs.enabled(config.get("student_baselines")):
        stages.student_baselines(config, report, workdir, progress)
    if stage_configs.enabled(config.get("ceiling")):
        report["ceiling"] = report_lib.stage_summary(stages.train(
            workdir_lib.CEILING, stage_configs.ceiling_stage(config),
            workdir, progress))

    # === Resolution finetune, export, robustness ===
    if stage_configs.enabled(config.get("finetune")):
        teacher_stage = stage_configs.finetune_stage(
            config, teacher_stage, teacher)
        teacher = stages.train(workdir_lib.FINETUNE, teacher_stage, workdir,
                               progress)
        report["finetune"] = report_lib.stage_summary(teacher)
    if stage_configs.enabled(config.get("export")):
        report["export_dir"] = stages.export(
            teacher, teacher_stage, workdir, config.get("class_names"))
    if stage_configs.enabled(config.get("robustness")):
        report["robustness"] = stages.robustness(config, report, workdir,
                                                 progress)

    # === Report ===
    report["wall_seconds"] = workdir_lib.add_wall_seconds(workdir, start)
    report_lib.finish_report(config, report, workdir)
    return report


def _labels_only_baseline(config, report, workdir, progress):
    """The first student's labels-only baseline: its own `baseline` stage,
    or the teacher when the architectures agree."""
    students = stage_configs.students_of(config)
    if config.get("baseline"):
        report["baseline"] = report_lib.stage_summary(stages.train(
            "baseline", stage_configs.optional_stage(config, "baseline"),
            workdir, progress))
    elif students and not config.teacher.get("path") and \
            common.model_key(students[0]) == common.model_key(config.teacher):
        report["baseline"] = dict(report["teacher"], same_as="teacher")
