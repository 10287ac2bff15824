"""Robustness stage: the robustness suite on the driver's saved models.

Reads which models an experiment made from its report (teacher, baseline,
students, finetuned) and each one's eval pp string from its config, and
runs `robustness.model_suite` over them: `robustness.png` goes into the
experiment directory, each model's `robustness.json` cache next to its
model.
"""

import os

from noisy_student_tf.robustness import model_suite


def models_of_report(config, report):
    """(name, model_path, eval pp, cache dir) of every model of a run.

    Names match report.md's table: teacher, baseline (when it is its own
    model), student 1..n, finetuned.
    """
    teacher_pp = config.teacher.pp.eval
    rows = [("teacher", report["teacher"], teacher_pp)]
    baseline = report.get("baseline")
    if baseline and baseline.get("same_as") != "teacher":
        rows.append(("baseline", baseline,
                     _stage_eval_pp(config.get("baseline"), teacher_pp)))
    students = (list(config.students.values()) if config.get("students")
                else [])
    last_pp = teacher_pp
    for index, iteration in enumerate(report["iterations"], start=1):
        student = students[index - 1] if index <= len(students) else None
        last_pp = _stage_eval_pp(student, teacher_pp)
        rows.append((f"student {index}", iteration["student"], last_pp))
    if report.get("finetune"):
        rows.append(("finetuned", report["finetune"],
                     _stage_eval_pp(config.get("finetune"), last_pp)))
    return [(name, row["model_path"], pp,
             os.path.dirname(row["model_path"])) for name, row, pp in rows]


def _stage_eval_pp(stage, fallback):
    pp = stage.get("pp") if stage else None
    return (pp.get("eval") if pp else None) or fallback


def run_for_report(config, report, workdir, progress=True):
    """The driver's robustness stage over teacher, students and finetune.

    Args:
      config: the experiment config; `config.robustness` holds the
        settings (see `configs.common.robustness_config`),
        `config.data.eval` the images.
      report: the driver's report so far (model paths per stage).
      workdir: the experiment directory; `robustness.png` goes there and
        each model's `robustness.json` cache next to its model.
      progress: show progress bars.

    Returns:
      JSON-serialisable {"names": [...], "models": {name: report},
      "model_paths": {...}, "plot": "robustness.png"}.
    """
    return model_suite.evaluate_models(
        models_of_report(config, report), config.data.eval.to_dict(),
        config.robustness, workdir, progress)
