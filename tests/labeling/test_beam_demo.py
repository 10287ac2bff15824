"""labeling.engine="beam" on the demo's `:quick` config, through the
per-stage binaries: the same pseudo-labels as the local engine.

The CI test labels with an untrained teacher of the `:quick` architecture
(its predictions are skewed, so the filter both subsamples and
duplicates); the slow test runs the whole driver with each engine.
"""

import json
import os
import shutil

import pytest

from noisy_student_tf import io_utils
from noisy_student_tf.experiment import stages
from noisy_student_tf.configs import common
from noisy_student_tf.configs import fashion_mnist_demo
from tests import testing
from tests.labeling import test_predict

beam = pytest.importorskip("apache_beam")  # in the `dev` extra CI installs

CONFIG = "noisy_student_tf/configs/fashion_mnist_demo.py:quick"
TWO_WORKERS = ("--direct_num_workers=2 "
               "--direct_running_mode=multi_threading")


def run_script(args, **kwargs):
    """testing.run_script, seeing the apache_beam this process imported."""
    site = os.path.dirname(os.path.dirname(beam.__file__))
    env = {"PYTHONPATH": os.pathsep.join([testing.REPO, site])}
    return testing.run_script(args, env=env, **kwargs)


def _teacher_stage(config, workdir):
    """A finished teacher stage holding an untrained `:quick` teacher."""
    stage = common.stage_config(config, config.teacher)
    stage_dir = workdir / "teacher"
    stage_dir.mkdir(parents=True)
    path = str(stage_dir / "model.keras")
    test_predict.tiny_teacher(path)
    io_utils.atomic_write_json(str(stage_dir / "config.json"),
                               stage.to_dict())
    io_utils.mark_stage_done(str(stage_dir), {"model_path": path})
    return {"model_path": path}, stage


def test_quick_demo_labels_and_filters_the_same_with_beam(tmp_path):
    config = fashion_mnist_demo.get_config("quick")
    local, beam = tmp_path / "local", tmp_path / "beam"
    teacher, teacher_stage = _teacher_stage(config, local)
    labels = stages.label(config, teacher, teacher_stage,
                          str(local / "iter1"), progress=False)
    filtered = stages.filter_labels(config, str(local / "iter1"))
    # The beam workdir shares the teacher (its result names the model file
    # by absolute path).
    shutil.copytree(local / "teacher", beam / "teacher")
    # Labeling through the binary's flags (two workers); filtering through
    # the driver's function with the engine set in the config.
    proc = run_script(["scripts/pseudo_label.py", f"--config={CONFIG}",
                       f"--workdir={beam}", "--engine=beam",
                       f"--beam_options={TWO_WORKERS}", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    config.labeling.engine = "beam"
    config.labeling.beam_options = TWO_WORKERS
    stages.filter_labels(config, str(beam / "iter1"))
    beam_labels = json.loads((beam / "iter1" / "labels" /
                              "result.json").read_text())
    beam_filtered = json.loads((beam / "iter1" / "filter" /
                                "result.json").read_text())
    assert beam_labels["engine"] == "beam"
    assert beam_labels["num_records"] == labels["num_records"] == 600
    # num_pseudo_labeled of the report is the filter's num_records.
    assert beam_filtered == filtered
    assert filtered["num_records"] > 0
    for name in ("thresholds.json", "stats.json"):
        assert (beam / "iter1" / "filter" / name).read_text() == \
            (local / "iter1" / "filter" / name).read_text()
    for shard in sorted((local / "iter1" / "filter" / "data").glob(
            "train-*")):
        assert shard.read_bytes() == (beam / "iter1" / "filter" / "data" /
                                      shard.name).read_bytes()


@pytest.mark.slow
def test_quick_demo_driver_with_beam_reports_the_same_pseudo_labels(
        tmp_path):
    reports = {}
    for engine in ("local", "beam"):
        workdir = tmp_path / engine
        proc = run_script([
            "scripts/noisy_student.py", f"--config={CONFIG}",
            f"--workdir={workdir}", "--no_progress",
            f"--config.labeling.engine={engine}",
            "--config.robustness.enabled=False"], timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports[engine] = json.loads((workdir / "report.json").read_text())
    counts = {engine: [i["num_pseudo_labeled"] for i in report["iterations"]]
              for engine, report in reports.items()}
    assert counts["beam"] == counts["local"]
    assert all(count > 0 for count in counts["local"])
