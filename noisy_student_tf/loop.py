"""The Noisy Student driver: Algorithm 1 of Xie et al. (2020) as stages.

    teacher = train(labeled)                               # teacher/
    for i, student in enumerate(students, 1):
        labels = predict(teacher, unlabeled)               # iter{i}/labels
        pseudo = filter_and_balance(labels)                # iter{i}/filter
        teacher = train(student, labeled + pseudo, noised) # iter{i}/student
    finetune(teacher) at the test resolution               # finetune/
    export(teacher)                                        # export/N/
    report                                                 # report.json/md

Every stage writes into its own directory and is skipped when complete,
so rerunning the same command after a crash resumes where it stopped.
Online students skip labeling and filtering: the teacher runs in the step.
"""

import functools
import os
import time

import ml_collections

from noisy_student_tf import io_utils
from noisy_student_tf.configs import common
from noisy_student_tf.labeling import filtering
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import tfrecord_io
from noisy_student_tf.training import trainer


def log(message):
    trainer.log(message)


def run_stage(name, stage, workdir, progress=True):
    """Trains one stage (or returns its stored result)."""
    stage_dir = os.path.join(workdir, name)
    if name == "teacher" and stage.get("path"):
        # A teacher file (teacher.path): checked and evaluated, not trained.
        from noisy_student_tf import teacher_file
        return teacher_file.run(stage, stage_dir)
    if io_utils.stage_done(stage_dir):
        log(f"{name}: complete, skipped")
        return io_utils.read_stage_result(stage_dir)
    log(f"{name}: training {stage.model.name} for "
        f"{stage.get('total_steps') or stage.get('total_epochs')} "
        f"{'steps' if stage.get('total_steps') else 'epochs'}")
    result = trainer.train(stage, stage_dir, progress=progress)
    log(f"{name}: top-1 {result['eval'].get('top1', float('nan')):.4f}")
    return result


def label_iteration(config, teacher_result, teacher_stage, iteration_dir,
                    shard_indices=None, progress=True):
    """Pseudo-labels the unlabeled source with the clean EMA teacher.

    With `shard_indices`, only those shards are labeled (one host of many);
    the stage is marked complete once every shard is.
    """
    labels_dir = os.path.join(iteration_dir, "labels")
    if io_utils.stage_done(labels_dir):
        return io_utils.read_stage_result(labels_dir)
    labeling = config.labeling
    log(f"labeling {config.data.unlabeled.kind} with "
        f"{teacher_result['model_path']}")
    summary = labeling_engine(config, "generate_pseudo_labels")(
        teacher_result["model_path"], config.data.unlabeled,
        teacher_stage.pp.eval, labels_dir,
        num_shards=labeling.num_shards, shard_indices=shard_indices,
        batch_size=labeling.batch_size,
        skip_corrupt=config.defaults.get("skip_corrupt", False),
        has_true_labels=labeling.get("has_true_labels", False),
        progress=progress)
    if summary.get("skipped_corrupt"):
        log(f"labeling: skipped {summary['skipped_corrupt']} file(s) that "
            "do not decode")
    if all(tfrecord_io.shard_complete(labels_dir, tfrecord_io.PREDICTIONS, i,
                                      labeling.num_shards)
           for i in range(labeling.num_shards)):
        if shard_indices is not None:
            summary = predict.generate_pseudo_labels(
                teacher_result["model_path"], config.data.unlabeled,
                teacher_stage.pp.eval, labels_dir,
                num_shards=labeling.num_shards, progress=False,
                has_true_labels=labeling.get("has_true_labels", False))
        # Every shard is complete, so no writer is left: temporaries now
        # are a killed run's (e.g. an info file's).
        io_utils.remove_stale_temporaries(labels_dir, recursive=True)
        io_utils.mark_stage_done(labels_dir, summary)
    return summary


def filter_iteration(config, iteration_dir, shard_indices=None):
    """Filters and balances an iteration's (complete) predictions."""
    labels_dir = os.path.join(iteration_dir, "labels")
    filter_dir = os.path.join(iteration_dir, "filter")
    if io_utils.stage_done(filter_dir):
        return io_utils.read_stage_result(filter_dir)
    if not io_utils.stage_done(labels_dir):
        raise FileNotFoundError(
            f"{labels_dir} is not complete: run pseudo-labeling first")
    log("filtering and balancing pseudo labels")
    f = config.filter
    stats = labeling_engine(config, "filter_and_balance")(
        config.data.unlabeled, labels_dir, filter_dir,
        config.labeling.num_shards, config.num_classes,
        min_threshold=f.min_threshold, num_image=f.get("num_image"),
        max_prob=f.get("max_prob", 2.0), upsample=f.get("upsample", True),
        use_all=f.get("use_all", False), use_top=f.get("use_top", True),
        seed=config.seed, shard_indices=shard_indices)
    if stats["shards_written"] == config.labeling.num_shards:
        if not stats["num_records"]:
            raise select_error(config, stats)
        io_utils.remove_stale_temporaries(filter_dir, recursive=True)
        io_utils.mark_stage_done(filter_dir, stats)
    return stats


def labeling_engine(config, name):
    """`name` (generate_pseudo_labels or filter_and_balance) of the engine
    `config.labeling.engine` picks: "local" (default) or "beam" (Apache
    Beam pipelines writing the same files, `labeling.beam_options`)."""
    engine = config.labeling.get("engine", "local")
    if engine == "local":
        return getattr(
            predict if name == "generate_pseudo_labels" else filtering, name)
    if engine != "beam":
        raise ValueError(f"labeling.engine must be 'local' or 'beam', got "
                         f"{engine!r}")
    try:  # apache-beam is an optional extra.
        if name == "generate_pseudo_labels":
            from noisy_student_tf.labeling import beam_engine as module
        else:
            from noisy_student_tf.labeling import beam_filter as module
    except ImportError as error:  # scripts report RuntimeErrors in a line
        raise RuntimeError(str(error)) from error
    return functools.partial(getattr(module, name), beam_options=str(
        config.labeling.get("beam_options", "") or ""))


def pseudo_source_for(config, iteration_dir):
    """The filtered pseudo-label shards of an iteration, as a source."""
    return {"kind": "pseudo_labels", "num_classes": config.num_classes,
            "pattern": filtering.filtered_pattern(
                os.path.join(iteration_dir, "filter"))}


def pseudo_label(config, teacher_result, teacher_stage, iteration_dir,
                 progress=True):
    """Labels the unlabeled data with the teacher, then filters/balances."""
    labels = label_iteration(config, teacher_result, teacher_stage,
                             iteration_dir, progress=progress)
    filtered = filter_iteration(config, iteration_dir)
    return pseudo_source_for(config, iteration_dir), labels, filtered


def select_error(config, stats):
    from noisy_student_tf.data import sources

    return sources.DataError(
        f"no pseudo label passed the confidence threshold "
        f"{config.filter.min_threshold} (of {stats['num_predictions']} "
        "predictions): the teacher is too weak or unsure; train it longer "
        "or lower filter.min_threshold")


def student_stage(config, student, teacher_result, pseudo_source):
    """Complete config of a student: noised, fed teacher targets."""
    extra = {}
    if student.get("mode", "offline") == "online":
        extra["teacher"] = {"path": teacher_result["model_path"]}
        extra["data"] = {"unlabeled": config.data.unlabeled.to_dict()}
    else:
        extra["data"] = {"unlabeled": pseudo_source}
    if student.get("init_from_teacher"):
        extra["model"] = {"init": teacher_result["model_path"]}
    stage = common.stage_config(config, student, **extra)
    if not stage.get("unlabel_ratio"):
        raise ValueError("a student needs unlabel_ratio > 0")
    return stage


def finetune_stage(config, last_stage, last_result):
    """Resolution finetune of the last model (see training/finetune.py)."""
    from noisy_student_tf.training import finetune

    return finetune.finetune_config(config, last_stage,
                                    last_result["model_path"])


def run(config, workdir, progress=True):
    """Runs (or resumes) the whole experiment; returns the report dict."""
    start = time.time()
    common.check_experiment(config)
    io_utils.ensure_writable_dir(workdir)
    # The driver owns the workdir's own files (config, report, the export's
    # temporary directory): a killed run's temporaries go.
    io_utils.remove_stale_temporaries(workdir)
    io_utils.atomic_write_json(os.path.join(workdir, "config.json"),
                               config.to_dict())
    # === Teacher and baseline ===
    teacher_stage = common.stage_config(config, config.teacher)
    teacher_result = run_stage("teacher", teacher_stage, workdir, progress)
    report = {"teacher": _summary(teacher_result), "iterations": [],
              **_data_summary(config)}
    students = students_of(config)
    first = students[0] if students else None
    if config.get("baseline"):
        baseline_stage = common.stage_config(config, config.baseline)
        report["baseline"] = _summary(
            run_stage("baseline", baseline_stage, workdir, progress))
    elif first is not None and not config.teacher.get("path") and \
            common.model_key(first) == common.model_key(config.teacher):
        # Same architecture: the teacher *is* the labeled-only baseline.
        report["baseline"] = dict(report["teacher"], same_as="teacher")

    # === Iterations: label, filter, train the noised student ===
    current, current_stage = teacher_result, teacher_stage
    for index, student in enumerate(students, start=1):
        iteration_dir = os.path.join(workdir, f"iter{index}")
        pseudo_source, labels, filtered = None, {}, {}
        if student.get("mode", "offline") == "offline":
            pseudo_source, labels, filtered = pseudo_label(
                config, current, current_stage, iteration_dir, progress)
        stage = student_stage(config, student, current, pseudo_source)
        result = run_stage(os.path.join(f"iter{index}", "student"), stage,
                           workdir, progress)
        report["iterations"].append({
            "student": _summary(result),
            "num_pseudo_labeled": filtered.get("num_records"),
            "num_labeled_by_teacher": labels.get("num_records"),
            "skipped_corrupt": labels.get("skipped_corrupt"),
            "pseudo_label_accuracy": labels.get("accuracy_vs_true_labels"),
            "mode": student.get("mode", "offline"),
        })
        current, current_stage = result, stage

    # === Fair baselines: each larger student's architecture, labels only ===
    if _enabled(config.get("student_baselines")):
        run_student_baselines(config, report, workdir, progress)

    # === Ceiling: the last student's architecture on every label ===
    if _enabled(config.get("ceiling")):
        ceiling = common.stage_config(config, ceiling_of(config))
        report["ceiling"] = _summary(
            run_stage("ceiling", ceiling, workdir, progress))

    # === Resolution finetune, export ===
    if config.get("finetune") and config.finetune.get("enabled", True):
        stage = finetune_stage(config, current_stage, current)
        current = run_stage("finetune", stage, workdir, progress)
        current_stage = stage
        report["finetune"] = _summary(current)
    if config.get("export") and config.export.get("enabled", True):
        report["export_dir"] = export_final(
            current, current_stage, workdir, config.get("class_names"))

    if config.get("robustness") and config.robustness.get("enabled", True):
        from noisy_student_tf import robustness_stage
        report["robustness"] = robustness_stage.run_for_report(
            config, report, workdir, progress)
    report["wall_seconds"] = _wall_seconds(workdir, start)
    # Provenance: a report committed under results/ names its code and
    # carries its resolved config.
    report.update(name=config.get("name"), commit=io_utils.source_commit(),
                  config=config.to_dict())
    from noisy_student_tf.experiment import report as report_lib
    report_lib.add_gains(report)
    report_lib.write_report(config, report, workdir)
    return report


def run_student_baselines(config, report, workdir, progress=True):
    """Trains each student architecture that differs from the teacher's on
    the labeled data alone (the teacher's recipe, `student_baselines`
    overrides on top) into `iter{i}/baseline`, once per architecture, and
    records it as that iteration's `baseline`: a larger student is compared
    with its own architecture, not with its smaller teacher."""
    # A teacher from a file is no labels-only model: it is no baseline.
    from_file = bool(config.teacher.get("path"))
    done = {} if from_file else {
        common.model_key(config.teacher): report["teacher"]}
    overrides = config.student_baselines.to_dict()
    overrides.pop("enabled", None)
    recipe = config.teacher.to_dict()
    recipe.pop("path", None)  # the baseline trains; it is no file
    for index, student in enumerate(students_of(config), start=1):
        key = common.model_key(student)
        if key not in done:
            stage = common.stage_config(
                config, ml_collections.ConfigDict(recipe),
                model=student.model.to_dict(), **overrides)
            done[key] = _summary(run_stage(
                os.path.join(f"iter{index}", "baseline"), stage, workdir,
                progress))
        report["iterations"][index - 1]["baseline"] = done[key]


def _enabled(block):
    return bool(block) and block.get("enabled", True)


def ceiling_of(config):
    """The ceiling stage: `config.ceiling` (its labeled data is the full
    labeled pool), with the last student's model unless it names one."""
    ceiling = config.ceiling.to_dict()
    ceiling.pop("enabled", None)
    students = students_of(config)
    last = students[-1] if students else config.teacher
    ceiling.setdefault("model", last.model.to_dict())
    return ml_collections.ConfigDict(ceiling)


def export_final(result, stage, workdir, class_names=None):
    """Exports the final model into `workdir/export/<version>/` (TF
    Serving's layout); a version already exported from this model file is
    reused, so a resumed run does not export again."""
    from noisy_student_tf import export

    export_dir = os.path.join(workdir, "export")
    done = export.find_export(export_dir, result["model_path"])
    if done:
        return done
    log(f"exporting {result['model_path']} to {export_dir}")
    return export.export_saved_model(
        result["model_path"], stage.pp.eval, export_dir,
        top_k=stage.get("export_top_k", 5), class_names=class_names)


def _summary(result):
    evaluation = result.get("eval", {})
    return {"top1": evaluation.get("top1"), "top5": evaluation.get("top5"),
            "model": result.get("model"), "steps": result.get("steps"),
            "train_seconds": result.get("train_seconds"),
            "model_path": result.get("model_path"),
            **({"from_file": True} if result.get("from_file") else {})}


def _data_summary(config):
    """Class names and what the accuracies are measured on."""
    summary = {}
    if config.get("class_names"):
        summary["class_names"] = list(config.class_names)
    if config.data.get("eval") and config.data.eval.get("note"):
        summary["eval_data"] = config.data.eval.note
    return summary


def _wall_seconds(workdir, start):
    """Wall time of all runs so far (resumed runs add up)."""
    path = os.path.join(workdir, "wall_seconds.json")
    previous = io_utils.read_json(path)["total"] if \
        os.path.exists(path) else 0.0
    total = previous + time.time() - start
    io_utils.atomic_write_json(path, {"total": total})
    return total


def students_of(config):
    """The experiment's students in iteration order."""
    return list(config.students.values()) if config.get("students") else []


def teacher_of_iteration(config, workdir, iteration):
    """(result, stage config) of the model that teaches `iteration` (1-based).

    Raises:
      FileNotFoundError: that model's stage has not finished.
    """
    name = "teacher" if iteration == 1 else os.path.join(
        f"iter{iteration - 1}", "student")
    stage_dir = os.path.join(workdir, name)
    if iteration == 1 and config.teacher.get("path"):
        # A teacher file needs no training: record it on first use.
        run_stage("teacher", common.stage_config(config, config.teacher),
                  workdir)
    if not io_utils.stage_done(stage_dir):
        raise FileNotFoundError(
            f"{stage_dir} is not complete: train it first (iteration "
            f"{iteration} needs it as its teacher)")
    stage = ml_collections.ConfigDict(
        io_utils.read_json(os.path.join(stage_dir, "config.json")))
    return io_utils.read_stage_result(stage_dir), stage


def load_config(config):
    """Accepts a ConfigDict or a plain dict (tests)."""
    if isinstance(config, ml_collections.ConfigDict):
        return config
    return ml_collections.ConfigDict(config)
