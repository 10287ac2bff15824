"""One function per stage of a Noisy Student experiment.

Each stage writes into its own directory under the workdir
(`workdir.py`) and returns its stored result when already complete, so
the driver (`noisy_student.py`) and the per-stage binaries
(`scripts/train.py`, `pseudo_label.py`, `filter.py`, `finetune.py`) can
run it in any process, on any host, any number of times.
"""

import functools
import os

from noisy_student_tf import export as export_lib
from noisy_student_tf import io_utils
from noisy_student_tf.configs import common
from noisy_student_tf.data import sources
from noisy_student_tf.experiment import report as report_lib
from noisy_student_tf.experiment import stage_configs
from noisy_student_tf.experiment import teacher_file
from noisy_student_tf.experiment import workdir as workdir_lib
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import filtering
from noisy_student_tf.labeling import tfrecord_io
from noisy_student_tf.robustness import model_suite
from noisy_student_tf.training import trainer
from noisy_student_tf.training.objectives import noisy_student as ns_objective

log = workdir_lib.log


def train(name, stage, workdir, progress=True):
    """Trains the stage `name` (a path under the workdir) or returns its
    stored result; a teacher with `path` is a file, checked and
    evaluated instead (teacher_file.py)."""
    stage_dir = os.path.join(workdir, name)
    if name == workdir_lib.TEACHER and stage.get("path"):
        return teacher_file.run(stage, stage_dir)
    return trainer.train(stage, stage_dir, progress=progress, name=name)


def teacher(config, workdir, progress=True):
    """The first teacher (trained, or a file): (result, stage config)."""
    stage = stage_configs.teacher_stage(config)
    return train(workdir_lib.TEACHER, stage, workdir, progress), stage


def teacher_of_iteration(config, workdir, iteration):
    """(result, stage config) of the model that teaches `iteration`.

    Raises:
      FileNotFoundError: that model's stage has not finished.
    """
    if iteration == 1 and config.teacher.get("path"):
        teacher(config, workdir)  # a file is recorded on first use
    return workdir_lib.finished_stage(
        workdir, workdir_lib.teacher_name(iteration),
        needed_by=f"iteration {iteration}, as its teacher")


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


def label(config, teacher_result, teacher_stage, iteration_dir,
          shard_indices=None, progress=True):
    """Pseudo-labels the unlabeled source with the clean EMA teacher into
    `iteration_dir/labels`.

    With `shard_indices`, only those shards are labeled (one host of
    many); the stage is marked complete once every shard is, by whichever
    host completes the last one.
    """
    labels_dir = os.path.join(iteration_dir, "labels")
    done = workdir_lib.done_result(labels_dir)
    if done is not None:
        return done
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
            # This host labeled some shards: the stage's summary counts all.
            summary = predict.summarize_shards(
                labels_dir, labeling.num_shards,
                has_true_labels=labeling.get("has_true_labels", False))
        # Every shard is complete, so no writer is left: temporaries now
        # are a killed run's (e.g. an info file's).
        io_utils.remove_stale_temporaries(labels_dir, recursive=True)
        io_utils.mark_stage_done(labels_dir, summary)
    return summary


def filter_labels(config, iteration_dir, shard_indices=None):
    """Filters and balances an iteration's (complete) predictions into
    `iteration_dir/filter` (labeling/filtering.py)."""
    labels_dir = os.path.join(iteration_dir, "labels")
    filter_dir = os.path.join(iteration_dir, "filter")
    done = workdir_lib.done_result(filter_dir)
    if done is not None:
        return done
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
            raise sources.DataError(
                f"no pseudo label passed the confidence threshold "
                f"{f.min_threshold} (of {stats['num_predictions']} "
                "predictions): the teacher is too weak or unsure; train it "
                "longer or lower filter.min_threshold")
        io_utils.remove_stale_temporaries(filter_dir, recursive=True)
        io_utils.mark_stage_done(filter_dir, stats)
    return stats


def student(config, index, teacher_result, teacher_stage, workdir,
            progress=True):
    """Iteration `index`: label and filter (offline), then train the
    noised student. Returns (result, stage config, report row)."""
    block = stage_configs.student_of(config, index)
    iteration_dir = workdir_lib.iteration_dir(workdir, index)
    pseudo, labels, filtered = None, {}, {}
    if stage_configs.reads_pseudo_labels(config, block):
        labels = label(config, teacher_result, teacher_stage, iteration_dir,
                       progress=progress)
        filtered = filter_labels(config, iteration_dir)
        pseudo = stage_configs.pseudo_source(config, iteration_dir)
    stage = stage_configs.student_stage(config, block, teacher_result, pseudo)
    result = train(workdir_lib.iteration_stage(index, "student"), stage,
                   workdir, progress)
    return result, stage, report_lib.iteration_row(
        result, labels, filtered,
        ns_objective.mode_of(block) if stage.unlabel_ratio else "labels_only")


def student_baselines(config, report, workdir, progress=True):
    """Trains each student architecture that differs from the teacher's on
    the labels alone into `iter{i}/baseline`, once per architecture, and
    records it as that iteration's `baseline`: a larger student is
    compared with its own architecture, not with its smaller teacher."""
    # A teacher from a file is no labels-only model: it is no baseline.
    done = {} if config.teacher.get("path") else {
        common.model_key(config.teacher): report["teacher"]}
    for index, block in enumerate(stage_configs.students_of(config), 1):
        key = common.model_key(block)
        if key not in done:
            done[key] = report_lib.stage_summary(train(
                workdir_lib.iteration_stage(index, "baseline"),
                stage_configs.baseline_stage(config, block), workdir,
                progress))
        report["iterations"][index - 1]["baseline"] = done[key]


def export(result, stage, workdir, class_names=None):
    """Exports the final model into `workdir/export/<version>/` (TF
    Serving's layout); a version already exported from this model file is
    reused, so a resumed run does not export again."""
    export_dir = os.path.join(workdir, workdir_lib.EXPORT)
    done = export_lib.find_export(export_dir, result["model_path"])
    if done:
        return done
    log(f"exporting {result['model_path']} to {export_dir}")
    return export_lib.export_saved_model(
        result["model_path"], stage.pp.eval, export_dir,
        top_k=stage.get("export_top_k", 5), class_names=class_names)


def robustness(config, report, workdir, progress=True):
    """The robustness suite (`config.robustness`) over every model of the
    report on `config.data.eval`: `robustness.png` into the workdir, each
    model's `robustness.json` cache next to its model.

    Returns:
      JSON-serialisable {"names": [...], "models": {name: report},
      "model_paths": {...}, "plot": "robustness.png"}.
    """
    return model_suite.evaluate_models(
        robustness_models(config, report), config.data.eval.to_dict(),
        config.robustness, workdir, progress)


def robustness_models(config, report):
    """(name, model_path, eval pp, cache dir) of every model of a run that
    the suite evaluates: report.md's rows (`report.stage_rows`) but the
    student baselines and the ceiling, each with its own stage's eval pp."""
    def eval_pp(block, fallback):
        pp = block.get("pp") if block else None
        return (pp.get("eval") if pp else None) or fallback

    students = stage_configs.students_of(config)
    pps = {"teacher": config.teacher.pp.eval}
    pps["baseline"] = eval_pp(config.get("baseline"), pps["teacher"])
    last_pp = pps["teacher"]
    for index in range(1, len(report["iterations"]) + 1):
        block = students[index - 1] if index <= len(students) else None
        last_pp = pps[f"student {index}"] = eval_pp(block, pps["teacher"])
    pps["finetuned"] = eval_pp(config.get("finetune"), last_pp)
    return [(name, row["model_path"], pps[name],
             os.path.dirname(row["model_path"]))
            for name, row in report_lib.stage_rows(report) if name in pps]


def train_named(config, workdir, name, progress=True):
    """Trains the stage `name` of an experiment (teacher, baseline,
    iter<N>, ceiling, finetune), or a single-stage config, for
    scripts/train.py and scripts/finetune.py."""
    # A stage config has a top-level `model`; an experiment never does.
    if "model" in config:
        return trainer.train(config, workdir, progress=progress)
    io_utils.ensure_writable_dir(workdir)
    if name == workdir_lib.TEACHER:
        return teacher(config, workdir, progress)[0]
    if name in ("baseline", workdir_lib.CEILING):
        stage = stage_configs.optional_stage(config, name)
        return train(name, stage, workdir, progress)
    if name == workdir_lib.FINETUNE:
        if not config.get("finetune"):
            raise ValueError("this config has no finetune stage")
        last = len(stage_configs.students_of(config)) + 1
        result, last_stage = teacher_of_iteration(config, workdir, last)
        stage = stage_configs.finetune_stage(config, last_stage, result)
        return train(name, stage, workdir, progress)
    index = stage_configs.iteration_of(name)
    return train(workdir_lib.iteration_stage(index, "student"),
                 resolved_student(config, workdir, index), workdir, progress)


def resolved_student(config, workdir, index):
    """Resolved config of student `index`, from the finished stages."""
    block = stage_configs.student_of(config, index)
    teacher_result, _ = teacher_of_iteration(config, workdir, index)
    iteration_dir = workdir_lib.iteration_dir(workdir, index)
    pseudo = None
    if stage_configs.reads_pseudo_labels(config, block):
        if not io_utils.stage_done(os.path.join(iteration_dir, "filter")):
            raise FileNotFoundError(
                f"{iteration_dir}/filter is not complete: run "
                f"scripts/pseudo_label.py and scripts/filter.py for "
                f"iteration {index} first")
        pseudo = stage_configs.pseudo_source(config, iteration_dir)
    return stage_configs.student_stage(config, block, teacher_result, pseudo)
