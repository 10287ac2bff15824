"""TF1 RMSProp semantics, L2 on non-BN weights, schedules, EMA."""

import math

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.training import ema as ema_lib
from noisy_student_tf.training import optimizers
from noisy_student_tf.training import schedules


def test_rmsprop_tf_matches_tf1_update_rule():
    var = keras.Variable(np.array([1.0, -2.0], np.float32))
    opt = optimizers.RMSPropTF(learning_rate=0.1, rho=0.9, momentum=0.9,
                               epsilon=1e-3)
    ms, mom, value = np.ones(2), np.zeros(2), np.array([1.0, -2.0])
    for grad in ([0.5, -1.0], [0.1, 0.2], [-0.3, 0.4]):
        opt.apply_gradients([(tf.constant(grad, tf.float32), var)])
        grad = np.asarray(grad)
        ms = 0.9 * ms + 0.1 * grad ** 2          # slot starts at ones
        mom = 0.9 * mom + 0.1 * grad / np.sqrt(ms + 1e-3)  # eps inside
        value = value - mom
    np.testing.assert_allclose(var.numpy(), value, rtol=1e-5)


def test_l2_skips_batch_norm_and_halves_square():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    model = keras.Model(inputs, x)
    kernel = model.get_layer("conv").kernel.numpy()
    bias = model.get_layer("conv").bias.numpy()
    got = float(optimizers.l2_regularization(model.trainable_variables, 1e-2))
    expected = 1e-2 * ((kernel ** 2).sum() + (bias ** 2).sum()) / 2
    assert got == pytest.approx(expected, rel=1e-5)


def test_warmup_then_staircase_from_step_zero():
    sched = schedules.WarmupDecay(1.0, 1000, warmup_steps=10,
                                  kind="exponential", decay_steps=4,
                                  decay_factor=0.5)
    assert float(sched(5)) == pytest.approx(0.5)
    # Decay counts from step 0: at step 10 two decays already happened.
    assert float(sched(10)) == pytest.approx(0.25)
    assert float(sched(12)) == pytest.approx(0.125)


def test_cosine_and_offset():
    sched = schedules.WarmupDecay(2.0, 110, warmup_steps=10, kind="cosine")
    assert float(sched(60)) == pytest.approx(1.0, rel=1e-5)
    assert float(sched(110)) == pytest.approx(0.0, abs=1e-6)
    tail = schedules.WarmupDecay(2.0, 110, warmup_steps=10, kind="cosine",
                                 offset=100)
    assert float(tail(0)) == pytest.approx(float(sched(100)))


def test_final_lr_form_and_batch_scaling():
    epochs = schedules.decay_epochs_for_final_lr(0.016, 2e-4, 202, 5)
    assert epochs == pytest.approx(197 / (math.log(2e-4 / 0.016)
                                          / math.log(0.97)))
    config = ml_collections.ConfigDict(dict(
        learning_rate=0.016, warmup_epochs=5, schedule="exponential",
        decay_epochs=2.4, decay_factor=0.97))
    sched = schedules.build_schedule(config, steps_per_epoch=10,
                                     total_steps=100, batch_size=128)
    assert sched.base_lr == pytest.approx(0.008)  # 0.016 * 128 / 256
    assert sched.warmup_steps == 50 and sched.decay_steps == 24


def test_resolve_steps():
    config = ml_collections.ConfigDict(dict(total_epochs=2.5))
    assert schedules.resolve_steps(config, "total", 40) == 100
    with pytest.raises(ValueError, match="total_steps or total_epochs"):
        schedules.resolve_steps(ml_collections.ConfigDict(), "total", 4)


def test_ema_num_updates_ramp_and_bn_statistics():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, x)
    ema = ema_lib.ExponentialMovingAverage(model, decay=0.9999)
    # Covers kernel, bias, gamma, beta and both BN moving statistics.
    assert len(ema.shadows) == 6
    assert float(ema.decay_at(0)) == pytest.approx(0.1)
    assert float(ema.decay_at(90)) == pytest.approx(91 / 100)
    assert float(ema.decay_at(10 ** 7)) == pytest.approx(0.9999)
    kernel = model.get_layer("dense").kernel
    before = kernel.numpy().copy()
    kernel.assign(before + 1.0)
    ema.update(tf.constant(0))  # decay 0.1: shadow = 0.1 old + 0.9 new
    with ema.swapped():
        np.testing.assert_allclose(kernel.numpy(), before + 0.9, rtol=1e-5)
    np.testing.assert_allclose(kernel.numpy(), before + 1.0)
