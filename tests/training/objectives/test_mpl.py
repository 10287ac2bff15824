"""Meta Pseudo Labels: reward sign/value, baseline, UDA masking and ramp,
pseudo labels, a non-zero feedback gradient, and the `:quick` run."""

import json

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.configs import mpl_fashion_mnist
from noisy_student_tf.training.objectives import mpl
from noisy_student_tf.training.objectives import mpl_losses
from tests import testing
from tests.training.objectives import fakes


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# === Reward and baseline ===

def test_reward_is_sign_times_old_minus_new():
    assert float(mpl_losses.raw_reward(2.0, 1.5)) == pytest.approx(0.5)
    # The released code's sign: L_new - L_old.
    assert float(mpl_losses.raw_reward(2.0, 1.5, sign=-1.0)) == \
        pytest.approx(-0.5)
    assert float(mpl_losses.raw_reward(2.0, 1.5, clip=0.1)) == \
        pytest.approx(0.1)
    assert float(mpl_losses.raw_reward(1.0, 3.0, clip=0.1)) == \
        pytest.approx(-0.1)


def test_baseline_is_updated_then_subtracted():
    h, baseline = mpl_losses.subtract_baseline(tf.constant(0.5), 0.2, 0.99)
    assert float(baseline) == pytest.approx(0.2 + 0.01 * 0.3)
    assert float(h) == pytest.approx(0.5 - 0.203)
    # A constant reward is absorbed: the centred signal decays to 0.
    b = 0.0
    for _ in range(2000):
        h, b = mpl_losses.subtract_baseline(tf.constant(0.5), b, 0.99)
    assert float(b) == pytest.approx(0.5, abs=1e-4)
    assert abs(float(h)) < 1e-4


# === UDA ===

def test_sharpening_matches_softmax_over_temperature():
    logits = np.array([[1.0, 0.0, -1.0]], np.float32)
    got = mpl_losses.sharpened_targets(logits, 0.5).numpy()
    np.testing.assert_allclose(got, softmax(logits / 0.5), rtol=1e-6)
    assert got.max() > softmax(logits).max()


def test_uda_mask_uses_the_sharpened_distribution():
    weak = np.array([[1.0, 0.0, 0.0], [0.1, 0.0, 0.0]], np.float32)
    strong = np.array([[0.5, 0.2, -0.3], [0.0, 1.0, 0.0]], np.float32)
    # Row 0: max prob 0.576 un-sharpened but 0.787 at T = 0.5; row 1: 0.38.
    assert softmax(weak[0]).max() < 0.7 < softmax(weak[0] / 0.5).max()
    loss, mask = mpl_losses.uda_loss(weak, strong, 0.5, 0.7)
    np.testing.assert_array_equal(mask, [1.0, 0.0])
    targets = softmax(weak / 0.5)
    per_example = -(targets * np.log(softmax(strong))).sum(-1)
    # Sum over kept rows divided by the whole unlabeled batch (2).
    assert float(loss) == pytest.approx(per_example[0] / 2, rel=1e-5)
    _, none_kept = mpl_losses.uda_loss(weak, strong, 1.0, 0.7)
    np.testing.assert_array_equal(none_kept, [0.0, 0.0])


def test_uda_weight_ramps_linearly():
    assert float(mpl_losses.uda_weight_at(0, 8.0, 1000)) == 0.0
    assert float(mpl_losses.uda_weight_at(250, 8.0, 1000)) == \
        pytest.approx(2.0)
    assert float(mpl_losses.uda_weight_at(5000, 8.0, 1000)) == 8.0
    assert float(mpl_losses.uda_weight_at(3, 8.0, 0)) == 8.0


def test_forward_without_updates_keeps_state_and_repeats_masks():
    model = tf.keras.Sequential([
        tf.keras.Input((6,)), tf.keras.layers.Dense(8),
        tf.keras.layers.BatchNormalization(), tf.keras.layers.Dropout(0.5),
        tf.keras.layers.Dense(3)])
    x = tf.random.normal([16, 6], seed=1)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    state = [tf.identity(v.value) for v in model.non_trainable_variables]
    first = mpl_losses.forward_without_updates(model, x, state)
    again = mpl_losses.forward_without_updates(model, x, state)
    # Same state: same batch statistics and dropout masks; nothing moved.
    np.testing.assert_array_equal(first, again)
    for old, var in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(old, var.numpy())
    model(x, training=True)  # a normal call does update the statistics.
    assert not np.allclose(before[0], model.non_trainable_variables[0])


# === Pseudo labels and the feedback gradient ===

def test_pseudo_labels_argmax_and_sampled():
    logits = np.log(np.tile([[0.7, 0.2, 0.1]], [20000, 1])).astype(
        np.float32)
    assert set(mpl_losses.pseudo_labels(logits, "argmax").numpy()) == {0}
    seed = tf.constant([1, 2], tf.int64)
    drawn = mpl_losses.pseudo_labels(logits, "sample", seed).numpy()
    np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 20000,
                               [0.7, 0.2, 0.1], atol=0.015)
    again = mpl_losses.pseudo_labels(logits, "sample", seed).numpy()
    np.testing.assert_array_equal(drawn, again)  # reproducible on resume
    with pytest.raises(ValueError, match="sample"):
        mpl_losses.pseudo_labels(logits, "soft")


def test_feedback_gradient_is_nonzero_unlike_the_released_term():
    logits = tf.Variable([[2.0, 0.5, -1.0], [0.0, 1.0, 0.5]])
    labels = tf.constant([1, 2])
    with tf.GradientTape(persistent=True) as tape:
        ours = mpl_losses.hard_cross_entropy(labels, logits)
        released = -tf.reduce_mean(tf.reduce_sum(
            tf.stop_gradient(tf.nn.softmax(logits))
            * tf.nn.log_softmax(logits), -1))
    grad = tape.gradient(ours, logits).numpy()
    want = (softmax(logits.numpy()) - np.eye(3)[[1, 2]]) / 2
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tape.gradient(released, logits), 0.0,
                               atol=1e-7)


# === The objective's step on a hand-made case ===

def _objective(**mpl_options):
    config = ml_collections.ConfigDict(dict(
        unlabel_ratio=1, batch_size=4, label_smoothing=0.0,
        weight_decay=0.0, optimizer="sgd", seed=0,
        pp=dict(unlabeled_weak="x", unlabeled_strong="x"),
        teacher=dict(model=dict(name="unused"), weight_decay=0.0,
                     label_smoothing=0.0),
        mpl=dict(dict(uda_steps=0, pseudo_label="argmax"), **mpl_options)))
    objective = mpl.MetaPseudoLabelsObjective(config)
    # A teacher that already knows the classes, a student at zero.
    objective.teacher = fakes.dense_model(4, 4, kernel=3.0 * np.eye(4))
    objective.teacher_optimizer = tf.keras.optimizers.SGD(0.1)
    objective.baseline = tf.Variable(0.0)
    return objective, fakes.FakeTrainer(fakes.dense_model(4, 4), 0.5)


def _batch():
    x = tf.constant(np.eye(4) + 0.1, tf.float32)
    labels = tf.constant([0, 1, 2, 3], tf.int64)
    return {"labeled": {"image": x, "label": labels},
            "unlabeled": {"image": x, "teacher_image": x, "label": labels}}


def test_step_reward_sign_and_value_on_a_hand_case():
    # The teacher's labels are the true ones and the student's images
    # are the labeled ones, so its step lowers the labeled loss: h > 0.
    objective, trainer = _objective()
    metrics = objective.replica_step(trainer, _batch())
    assert float(metrics["pseudo_acc"]) == 1.0
    assert float(metrics["l_old"]) == pytest.approx(np.log(4), rel=1e-5)
    assert float(metrics["l_new"]) < float(metrics["l_old"])
    assert float(metrics["h"]) == pytest.approx(
        float(metrics["l_old"] - metrics["l_new"]), rel=1e-5)
    flipped, trainer = _objective(reward_sign=-1.0)
    assert float(flipped.replica_step(trainer, _batch())["h"]) == \
        pytest.approx(-float(metrics["h"]), rel=1e-5)
    # Without batch norm the released code's L_old (joint pass) agrees.
    joint, trainer = _objective(matched_losses=False)
    assert float(joint.replica_step(trainer, _batch())["h"]) == \
        pytest.approx(float(metrics["h"]), rel=1e-5)


def test_step_baseline_option_updates_the_variable():
    objective, trainer = _objective(baseline=True, baseline_decay=0.9)
    metrics = objective.replica_step(trainer, _batch())
    h_raw = float(metrics["h_raw"])
    assert float(objective.baseline) == pytest.approx(0.1 * h_raw, rel=1e-5)
    assert float(metrics["h"]) == pytest.approx(0.9 * h_raw, rel=1e-5)


def test_step_feedback_term_moves_the_teacher():
    weights = {}
    for weight in (0.0, 1.0):
        objective, trainer = _objective(feedback_weight=weight)
        objective.replica_step(trainer, _batch())
        weights[weight] = objective.teacher.get_weights()[0]
    assert not np.allclose(weights[0.0], weights[1.0], atol=1e-6)


def test_options_are_validated():
    with pytest.raises(ValueError, match="unknown mpl option"):
        _objective(uda_wieght=1.0)
    with pytest.raises(ValueError, match="pseudo_label"):
        _objective(pseudo_label="soft")
    with pytest.raises(ValueError, match="reward_sign"):
        _objective(reward_sign=0.5)


def test_config_variants_cover_the_ablation():
    on = mpl_fashion_mnist.get_config()
    off = mpl_fashion_mnist.get_config("feedback=0")
    assert on.student.mpl.feedback_weight == 1.0
    assert off.student.mpl.feedback_weight == 0.0
    assert mpl_fashion_mnist.get_config(
        "label=argmax").student.mpl.pseudo_label == "argmax"
    # Checkpoints are chosen on a validation split disjoint from labels.
    select = on.data.validation.select
    assert select.part == "validation" and select.validation_per_class > 0
    assert on.data.eval.split == "test"


def test_quick_experiment_end_to_end(tmp_path):
    workdir = tmp_path / "mpl"
    proc = testing.run_script([
        "scripts/run_method.py",
        "--config=noisy_student_tf/configs/mpl_fashion_mnist.py:quick",
        f"--workdir={workdir}", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(workdir / "report.json"))
    assert report["method"] == "mpl"
    assert "top1" in report["teachers"]["mpl_teacher"]
    for stage in ("student", "finetune"):
        assert {"step", "top1"} <= set(report[stage]["best_validation"])
    assert report["final"]["stage"] == "finetune"
    finetune = json.load(open(workdir / "finetune" / "config.json"))
    assert finetune["model"]["init"] == report["student"]["selected_path"]
    history = [json.loads(line) for line in
               open(workdir / "mpl" / "metrics.jsonl")]
    assert any("h" in row and "uda_mask" in row for row in history)


MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from noisy_student_tf.configs import common
from noisy_student_tf.configs import mpl_fashion_mnist
from noisy_student_tf.training import trainer
config = mpl_fashion_mnist.get_config("quick")
config.student.mpl.baseline = True
config.student.mpl.pseudo_label = "sample"
data = {k: config.data[k].to_dict() for k in ("unlabeled", "validation")}
stage = common.stage_config(config, config.student, method="mpl",
                            data=data, strategy="mirrored")
run = trainer.Trainer(stage, sys.argv[1])
assert run.num_replicas == 2, run.num_replicas
result = run.run(progress=False)
print("STEPS", result["steps"], "BASELINE", float(run.objective.baseline.numpy()))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    proc = testing.run_script([str(script), str(tmp_path / "run")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STEPS 6" in proc.stdout
    assert "BASELINE 0.0" not in proc.stdout
