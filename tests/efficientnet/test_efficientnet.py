"""EfficientNet: exact parameter counts, shapes, noise, serialisation."""

import numpy as np
import pytest

import efficientnet
from efficientnet import efficientnet as efficientnet_lib

# Trainable parameters, 1000 classes (docs/reference/efficientnet.md
# section 9).
TRAINABLE = {
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "efficientnet_b8": 87_413_142,
    "efficientnet_l2": 480_309_308,
}
BN_MOVING = {"efficientnet_b0": 42_016, "efficientnet_b7": 310_720,
             "efficientnet_l2": 1_090_688}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def formula_count(variant, num_classes=1000):
    """The spec's closed-form count (trainable = 2 per BN channel)."""
    width, depth, _, _ = efficientnet.VARIANTS[variant]
    total = 0
    stem = efficientnet.round_filters(32, width)
    total += 27 * stem + 2 * stem
    last = stem
    for args in efficientnet_lib.scaled_block_args(width, depth):
        f = args.input_filters * args.expand_ratio
        s = max(1, int(args.input_filters * args.se_ratio))
        if args.expand_ratio != 1:
            total += args.input_filters * f + 2 * f
        total += args.kernel_size ** 2 * f + 2 * f
        total += f * s + s + s * f + f
        total += f * args.output_filters + 2 * args.output_filters
        last = args.output_filters
    head = efficientnet.round_filters(1280, width)
    total += last * head + 2 * head + head * num_classes + num_classes
    return total


@pytest.mark.parametrize("variant", sorted(TRAINABLE))
def test_formula_matches_published_counts(variant):
    assert formula_count(variant) == TRAINABLE[variant]


@pytest.mark.parametrize("variant", ["efficientnet_b0", "efficientnet_b1"])
def test_built_model_has_exact_trainable_count(variant):
    model = efficientnet.build_variant(variant, input_shape=(32, 32, 3))
    assert trainable_count(model) == TRAINABLE[variant]


def test_b0_bn_moving_statistics_count():
    model = efficientnet.efficientnet_b0(input_shape=(32, 32, 3))
    non_trainable = sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights
        if "moving" in w.path)
    assert non_trainable == BN_MOVING["efficientnet_b0"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant", ["efficientnet_b7", "efficientnet_b8", "efficientnet_l2"])
def test_large_models_exact_trainable_count(variant):
    # Counts do not depend on resolution: build big models at 32x32.
    model = efficientnet.build_variant(variant, input_shape=(32, 32, 3))
    assert trainable_count(model) == TRAINABLE[variant]


def test_stage_table_and_rounding():
    assert efficientnet.round_filters(32, 4.3) == 136
    assert efficientnet.round_filters(1280, 4.3) == 5504
    assert efficientnet.round_filters(40, 1.1) == 48
    assert efficientnet.round_repeats(3, 3.1) == 10
    blocks = efficientnet_lib.scaled_block_args(4.3, 5.3)
    assert len(blocks) == 88  # blocks_0 ... blocks_87 in L2 checkpoints.
    b7 = efficientnet_lib.scaled_block_args(2.0, 3.1)
    assert len(b7) == 55


def test_drop_schedule_b0_and_l2_rates():
    model = efficientnet.efficientnet_b0(input_shape=(32, 32, 3))
    rates = [model.get_layer(n).drop_rate for n in model.block_names
             if model.get_layer(n).drop is not None]
    assert len(rates) == 9
    np.testing.assert_allclose(rates[0], 0.025)
    np.testing.assert_allclose(rates[-1], 0.175)
    # The model uses the schedule function for every block.
    np.testing.assert_allclose(
        [model.get_layer(n).drop_rate for n in model.block_names],
        efficientnet_lib.drop_rates(0.2, len(model.block_names)))
    # L2 (88 blocks): a float schedule of idx / N that never reaches the
    # rate: 0.2 * 87 / 88 for the last block.
    l2_rates = efficientnet_lib.drop_rates(
        0.2, len(efficientnet_lib.scaled_block_args(4.3, 5.3)))
    assert len(l2_rates) == 88 and l2_rates[0] == 0.0
    assert l2_rates[-1] == pytest.approx(0.197727, abs=1e-6)


def test_small_image_variant_keeps_4x4_features():
    model = efficientnet.efficientnet_b0(
        input_shape=(32, 32, 3), small_image=True, include_top=False)
    assert model.output_shape == (None, 4, 4, 1280)
    plain = efficientnet.efficientnet_b0(
        input_shape=(32, 32, 3), include_top=False)
    assert plain.output_shape == (None, 1, 1, 1280)


def test_pooling_and_grayscale_input():
    model = efficientnet.efficientnet_b0(
        input_shape=(32, 32, 1), include_top=False, pooling="max",
        width_coefficient=0.25, depth_coefficient=0.25)
    assert model.output_shape == (None, 320)  # round_filters(1280, 0.25)


def tiny(**kwargs):
    args = dict(width_coefficient=0.25, depth_coefficient=0.25,
                input_shape=(32, 32, 3), num_classes=7, small_image=True,
                dropout_rate=0.5, stochastic_depth_rate=0.5)
    args.update(kwargs)
    return efficientnet.build_variant("efficientnet_b0", **args)


def test_noise_identity_at_inference_active_in_training():
    model = tiny()
    x = np.random.RandomState(0).rand(4, 32, 32, 3).astype("float32")
    np.testing.assert_array_equal(model(x, training=False),
                                  model(x, training=False))
    a = model(x, training=True)
    b = model(x, training=True)
    assert not np.allclose(a, b)


def test_stochastic_depth_is_per_sample():
    layer = efficientnet.StochasticDepth(0.5)
    out = np.asarray(layer(np.ones((64, 2, 2, 3), "float32"), training=True))
    per_sample = out.reshape(64, -1)
    # Each sample is entirely kept (scaled by 2) or entirely dropped.
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(1) == per_sample.max(1))
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


def test_config_round_trip_and_keras_save(tmp_path):
    model = tiny()
    clone = efficientnet.EfficientNet.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.RandomState(1).rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(model(x), clone(x), atol=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    import keras
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, efficientnet.EfficientNet)
    assert loaded.block_names == model.block_names
    np.testing.assert_allclose(model(x), loaded(x), atol=0)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="stochastic_depth_rate"):
        tiny(stochastic_depth_rate=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        tiny(num_classes=0)
    with pytest.raises(ValueError, match="input_shape"):
        tiny(input_shape=(32, 32))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_batch_norm_matches_keras_batch_norm(dtype):
    # blocks.BatchNormalization trains with TensorFlow's fused kernel; the
    # outputs, gradients and moving statistics must be Keras 3's.
    import keras
    import tensorflow as tf
    from efficientnet import blocks

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, (4, 5, 6, 8)), tf.float32)
    weights = tf.range(8, dtype=tf.float32)
    gamma = rng.uniform(0.5, 1.5, 8).astype("float32")
    beta = np.linspace(-1, 1, 8).astype("float32")
    results = []
    for layer_class in (keras.layers.BatchNormalization,
                        blocks.BatchNormalization):
        layer = layer_class(momentum=0.9, epsilon=1e-3, dtype=(
            "mixed_bfloat16" if dtype == "bfloat16" else "float32"))
        layer.build(x.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x, training=True), tf.float32)
            loss = tf.reduce_sum(y * y * weights + tf.sin(y))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean,
                        layer.moving_variance])
    tol = 1e-4 if dtype == "float32" else 2e-2
    for ref, ours in zip(*results):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(ref),
                                   rtol=tol, atol=tol)


def test_model_uses_the_fused_batch_norm():
    from efficientnet import blocks

    model = efficientnet.efficientnet_b0(input_shape=(32, 32, 3))
    norms = [layer for layer in model._flatten_layers()
             if "BatchNormalization" in type(layer).__name__]
    assert norms and all(isinstance(layer, blocks.BatchNormalization)
                         for layer in norms)
