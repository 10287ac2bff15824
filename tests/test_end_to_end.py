"""The README's main job in its `:quick` form, end to end, plus resume.

teacher -> label -> filter -> student x2 -> export -> reload, through the
absl binary, on real Fashion-MNIST.
"""

import json

import numpy as np
import tensorflow as tf

from noisy_student_tf import export
from noisy_student_tf.data import fashion_mnist
from tests import testing

CONFIG = "noisy_student_tf/configs/fashion_mnist_demo.py:quick"


def test_quick_demo_end_to_end_and_resume(tmp_path):
    workdir = tmp_path / "demo"
    # The override is scripts/noisy_student.py's --help example.
    command = ["scripts/noisy_student.py", f"--config={CONFIG}",
               f"--workdir={workdir}", "--no_progress",
               "--config.students.iter1.unlabel_ratio=5"]
    proc = testing.run_script(command)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((workdir / "iter1" / "student" / "config.json")
                      .read_text())["unlabel_ratio"] == 5
    report = json.loads((workdir / "report.json").read_text())
    assert set(report) >= {"teacher", "baseline", "iterations",
                           "export_dir", "wall_seconds"}
    assert len(report["iterations"]) == 2
    for iteration in report["iterations"]:
        assert iteration["num_pseudo_labeled"] > 0
        assert 0.0 <= iteration["student"]["top1"] <= 1.0
    assert "| teacher |" in proc.stdout and "| student 2 |" in proc.stdout
    for name in ("report.md", "accuracy.png", "training_loss.png",
                 "iter1/filter/class_counts.png", "config.json"):
        assert (workdir / name).exists(), name
    # The exported student serves the same predictions as the model file.
    served = export.load_serving(report["export_dir"])
    images = fashion_mnist.load_arrays("test")[0][:4]
    probs = served.signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    # Rerunning resumes: every stage is skipped, the report is the same.
    again = testing.run_script(command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("complete, skipped") == 3
    rerun = json.loads((workdir / "report.json").read_text())
    assert rerun["iterations"] == report["iterations"]


def test_per_stage_binaries_share_the_layout(tmp_path):
    workdir = str(tmp_path / "staged")
    common = [f"--config={CONFIG}", f"--workdir={workdir}"]
    steps = [
        ["scripts/train.py", "--stage=teacher", "--no_progress"],
        ["scripts/pseudo_label.py", "--shard_index=1", "--no_progress"],
        ["scripts/pseudo_label.py", "--shard_index=0", "--no_progress"],
        ["scripts/filter.py"],
        ["scripts/train.py", "--stage=iter1", "--no_progress"],
    ]
    early = testing.run_script(["scripts/train.py", "--stage=iter1"] +
                               common)
    assert early.returncode == 1
    assert "train it first" in testing.last_line(early.stderr)
    for step in steps:
        proc = testing.run_script(step[:1] + common + step[1:])
        assert proc.returncode == 0, (step, proc.stderr[-3000:])
    assert (tmp_path / "staged" / "iter1" / "student" / "result.json").exists()


def test_ceiling_stage_trains_on_every_label(tmp_path):
    workdir = tmp_path / "ceiling"
    proc = testing.run_script([
        "scripts/train.py", "--stage=ceiling", "--no_progress",
        f"--config={CONFIG},ceiling", f"--workdir={workdir}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((workdir / "ceiling" / "config.json").read_text())
    # The quick demo's ceiling: the student model on 600 unselected labels.
    assert config["data"]["labeled"] == dict(
        kind="fashion_mnist", split="train", limit=600, num_classes=10)
    assert config["model"]["overrides"]["width_coefficient"] == 0.25
    result = json.loads((workdir / "ceiling" / "result.json").read_text())
    assert 0.0 <= result["eval"]["top1"] <= 1.0
