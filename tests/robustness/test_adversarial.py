"""FGSM / PGD in pixel space against linear models with known gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.robustness import adversarial

SHAPE = (4, 8, 8, 3)


def _linear(seed=0, scale=1e-3):
    """Two-class logits [w.x, 0]; d CE / dx = (p0 - [y == 0]) * w."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=SHAPE[1:])
    w = tf.constant(scale * signs, tf.float32)

    def logits_fn(x):
        z0 = tf.reduce_sum(x * w, axis=[1, 2, 3])
        return tf.stack([z0, tf.zeros_like(z0)], axis=-1)

    return logits_fn, signs


def test_fgsm_moves_every_pixel_by_epsilon_along_the_gradient_sign():
    logits_fn, signs = _linear()
    x = np.full(SHAPE, 100.0, np.float32)
    labels = np.array([0, 1, 0, 1])
    adv = adversarial.fgsm(logits_fn, x, labels, 8.0).numpy()
    # Label 1: the loss grows with z0, gradient sign = sign(w);
    # label 0: it shrinks with z0, gradient sign = -sign(w).
    expected = np.stack([-signs, signs, -signs, signs]) * 8.0
    np.testing.assert_array_equal(adv - x, expected)


def test_fgsm_clips_to_the_pixel_range():
    logits_fn, signs = _linear()
    x = np.where(signs > 0, 252.0, 3.0)[None].repeat(4, 0).astype(np.float32)
    adv = adversarial.fgsm(logits_fn, x, np.ones(4, np.int64), 8.0).numpy()
    # sign(w) pushes 252 up and 3 down: both hit the boundary.
    np.testing.assert_array_equal(adv, np.where(x > 128, 255.0, 0.0))


def test_fgsm_in_graph_mode_matches_eager():
    logits_fn, _ = _linear()
    x = np.random.default_rng(1).uniform(0, 255, SHAPE).astype(np.float32)
    labels = np.array([0, 1, 1, 0])
    graph = tf.function(lambda a, b: adversarial.fgsm(logits_fn, a, b, 4.0))
    np.testing.assert_array_equal(
        graph(x, labels).numpy(),
        adversarial.fgsm(logits_fn, x, labels, 4.0).numpy())


def _tiny_model():
    model = keras.Sequential([
        keras.layers.Input(SHAPE[1:]),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    return lambda x: model(x, training=False)


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_stays_in_the_ball_and_pixel_range(random_start):
    logits_fn = _tiny_model()
    x = np.random.default_rng(2).uniform(0, 255, SHAPE).astype(np.float32)
    x[:, 0] = 0.0
    x[:, 1] = 255.0  # rows at the boundaries
    labels = np.array([0, 1, 2, 0])
    eps = 8.0
    adv = tf.function(lambda a, b: adversarial.pgd(
        logits_fn, a, b, eps, steps=5, random_start=random_start,
        seed=3))(x, labels).numpy()
    assert np.abs(adv - x).max() <= eps + 1e-4
    assert adv.min() >= 0.0 and adv.max() <= 255.0
    assert np.abs(adv - x).max() > 0


def test_pgd_one_full_step_is_fgsm_and_is_deterministic():
    logits_fn, _ = _linear()
    x = np.random.default_rng(4).uniform(0, 255, SHAPE).astype(np.float32)
    labels = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(
        adversarial.pgd(logits_fn, x, labels, 6.0, steps=1, step_size=6.0),
        adversarial.fgsm(logits_fn, x, labels, 6.0))
    a = adversarial.pgd(logits_fn, x, labels, 6.0, steps=3,
                        random_start=True, seed=5)
    b = adversarial.pgd(logits_fn, x, labels, 6.0, steps=3,
                        random_start=True, seed=5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_adversarial_accuracy_on_arrays_and_datasets():
    logits_fn, signs = _linear(scale=1e-2)
    rng = np.random.default_rng(6)
    # Random margins: larger epsilons flip more of the linear decisions.
    x = rng.uniform(60, 200, (32,) + SHAPE[1:]).astype(np.float32)
    labels = (np.sum(x * signs * 1e-2, axis=(1, 2, 3)) < 0).astype(np.int64)
    accs = adversarial.adversarial_accuracy(
        logits_fn, (x, labels), epsilons=(0, 1, 4, 16), batch_size=10)
    assert list(accs) == [0, 1, 4, 16]
    assert accs[0] == 1.0
    values = list(accs.values())
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[-1] < 1.0
    ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(7)
    pgd_arrays = adversarial.adversarial_accuracy(
        logits_fn, (x, labels), epsilons=(2, 8), attack="pgd", steps=3)
    pgd_ds = adversarial.adversarial_accuracy(
        logits_fn, ds, epsilons=(2, 8), attack="pgd", steps=3)
    assert pgd_arrays == pgd_ds
    with pytest.raises(ValueError, match="fgsm, pgd"):
        adversarial.adversarial_accuracy(logits_fn, (x, labels),
                                         attack="cw")
