"""MEAL V2: ensemble soft CE and discriminator against hand values, joint
gradients and update, and the `:quick` run (discriminator checkpointed)."""

import json

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.training.objectives import meal_v2
from tests import testing
from tests.training.objectives import fakes


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bce_with_logits(x, t):
    x = np.asarray(x, np.float64)
    return np.mean(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))


T1 = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]], np.float32)
T2 = np.array([[0.0, 1.0, 0.0], [-2.0, 1.0, 3.0]], np.float32)
STUDENT = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]], np.float32)


def test_similarity_loss_is_ce_to_mean_of_teacher_softmaxes():
    probs, mean_logits = meal_v2.ensemble_targets([T1, T2])
    p_e = (softmax(T1) + softmax(T2)) / 2
    np.testing.assert_allclose(probs, p_e, rtol=1e-6)
    np.testing.assert_allclose(mean_logits, (T1 + T2) / 2, rtol=1e-6)
    # The mean of softmaxes, not the softmax of the mean logits.
    assert not np.allclose(p_e, softmax((T1 + T2) / 2), atol=1e-3)
    want = -(p_e * np.log(softmax(STUDENT))).sum(-1).mean()
    got = float(meal_v2.similarity_loss(probs, STUDENT))
    assert got == pytest.approx(want, rel=1e-5)


def test_discriminator_targets_and_bce_on_hand_inputs():
    np.testing.assert_array_equal(
        meal_v2.discriminator_targets(2),
        [[1, 0], [1, 0], [0, 1], [0, 1]])
    # A stub D returning the first two logits makes the BCE hand-checkable.
    loss, accuracy = meal_v2.discriminator_loss(
        lambda x: x[:, :2], STUDENT, (T1 + T2) / 2)
    rows = np.concatenate([STUDENT, (T1 + T2) / 2])[:, :2]
    targets = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float64)
    assert float(loss) == pytest.approx(bce_with_logits(rows, targets),
                                        rel=1e-6)
    want_acc = np.mean(rows.argmax(-1) == targets.argmax(-1))
    assert float(accuracy) == pytest.approx(want_acc)


def test_discriminator_shape_follows_the_reference():
    assert meal_v2.discriminator_widths(1000) == (125, 15)
    assert meal_v2.discriminator_widths(10) == (8, 8)
    assert meal_v2.discriminator_widths(10, min_width=2) == (2, 2)
    d = meal_v2.build_discriminator(1000)
    dense = list(d.layers)
    assert [layer.units for layer in dense] == [125, 15, 2]
    # ReLU after every layer, the output included (models/discriminator.py).
    assert all(layer.activation.__name__ == "relu" for layer in dense)
    assert d.count_params() == 1000 * 125 + 125 + 125 * 15 + 15 + 15 * 2 + 2


def test_joint_gradients_reach_discriminator_and_student():
    d = meal_v2.build_discriminator(10)
    rng = np.random.RandomState(0)
    student = tf.Variable(rng.randn(16, 10).astype(np.float32) * 3)
    teacher = rng.randn(16, 10).astype(np.float32) * 3
    with tf.GradientTape() as tape:
        loss, _ = meal_v2.discriminator_loss(d, student, teacher)
    grads = tape.gradient(loss, [student] + d.trainable_variables)
    # No gradient reversal: the student also descends the D loss.
    assert all(g is not None for g in grads)
    assert float(tf.norm(grads[0])) > 0
    assert sum(float(tf.norm(g)) for g in grads[1:]) > 0


def test_needs_teacher_paths():
    with pytest.raises(ValueError, match="teacher.paths"):
        meal_v2.MealV2Objective(ml_collections.ConfigDict({"x": 1}))


def test_step_updates_student_and_discriminator_jointly(tmp_path):
    paths = []
    for seed in (1, 2):
        paths.append(str(tmp_path / f"t{seed}.keras"))
        fakes.image_model(10, seed=seed).save(paths[-1])
    config = ml_collections.ConfigDict(dict(
        teacher=dict(paths=paths), weight_decay=0.0, optimizer="sgd"))
    objective = meal_v2.MealV2Objective(config)
    trainer = fakes.FakeTrainer(fakes.image_model(10, seed=3), 0.1)
    objective.build(trainer)
    trainer.extra_variables = objective.extra_trainable_variables()
    batch = {"image": tf.random.uniform([8, 32, 32, 1], seed=3),
             "label": tf.range(8)}
    d = objective.discriminator
    before = [v.numpy().copy() for v in d.trainable_variables]
    metrics = objective.replica_step(trainer, batch)
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics["sim_loss"] + metrics["d_loss"]), rel=1e-6)
    # The one optimizer also updated the discriminator.
    assert any(not np.allclose(b, v.numpy()) for b, v in
               zip(before, d.trainable_variables))


def test_quick_experiment_end_to_end(tmp_path):
    workdir = tmp_path / "meal"
    proc = testing.run_script([
        "scripts/run_method.py",
        "--config=noisy_student_tf/configs/meal_v2_fashion_mnist.py:quick",
        f"--workdir={workdir}", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(workdir / "report.json"))
    assert report["method"] == "meal_v2"
    assert set(report["teachers"]) == {"teacher1", "teacher2"}
    assert "top1" in report["student_init"]
    assert {"top1", "best_validation", "selected_top1"} <= set(
        report["student"])
    stage = json.load(open(workdir / "meal_v2" / "config.json"))
    assert stage["model"]["init"] == report["student_init"]["selected_path"]
    assert len(stage["teacher"]["paths"]) == 2
    # The run's checkpoint holds the discriminator as its own root child:
    # a fresh one restores from it, with trained (finite) values.
    fresh = meal_v2.build_discriminator(10)
    initial = [v.numpy().copy() for v in fresh.trainable_variables]
    latest = tf.train.latest_checkpoint(
        str(workdir / "meal_v2" / "checkpoints"))
    tf.train.Checkpoint(discriminator=fresh).restore(
        latest).assert_existing_objects_matched()
    restored = [v.numpy() for v in fresh.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(initial, restored))
    assert all(np.isfinite(v).all() for v in restored)
