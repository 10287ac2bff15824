"""Knowledge distillation: the loss against hand values, T^2 gradient
scaling, one step, and the `:quick` experiment."""

import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.training.objectives import kd
from tests import testing
from tests.training.objectives import fakes


def log_softmax(x):
    x = np.asarray(x, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


STUDENT = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], np.float32)
TEACHER = np.array([[0.3, 2.5, -1.0], [1.0, 0.0, 2.0]], np.float32)
LABELS = np.array([1, 2])


def hand_kd(alpha, temperature, t2=True):
    hard = -log_softmax(STUDENT)[np.arange(2), LABELS].mean()
    log_pt = log_softmax(TEACHER / temperature)
    log_ps = log_softmax(STUDENT / temperature)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(-1).mean()
    scale = temperature ** 2 if t2 else 1.0
    return (1 - alpha) * hard + alpha * scale * kl, hard, kl


@pytest.mark.parametrize("alpha,temperature", [(0.7, 3.0), (0.0, 2.0),
                                               (1.0, 5.0), (0.5, 1.0)])
def test_loss_matches_hand_values(alpha, temperature):
    total, parts = kd.distillation_loss(LABELS, STUDENT, TEACHER, alpha,
                                        temperature)
    want, hard, kl = hand_kd(alpha, temperature)
    assert float(parts["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(parts["kl_loss"]) == pytest.approx(kl, rel=1e-5)
    assert float(total) == pytest.approx(want, rel=1e-5)


def test_t2_factor_multiplies_only_the_soft_term():
    with_t2, _ = kd.distillation_loss(LABELS, STUDENT, TEACHER, 0.6, 4.0)
    without, parts = kd.distillation_loss(LABELS, STUDENT, TEACHER, 0.6,
                                          4.0, t2_scaling=False)
    assert float(with_t2 - without) == pytest.approx(
        0.6 * (16.0 - 1.0) * float(parts["kl_loss"]), rel=1e-5)


def _soft_grad_norm(temperature, t2_scaling):
    rng = np.random.RandomState(0)
    student = tf.Variable(rng.randn(64, 10).astype(np.float32))
    teacher = rng.randn(64, 10).astype(np.float32)
    with tf.GradientTape() as tape:
        loss, _ = kd.distillation_loss(np.zeros(64), student, teacher, 1.0,
                                       temperature, t2_scaling=t2_scaling)
    return float(tf.norm(tape.gradient(loss, student)))


def test_soft_gradient_shrinks_like_one_over_t_squared():
    # Without T^2, doubling a large T quarters the gradient; with it, the
    # gradient magnitude stays put (Hinton et al., section 2).
    ratio_raw = _soft_grad_norm(10.0, False) / _soft_grad_norm(20.0, False)
    ratio_t2 = _soft_grad_norm(10.0, True) / _soft_grad_norm(20.0, True)
    assert ratio_raw == pytest.approx(4.0, rel=0.05)
    assert ratio_t2 == pytest.approx(1.0, rel=0.05)


def test_bad_hyperparameters_and_missing_teacher_raise():
    with pytest.raises(ValueError, match="alpha"):
        kd.check_hyperparameters(1.5, 2.0)
    with pytest.raises(ValueError, match="temperature"):
        kd.check_hyperparameters(0.5, 0.0)
    with pytest.raises(ValueError, match="teacher.path"):
        kd.DistillationObjective(ml_collections.ConfigDict({"x": 1}))


def test_step_trains_the_student_not_the_teacher(tmp_path):
    path = str(tmp_path / "teacher.keras")
    fakes.image_model(10, seed=1).save(path)
    config = ml_collections.ConfigDict(dict(
        teacher=dict(path=path), alpha=0.9, temperature=4.0,
        label_smoothing=0.0, weight_decay=0.0, optimizer="sgd"))
    objective = kd.DistillationObjective(config)
    trainer = fakes.FakeTrainer(fakes.image_model(10, seed=2), 0.1)
    objective.build(trainer)
    before_t = objective.teacher.get_weights()
    before_s = trainer.model.get_weights()
    batch = {"image": tf.random.uniform([8, 32, 32, 1], seed=3),
             "label": tf.constant([0, 1, 2, 3, 4, 5, 6, 7])}
    metrics = objective.replica_step(trainer, batch)
    assert {"loss", "hard_loss", "kl_loss", "teacher_acc"} <= set(metrics)
    for old, new in zip(before_t, objective.teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(not np.allclose(old, new) for old, new in
               zip(before_s, trainer.model.get_weights()))


def test_quick_experiment_end_to_end(tmp_path):
    workdir = tmp_path / "kd"
    proc = testing.run_script([
        "scripts/run_method.py",
        "--config=noisy_student_tf/configs/kd_fashion_mnist.py:quick",
        f"--workdir={workdir}", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(workdir / "report.json"))
    assert report["method"] == "kd"
    # Provenance for results/: the code's commit and the resolved config.
    assert "commit" in report  # None only outside a git checkout
    assert report["commit"] == io_utils.source_commit()
    assert report["config"]["name"] == "kd_fashion_mnist:quick"
    assert report["config"]["student"]["alpha"] == 0.9
    assert set(report["teachers"]) == {"teacher"}
    assert 0.0 <= report["teachers"]["teacher"]["top1"] <= 1.0
    assert {"top1", "best_validation", "selected_top1"} <= set(
        report["student"])
    assert report["final"]["stage"] == "kd"
    assert os.path.exists(report["final"]["model_path"])
    # Rerunning resumes: every finished stage is skipped.
    again = testing.run_script(proc.args[1:])
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("complete, skipped") == 2
    assert json.load(open(workdir / "report.json"))["student"] == \
        report["student"]
