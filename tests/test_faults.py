"""kill -9 during any stage; rerunning the same command finishes the job.

A real `scripts/noisy_student.py` subprocess is killed (SIGKILL) at a
seeded random delay after a stage's first output appears (the teacher's or
a student's `checkpoints/`, the first `labels/info/*.json`, `filter/stats`,
the export's temporary directory). Then, after the kill: no file under a
final name is half-written. After the rerun: the run completes; every
unlabeled id is labeled exactly once; the filtered shards hold exactly the
records `stats.json` counts; no shard is missing or extra; every checkpoint
restores; no `.tmp-` file is left; and the report equals an uninterrupted
run's: exactly in steps, ids and (when the kill came after the teacher, so
both runs label with the same teacher) every prediction and pseudo-label
count, within noise in top-1 (CPU training is not bit-deterministic and a
resumed run sees another data order).

Forks: the uninterrupted reference run's finished stages are copied into a
new workdir (paths rewritten), which is exactly the state of a run that
reached that point; the kill then lands in the next stage.

The CI test kills once during labeling and once during student training of
the demo's `:quick` form with one student (~2 min on 2 cores); the full
sweep (`-m faults`: three kill points in each stage of the two-student
`:quick` demo) takes ~30 min.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import readers
from noisy_student_tf.labeling import predict
from noisy_student_tf.training import trainer
from tests import testing

DEMO = "noisy_student_tf/configs/fashion_mnist_demo.py:quick"
ONE_STUDENT = '''"""The :quick demo with one student (written by tests/test_faults.py)."""
from noisy_student_tf.configs import fashion_mnist_demo


def get_config(arg=None):
    config = fashion_mnist_demo.get_config("quick")
    config.students = dict(iter1=config.students.iter1.to_dict())
    # Small labeling batches make labeling last long enough to be killed.
    config.labeling.batch_size = 10
    return config
'''
NUM_UNLABELED = 600  # the :quick demo's unlabeled limit
NUM_SHARDS = 2  # its labeling shards
STEPS = 20  # every stage's total_steps in :quick
# |top-1 - reference top-1| allowed: the 20-step models score 5-20% on 200
# test images and retraining moves that by a few images either way.
TOP1_TOLERANCE = 0.1
TIMEOUT = 900
SHARD = re.compile(r"^(predictions|train)-\d{5}-of-\d{5}$")
PNG_END = b"IEND\xaeB`\x82"


# === Running and killing the driver ===


def _command(config, workdir):
    return [sys.executable, "scripts/noisy_student.py", f"--config={config}",
            f"--workdir={workdir}", "--no_progress"]


def _env():
    return dict(os.environ, PYTHONPATH=testing.REPO,
                TF_CPP_MIN_LOG_LEVEL="3")


def run_driver(config, workdir):
    proc = subprocess.run(_command(config, workdir), cwd=testing.REPO,
                          env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def kill_driver(config, workdir, trigger, delay):
    """Starts the driver, SIGKILLs it `delay` s after `trigger` (a glob
    under the workdir) first matches; returns the finished stages then."""
    log = open(os.path.join(os.path.dirname(workdir), "killed.log"), "a")
    proc = subprocess.Popen(_command(config, workdir), cwd=testing.REPO,
                            env=_env(), stdout=log, stderr=log)
    try:
        deadline = time.time() + TIMEOUT
        while not list(workdir.glob(trigger)):
            assert proc.poll() is None, (
                f"the run ended (status {proc.returncode}) before {trigger}")
            assert time.time() < deadline, f"no {trigger} in {TIMEOUT} s"
            time.sleep(0.02)
        end = time.time() + delay
        while time.time() < end and proc.poll() is None:
            time.sleep(0.01)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        log.close()
    assert alive, f"the run finished within {delay:.2f} s of {trigger}"
    return sorted(os.path.relpath(root, workdir)
                  for root, _, files in os.walk(workdir)
                  if "result.json" in files)


def fork(reference, workdir, keep):
    """Copies the reference's finished `keep` paths; rewrites its paths."""
    os.makedirs(workdir)
    for name in keep:
        source, target = reference / name, workdir / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            os.makedirs(target.parent, exist_ok=True)
            shutil.copy2(source, target)
    for root, _, files in os.walk(workdir):
        for name in files:
            if name.endswith(".json"):
                path = os.path.join(root, name)
                with open(path) as handle:
                    text = handle.read()
                with open(path, "w") as handle:
                    handle.write(text.replace(f"{reference}/",
                                              f"{workdir}/"))
    return workdir


# === Checks ===


def _files(workdir):
    return [os.path.join(root, name) for root, dirs, files
            in os.walk(workdir) for name in dirs + files]


def _is_temporary(path):
    name = os.path.basename(path)
    # Ours (.tmp-), TF's checkpoint state (checkpoint.tmp<hex>) and its
    # sharded-save directory (ckpt-N_temp).
    return ".tmp" in name or name.endswith("_temp")


def assert_no_half_written_file(workdir):
    """Every file under a final name is complete and readable."""
    for path in _files(workdir):
        if any(_is_temporary(part) for part in path.split(os.sep)) or \
                os.path.isdir(path):
            continue
        name = os.path.basename(path)
        if name.endswith(".json"):
            with open(path) as handle:
                content = json.load(handle)
            if name == "result.json" and "model_path" in content:
                # A stage is marked done only after its model is written.
                assert os.path.exists(content["model_path"]), path
        elif name.endswith(".jsonl"):
            with open(path) as handle:
                for line in handle:
                    json.loads(line)
        elif name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
        elif name.endswith(".png"):
            with open(path, "rb") as handle:
                assert handle.read().endswith(PNG_END), path
        elif SHARD.match(name):
            for _ in tf.data.TFRecordDataset(path):
                pass
        elif name.endswith(".index") and "checkpoints" in path:
            _read_checkpoint(path[:-len(".index")])
        elif name == "saved_model.pb":
            _read_checkpoint(os.path.join(os.path.dirname(path),
                                          "variables", "variables"))


def _read_checkpoint(prefix):
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def _ids(directory):
    ids = []
    for index in range(NUM_SHARDS):
        ds = predict.prediction_dataset(directory, index, NUM_SHARDS, 10)
        ids += [int(r["id"]) for r in ds.as_numpy_iterator()]
    return ids


def _predictions(directory):
    out = {}
    for index in range(NUM_SHARDS):
        ds = predict.prediction_dataset(directory, index, NUM_SHARDS, 10)
        out.update({int(r["id"]): r["probabilities"]
                    for r in ds.as_numpy_iterator()})
    return out


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def _shard_names(prefix):
    return sorted(f"{prefix}-{i:05d}-of-{NUM_SHARDS:05d}"
                  for i in range(NUM_SHARDS))


def check_iteration(workdir, reference, iteration, exact):
    """Labels and filtered shards of `iter{iteration}`, counted exactly."""
    labels = workdir / f"iter{iteration}" / "labels"
    ref_labels = reference / f"iter{iteration}" / "labels"
    assert sorted(p for p in os.listdir(labels) if SHARD.match(p)) == \
        _shard_names("predictions")
    assert sorted(os.listdir(labels / "info")) == [
        f"{name}.json" for name in _shard_names("predictions")]
    ids = _ids(str(labels))
    expected = sorted(_ids(str(ref_labels)))
    assert len(expected) == len(set(expected)) == NUM_UNLABELED
    assert sorted(ids) == expected  # every id exactly once
    assert _read(labels / "result.json")["num_records"] == NUM_UNLABELED
    assert sum(_read(labels / "info" / f"{n}.json")["num_records"]
               for n in _shard_names("predictions")) == NUM_UNLABELED

    filtered = workdir / f"iter{iteration}" / "filter"
    data = filtered / "data"
    assert sorted(p for p in os.listdir(data) if SHARD.match(p)) == \
        _shard_names("train")
    stats = _read(filtered / "stats.json")
    assert _read(filtered / "result.json") == stats
    records = readers.pseudo_label_source(
        str(data / "train-?????-of-?????"), 10)
    kept = [(int(r["id"]), int(r["label"]))
            for r in records.as_numpy_iterator()]
    assert len(kept) == stats["num_records"] == sum(
        _read(data / "info" / f"{n}.json")["num_records"]
        for n in _shard_names("train"))
    assert np.bincount([label for _, label in kept], minlength=10).tolist() \
        == stats["per_class_after"]
    assert {i for i, _ in kept} <= set(expected)
    assert stats["num_predictions"] == NUM_UNLABELED
    if exact:  # same teacher as the reference: same labels, same filter
        ours, theirs = _predictions(str(labels)), _predictions(
            str(ref_labels))
        for record_id, probabilities in theirs.items():
            np.testing.assert_allclose(ours[record_id], probabilities,
                                       atol=1e-6)
        assert stats == _read(reference / f"iter{iteration}" / "filter" /
                              "stats.json")
        ref_kept = readers.pseudo_label_source(
            str(reference / f"iter{iteration}" / "filter" / "data" /
                "train-?????-of-?????"), 10)
        assert sorted(kept) == sorted(
            (int(r["id"]), int(r["label"]))
            for r in ref_kept.as_numpy_iterator())
    return stats["num_records"]


def check_finished(workdir, reference, num_students, exact_iterations=()):
    """The resumed run against the uninterrupted reference."""
    leftovers = [p for p in _files(workdir) if _is_temporary(p)]
    assert leftovers == []
    assert_no_half_written_file(workdir)
    report, ref_report = (_read(workdir / "report.json"),
                          _read(reference / "report.json"))
    assert len(report["iterations"]) == num_students
    stages = ["teacher"] + [f"iter{i}/student"
                            for i in range(1, num_students + 1)]
    for stage in stages:
        assert _read(workdir / stage / "result.json")["steps"] == STEPS
        assert os.path.exists(workdir / stage / "checkpoints" / "checkpoint")
    assert report["teacher"]["steps"] == ref_report["teacher"]["steps"]
    assert abs(report["teacher"]["top1"] - ref_report["teacher"]["top1"]) \
        <= TOP1_TOLERANCE
    for index, (ours, theirs) in enumerate(
            zip(report["iterations"], ref_report["iterations"]), start=1):
        exact = index in exact_iterations
        count = check_iteration(workdir, reference, index, exact)
        assert ours["num_pseudo_labeled"] == count
        if exact:
            assert count == theirs["num_pseudo_labeled"]
        assert ours["student"]["steps"] == theirs["student"]["steps"]
        assert abs(ours["student"]["top1"] - theirs["student"]["top1"]) <= \
            TOP1_TOLERANCE, (ours, theirs)
    # The last stage's trainer resumes at its final step from what is there.
    last = workdir / stages[-1]
    config = ml_collections.ConfigDict(_read(last / "config.json"))
    assert trainer.Trainer(config, str(last)).initialize() == STEPS
    # One version: a kill mid-export leaves no half version behind.
    assert os.listdir(workdir / "export") == ["1"]
    assert (workdir / "export" / "1" / "saved_model.pb").exists()


# === CI: one kill during labeling, one during student training ===


@pytest.fixture(scope="module")
def one_student(tmp_path_factory):
    """(config path, uninterrupted reference workdir)."""
    tmp = tmp_path_factory.mktemp("faults")
    config = tmp / "one_student.py"
    config.write_text(ONE_STUDENT)
    reference = tmp / "reference"
    run_driver(config, reference)
    return config, reference


def test_killed_while_labeling_then_while_training_a_student(
        tmp_path, one_student):
    config, reference = one_student
    rng = random.Random(0)
    workdir = fork(reference, tmp_path / "run", ["config.json", "teacher"])
    # Shard 0 of 2 is committed, shard 1 is being written: its temporary
    # exists from before its first batch until its commit.
    done = kill_driver(config, workdir,
                       "iter1/labels/predictions-00001-of-00002.tmp-*",
                       rng.uniform(0, 0.05))
    assert "iter1/labels" not in done
    assert_no_half_written_file(workdir)
    # The student has saved (or is saving) its step-10 checkpoint of 20.
    done = kill_driver(config, workdir, "iter1/student/checkpoints",
                       rng.uniform(0, 0.3))
    assert "iter1/student" not in done
    assert_no_half_written_file(workdir)
    proc = run_driver(config, workdir)
    assert "teacher: complete, skipped" in proc.stdout
    check_finished(workdir, reference, 1, exact_iterations={1})


def test_a_labeling_host_leaves_other_hosts_shards_alone(tmp_path):
    # Hosts label disjoint shards into one directory; cleaning up after a
    # killed run must not delete a shard another host is writing.
    from noisy_student_tf import models
    from noisy_student_tf.labeling import tfrecord_io
    from noisy_student_tf.training import checkpoints

    teacher = str(tmp_path / "teacher.keras")
    checkpoints.save_model_atomic(models.create_model(
        "efficientnet_b0", num_classes=10, input_shape=(32, 32, 1),
        **testing.TINY_MODEL["overrides"]), teacher)
    labels = tmp_path / "labels"
    labels.mkdir()
    ours = labels / "predictions-00000-of-00002.tmp-dead0000"  # killed
    theirs = labels / "predictions-00001-of-00002.tmp-live0000"  # writing
    ours.write_bytes(b"half a shard")
    theirs.write_bytes(b"in progress")
    predict.generate_pseudo_labels(
        teacher, ml_collections.ConfigDict(dict(
            kind="fashion_mnist", split="test", limit=40)), testing.PP,
        str(labels), num_shards=2, shard_indices=[0], progress=False)
    assert not ours.exists() and theirs.exists()
    assert tfrecord_io.shard_complete(str(labels), "predictions", 0, 2)
    assert len(_ids_of_shard(labels, 0)) == 20


def _ids_of_shard(directory, index):
    ds = predict.prediction_dataset(str(directory), index, NUM_SHARDS, 10)
    return [int(r["id"]) for r in ds.as_numpy_iterator()]


# === Full sweep: every stage, several kill points (-m faults) ===


# stage -> (finished paths forked from the reference, kill trigger, the
# reference's files whose times bound the kill delay, iterations labeled by
# a reference model). The delay is uniform over the time the reference run
# took from the first to the second file, so kills land inside the stage.
SWEEP = {
    "teacher": ([], "teacher/checkpoints",
                ("teacher/checkpoints/ckpt-10.index", "teacher/result.json"),
                ()),
    "labels": (["config.json", "teacher"], "iter1/labels/info/*.json",
               ("iter1/labels/info/predictions-00000-of-00002.json",
                "iter1/labels/result.json"), (1,)),
    "filter": (["config.json", "teacher", "iter1/labels"],
               "iter1/filter/stats",
               ("iter1/filter/stats/histogram-00000-of-00002.json",
                "iter1/filter/result.json"), (1,)),
    "student": (["config.json", "teacher", "iter1/labels", "iter1/filter"],
                "iter1/student/checkpoints",
                ("iter1/student/checkpoints/ckpt-10.index",
                 "iter1/student/result.json"), (1,)),
    "iter2": (["config.json", "teacher", "iter1"], "iter2/labels/info",
              ("iter2/labels/info/predictions-00000-of-00002.json",
               "iter2/student/result.json"), (1, 2)),
    # The export's own writes (variables first, its record last): the
    # span from the student's result.json also held the driver's work
    # before the temporary appears, so a delay drawn from it outlived the
    # export (the run finished before the kill).
    "export": (["config.json", "teacher", "iter1", "iter2"],
               ".tmp-export-*",
               ("export/1/variables/variables.data-00000-of-00001",
                "export/1/assets.extra/export.json"),
               (1, 2)),
}


@pytest.fixture(scope="module")
def demo_reference(tmp_path_factory):
    reference = tmp_path_factory.mktemp("demo") / "reference"
    run_driver(DEMO, reference)
    return reference


@pytest.mark.faults
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stage", list(SWEEP))
def test_killed_anywhere_in_a_stage_resumes(tmp_path, demo_reference,
                                            stage, seed):
    keep, trigger, (first, last), exact = SWEEP[stage]
    window = (os.path.getmtime(demo_reference / last)
              - os.path.getmtime(demo_reference / first))
    delay = random.Random(f"{stage}-{seed}").uniform(0, max(window, 0.0))
    workdir = fork(demo_reference, tmp_path / "run", keep)
    done = kill_driver(DEMO, workdir, trigger, delay)
    print(f"{stage}/{seed}: killed {delay:.2f} s (of {window:.2f}) after "
          f"{trigger} with {done} finished")
    assert_no_half_written_file(workdir)
    run_driver(DEMO, workdir)
    check_finished(workdir, demo_reference, 2, exact_iterations=exact)
