"""Runs a related-method experiment end to end (resumable), like the driver.

    teachers/<name>/  supervised teachers, unless given as `path` (KD: one;
                      MEAL V2: the ensemble; MPL: none, it trains its own)
    student_init/     optional supervised student the method starts from
    baseline/         optional supervised student alone, for comparison
    <method>/         the method stage: kd, meal_v2 or mpl
    finetune/         optional (MPL): the student fine-tuned on labels
    report.json       test top-1 of teachers and students, best validation

Every stage reuses `stages.train` (the `Trainer`) in its own directory
and is skipped when complete, so rerunning the command resumes. Where a
stage has `data.validation`, the model it hands on and reports as
"selected" is its best-on-validation `best.keras`, never chosen on test.

Experiment config: `method` (name), `seed`, `num_classes`, `channels`,
`data` (labeled, eval, and validation / unlabeled as the method needs),
`defaults`, `teachers` (name -> stage or {path}), `student` (the method
stage), optional `student_init`, `baseline`, `finetune`.
"""

import os
import time

from noisy_student_tf import io_utils
from noisy_student_tf.configs import common
from noisy_student_tf.experiment import report as report_lib
from noisy_student_tf.experiment import stages
from noisy_student_tf.experiment import workdir as workdir_lib
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import evaluate as evaluate_lib
from noisy_student_tf.training import finetune
from noisy_student_tf.training import objectives

EXPERIMENT_KEYS = frozenset({
    "name", "seed", "num_classes", "channels", "class_names", "data",
    "defaults", "method", "teachers", "student", "student_init",
    "baseline", "finetune"})
SELECTED_FILE = "selected_eval.json"


log = workdir_lib.log


def run_method(config, workdir, progress=True):
    """Runs (or resumes) a KD, MEAL V2 or MPL experiment.

    Args:
      config: the experiment ConfigDict (see the module docstring).
      workdir: experiment directory.
      progress: show progress bars.

    Returns:
      The report dict, also written to `workdir/report.json`.

    Raises:
      ValueError: unknown method or config key, or a teacher set the
        method cannot use.
    """
    start = time.time()
    method = config.method
    # Unknown names and keys fail before any work.
    objectives.get(method)
    common.check_keys(config, EXPERIMENT_KEYS, "the experiment config")
    io_utils.ensure_writable_dir(workdir)
    io_utils.atomic_write_json(os.path.join(workdir, "config.json"),
                               config.to_dict())
    report = {"method": method, "name": config.get("name"), "teachers": {}}

    # === Teachers, student init, baseline (supervised stages) ===
    paths = []
    for index, (name, teacher) in enumerate(
            (config.get("teachers") or {}).items()):
        summary = _teacher(config, name, teacher, index, workdir, progress)
        report["teachers"][name] = summary
        paths.append(summary["selected_path"])
    extra = _teacher_fields(method, paths)
    for name in ("student_init", "baseline"):
        if config.get(name):
            stage = common.stage_config(config, config[name])
            report[name] = summarize(
                stages.train(name, stage, workdir, progress), stage,
                os.path.join(workdir, name))
    if config.get("student_init"):
        extra["model"] = {"init": report["student_init"]["selected_path"]}

    # === The method stage ===
    data = {key: config.data[key].to_dict()
            for key in ("unlabeled", "validation") if config.data.get(key)}
    stage = common.stage_config(config, config.student, method=method,
                                data=data, **extra)
    result = stages.train(method, stage, workdir, progress)
    report["student"] = summarize(result, stage,
                                  os.path.join(workdir, method))
    if result.get("teacher"):  # MPL's teacher, trained in the stage.
        trained = result["teacher"]
        report["teachers"]["mpl_teacher"] = {
            "top1": trained.get("eval", {}).get("top1"),
            "model_path": trained["model_path"]}
    final_name, final = method, report["student"]

    # === Fine-tune on the labeled data (MPL) ===
    if config.get("finetune") and config.finetune.get("enabled", True):
        stage = finetune_stage(config, final["selected_path"])
        result = stages.train("finetune", stage, workdir, progress)
        final_name = "finetune"
        final = report["finetune"] = summarize(
            result, stage, os.path.join(workdir, "finetune"))
    report["final"] = {"stage": final_name, "top1": final["selected_top1"],
                       "model_path": final["selected_path"]}
    report.update(wall_seconds=time.time() - start,
                  **report_lib.provenance(config))
    report_lib.write_method_report(report, workdir)
    return report


def _teacher(config, name, teacher, index, workdir, progress):
    """Trains one teacher (seed + index) or evaluates a given model file."""
    if teacher.get("path"):
        stage = common.stage_config(config, config.student)
        metrics = evaluate_model_file(teacher.path, stage)
        return {"top1": metrics["top1"], "model_path": teacher.path,
                "selected_path": teacher.path, "given": True}
    # Distinct seeds so an ensemble's members differ.
    stage = common.stage_config(config, teacher, seed=config.seed + index)
    result = stages.train(os.path.join("teachers", name), stage, workdir,
                            progress)
    return summarize(result, stage, os.path.join(workdir, "teachers", name))


def _teacher_fields(method, paths):
    """How the method stage receives its teachers."""
    if method == "kd":
        if len(paths) != 1:
            raise ValueError(f"kd distils one teacher, the config has "
                             f"{len(paths)} (meal_v2 takes an ensemble)")
        return {"teacher": {"path": paths[0]}}
    if method == "meal_v2":
        if not paths:
            raise ValueError("meal_v2 needs at least one teacher")
        return {"teacher": {"paths": paths}}
    if paths:
        raise ValueError(f"{method} trains its own teacher; remove "
                         "`teachers` from the config")
    return {}


def finetune_stage(config, init_path):
    """The fine-tune stage: labels only, from the selected MPL student.

    Args:
      config: the experiment config; `finetune` overrides the student's
        model and eval pp string.
      init_path: the model file to start from (`best.keras`).

    Returns:
      The complete stage config (with `data.validation` when given).
    """
    data = {"validation": config.data.validation.to_dict()} \
        if config.data.get("validation") else {}
    return finetune.finetune_config(config, config.student, init_path,
                                    data=data)


def summarize(result, stage, stage_dir):
    """Report entry of a stage: final and validation-selected models.

    Args:
      result: the stage result (`result.json`).
      stage: its stage config (test data and eval pp).
      stage_dir: its directory (caches the selected model's metrics).

    Returns:
      Test top-1/top-5 of the final model, `best_validation` (step,
      top-1) when the stage had a validation split, and `selected_path` /
      `selected_top1`: the model handed on and its test top-1.
    """
    summary = report_lib.stage_summary(result)
    summary.update(selected_path=summary["model_path"],
                   selected_top1=summary["top1"])
    best = result.get("best_validation")
    if best:
        summary["best_validation"] = {"step": best["step"],
                                      "top1": best["top1"]}
        summary["selected_path"] = best["model_path"]
        if best["step"] != result.get("steps"):
            # Best before the end: evaluate that model (else it is the
            # final EMA model, whose test metrics are already known).
            summary["selected_top1"] = _selected_top1(
                best["model_path"], stage, stage_dir)
    return summary


def _selected_top1(path, stage, stage_dir):
    """Test top-1 of the best-validation model, computed once per stage."""
    cache = os.path.join(stage_dir, SELECTED_FILE)
    if os.path.exists(cache):
        return io_utils.read_json(cache)["top1"]
    metrics = evaluate_model_file(path, stage)
    io_utils.atomic_write_json(cache, metrics)
    return metrics["top1"]


def evaluate_model_file(path, stage):
    """Clean metrics of a `.keras` model on the stage's `data.eval`."""
    return evaluate_lib.evaluate_on_stage_data(checkpoints.load_model(path),
                                               stage)
