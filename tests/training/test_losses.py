"""Loss weighting and pseudo-label targets against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.training import losses


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_labeled_loss_uses_label_smoothing():
    logits = np.array([[2.0, 0.0, -1.0]], np.float32)
    got = float(losses.labeled_loss([0], logits, label_smoothing=0.1))
    target = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    assert got == pytest.approx(-(target * log_softmax(logits)[0]).sum(),
                                rel=1e-6)


def test_noisy_student_loss_is_lab_plus_ratio_times_unl():
    rng = np.random.RandomState(0)
    lab_logits = rng.randn(4, 5).astype(np.float32)
    unl_logits = rng.randn(12, 5).astype(np.float32)
    labels = np.array([0, 1, 2, 3])
    probs = rng.dirichlet(np.ones(5), 12).astype(np.float32)
    total, parts = losses.noisy_student_loss(
        labels, lab_logits, probs, unl_logits, unlabeled_weight=3.0,
        label_smoothing=0.1)
    smoothed = np.eye(5)[labels] * 0.9 + 0.02
    lab = -(smoothed * log_softmax(lab_logits)).sum(-1).mean()
    unl = -(probs * log_softmax(unl_logits)).sum(-1).mean()
    assert float(parts["lab_loss"]) == pytest.approx(lab, rel=1e-5)
    assert float(parts["unl_loss"]) == pytest.approx(unl, rel=1e-5)
    # Reference: (lab * B + unl * B * r) / B, not a mean over 4 + 12 images.
    assert float(total) == pytest.approx(lab + 3.0 * unl, rel=1e-5)


def test_offline_soft_targets_with_temperature():
    probs = np.array([[0.6, 0.3, 0.1]], np.float32)
    assert np.allclose(losses.targets_from_probabilities(probs), probs)
    sharp = losses.targets_from_probabilities(probs, temperature=0.5).numpy()
    expected = probs ** 2 / (probs ** 2).sum()
    np.testing.assert_allclose(sharp, expected, rtol=1e-5)


def test_hard_targets_are_smoothed_one_hot():
    probs = np.array([[0.2, 0.7, 0.1]], np.float32)
    hard = losses.targets_from_probabilities(probs, "hard",
                                             label_smoothing=0.1).numpy()
    np.testing.assert_allclose(hard, [[0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3]],
                               rtol=1e-6)


def test_online_targets_from_teacher_logits():
    logits = np.array([[1.0, 2.0, 0.5]], np.float32)
    soft = losses.targets_from_logits(logits, temperature=2.0).numpy()
    expected = np.exp(logits / 2) / np.exp(logits / 2).sum()
    np.testing.assert_allclose(soft, expected, rtol=1e-6)
    hard = losses.targets_from_logits(logits, "hard",
                                      label_smoothing=0.0).numpy()
    np.testing.assert_array_equal(hard, [[0.0, 1.0, 0.0]])


def test_targets_carry_no_gradient_to_teacher():
    logits = tf.Variable([[1.0, 2.0, 0.5]])
    with tf.GradientTape() as tape:
        targets = losses.targets_from_logits(logits)
        loss = tf.reduce_sum(targets)
    assert tape.gradient(loss, logits) is None


def test_bad_label_type():
    with pytest.raises(ValueError, match="soft or hard"):
        losses.targets_from_probabilities(np.ones((1, 2)), "fuzzy")
