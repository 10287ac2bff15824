"""The suite on saved models: settings, per-model cache, table, script."""

import json
import os

import keras
import ml_collections
import pytest

from noisy_student_tf import models
from noisy_student_tf.configs import common
from noisy_student_tf.configs import fashion_mnist_demo
from noisy_student_tf.robustness import corruptions
from noisy_student_tf.robustness import model_suite
from noisy_student_tf.robustness import suite
from noisy_student_tf.training import checkpoints
from tests import testing

DEMO_EVAL_PP = fashion_mnist_demo.CLEAN + fashion_mnist_demo.LABELED_KEYS


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Two tiny untrained EfficientNets saved as a teacher and a student."""
    root = tmp_path_factory.mktemp("run")
    paths = []
    for index, stage in enumerate(("teacher", "iter1/student")):
        keras.utils.set_random_seed(index)
        model = models.create_model(
            "efficientnet_b0", num_classes=10, input_shape=(32, 32, 1),
            width_coefficient=0.25, depth_coefficient=0.25)
        os.makedirs(root / stage)
        paths.append(checkpoints.save_model_atomic(
            model, str(root / stage / "model.keras")))
    return root, paths


def test_evaluate_models_caches_and_reports(saved_models, fashion_mnist_dir,
                                            monkeypatch):
    root, (teacher, student) = saved_models
    config = fashion_mnist_demo.get_config("quick")
    settings = common.robustness_config(quick=True)
    runs = [(name, path, DEMO_EVAL_PP, os.path.dirname(path))
            for name, path in (("teacher", teacher), ("student 1", student))]
    calls = []
    run_suite = suite.run_robustness_suite

    def counting_suite(*args, **kwargs):
        calls.append(kwargs)
        return run_suite(*args, **kwargs)

    monkeypatch.setattr(suite, "run_robustness_suite", counting_suite)
    result = model_suite.evaluate_models(runs, config.data.eval.to_dict(),
                                         settings, str(root), progress=False)
    json.dumps(result)
    assert result["names"] == ["teacher", "student 1"]
    assert result["plot"] == "robustness.png"
    assert os.path.getsize(root / "robustness.png") > 1000
    teacher_report = result["models"]["teacher"]
    assert teacher_report["num_examples"] == 64
    assert teacher_report["settings"]["constants"] == "cifar"  # 32 px
    assert set(teacher_report["adversarial"]["pgd"]) == {"2", "8"}
    cache = root / "teacher" / "robustness.json"
    mtime = os.path.getmtime(cache)
    assert len(calls) == 2

    # A resumed run reads both caches; other settings recompute.
    again = model_suite.evaluate_models(runs, config.data.eval.to_dict(),
                                        settings, str(root), progress=False)
    assert again["models"] == json.loads(json.dumps(result["models"]))
    assert len(calls) == 2 and os.path.getmtime(cache) == mtime
    settings.epsilons = [4]
    model_suite.evaluate_model_robustness(
        teacher, config.data.eval, DEMO_EVAL_PP, settings,
        str(root / "teacher"), progress=False)
    assert len(calls) == 3

    lines = "\n".join(model_suite.report_lines(result))
    assert "## Robustness" in lines
    assert "| model | clean top-1 | corruption error | mCE |" in lines
    assert "| teacher |" in lines and "| student 1 |" in lines
    assert "FGSM ε=8" in lines and "PGD ε=2" in lines
    assert "![robustness](robustness.png)" in lines


def test_settings_are_checked():
    with pytest.raises(ValueError, match="num_exampels"):
        model_suite.resolve_config({"num_exampels": 10})
    config = model_suite.resolve_config({"epsilons": [1]})
    assert config.epsilons == [1] and config.pgd_steps == 10


def test_default_settings_and_their_corruption_names():
    config = common.robustness_config()
    assert isinstance(config, ml_collections.ConfigDict)
    # configs/common.py writes the names out; they must be the library's.
    assert tuple(config.corruptions) == corruptions.CORRUPTIONS
    assert tuple(config.severities) == corruptions.SEVERITIES
    assert config.epsilons == [1, 2, 4, 8, 16]
    quick = common.robustness_config(quick=True)
    assert (quick.num_examples, len(quick.corruptions),
            len(quick.severities), len(quick.epsilons), quick.pgd_steps,
            quick.num_perturbation_sequences) == (64, 3, 2, 2, 2, 4)
    assert set(quick.corruptions) <= set(corruptions.CORRUPTIONS)
    # Each call is a fresh copy: a config's edits never leak into another.
    quick.corruptions.append("fog")
    assert len(common.robustness_config(quick=True).corruptions) == 3


def test_script_end_to_end_and_missing_model(saved_models, tmp_path,
                                             fashion_mnist_dir):
    _, (teacher, student) = saved_models
    out = tmp_path / "out"
    proc = testing.run_script([
        "scripts/robustness.py", "--source=fashion_mnist",
        f"--pp={DEMO_EVAL_PP}", f"--model={teacher},{student}",
        "--names=teacher,student", f"--output_dir={out}", "--quick",
        "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.load(open(out / "robustness.json"))
    assert result["names"] == ["teacher", "student"]
    assert result["settings"]["num_examples"] == 64
    assert os.path.exists(out / "robustness.png")
    assert "| teacher |" in proc.stdout

    proc = testing.run_script([
        "scripts/robustness.py",
        "--config=noisy_student_tf/configs/fashion_mnist_demo.py:quick",
        f"--model={tmp_path / 'missing.keras'}", f"--output_dir={out}",
        "--quick"])
    assert proc.returncode == 1
    assert testing.last_line(proc.stderr).startswith("error: model file")
    assert "Traceback" not in proc.stderr
