"""MlpMixer: exact parameter counts, shapes, numerics, noise and saving."""

import math

import keras
import numpy as np
import pytest

import mixer
from mixer import layers
from mixer import mlp_mixer
from noisy_student_tf import models

# vit_jax `models_test.py` MODEL_SIZES: 224x224x3 input, 1000 classes.
OFFICIAL_COUNTS = {
    "mixer_b16": 59_880_472,
    "mixer_b32": 60_293_428,
    "mixer_l16": 208_196_168,
}

# Small inputs that keep H, W divisible by each patch size.
TINY_SIZE = {
    "mixer_s32": 32, "mixer_s16": 32, "mixer_b32": 32, "mixer_b16": 32,
    "mixer_l32": 32, "mixer_l16": 32, "mixer_h14": 28,
}
HEAVY = ("mixer_l32", "mixer_l16", "mixer_h14")

TINY = dict(patch_size=4, hidden_dim=16, num_blocks=2, tokens_mlp_dim=8,
            channels_mlp_dim=32, input_shape=(16, 16, 3))


def formula_count(patch, hidden, blocks, tokens_mlp, channels_mlp, size,
                  classes):
    """The spec's count: stem + N blocks + final LN + head."""
    tokens = (size // patch) ** 2
    stem = patch * patch * 3 * hidden + hidden
    block = (4 * hidden
             + 2 * tokens * tokens_mlp + tokens_mlp + tokens
             + 2 * hidden * channels_mlp + channels_mlp + hidden)
    return stem + blocks * block + 2 * hidden + hidden * classes + classes


def tiny_model(**overrides):
    return mixer.MlpMixer(**{**TINY, **overrides})


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([
        rng.normal(scale=0.5, size=w.shape).astype("float32")
        for w in model.get_weights()])
    return model


def images(shape, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(batch,) + tuple(shape)).astype("float32")


# === Parameter counts ===

@pytest.mark.parametrize("variant", ["mixer_b16", "mixer_b32"])
def test_official_param_counts(variant):
    assert mixer.build_variant(variant).count_params() == (
        OFFICIAL_COUNTS[variant])


@pytest.mark.slow
def test_official_param_count_l16():
    assert mixer.mixer_l16().count_params() == OFFICIAL_COUNTS["mixer_l16"]


@pytest.mark.parametrize("variant", sorted(mixer.VARIANTS))
def test_param_count_formula_small_input(variant):
    size, classes = TINY_SIZE[variant], 10
    row = mixer.VARIANTS[variant]
    overrides = {}
    if variant in HEAVY:
        # The channel MLP (2 C D_C per block) does not shrink with the
        # input, so the fast test checks the table widths on 2 blocks.
        overrides["num_blocks"] = 2
        row = row[:2] + (2,) + row[3:]
    model = mixer.build_variant(
        variant, num_classes=classes, input_shape=(size, size, 3),
        **overrides)
    assert model.count_params() == formula_count(*row, size, classes)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mixer_l32", "mixer_h14"])
def test_param_count_formula_full_depth_224(variant):
    model = mixer.build_variant(variant)
    assert model.count_params() == formula_count(
        *mixer.VARIANTS[variant], 224, 1000)


def test_variant_table_rule_of_thumb():
    # Paper Table 1: D_S = C / 2, D_C = 4 C.
    for patch, hidden, _, tokens_mlp, channels_mlp in mixer.VARIANTS.values():
        assert (tokens_mlp, channels_mlp) == (hidden // 2, 4 * hidden)
        assert mixer.DEFAULT_IMAGE_SIZE % patch == 0


# === Shapes and structure ===

@pytest.mark.parametrize("variant", sorted(mixer.VARIANTS))
def test_output_shape_every_variant(variant):
    size = TINY_SIZE[variant]
    overrides = {"num_blocks": 1} if variant in HEAVY else {}
    model = getattr(mixer, variant)(
        num_classes=7, input_shape=(size, size, 3), **overrides)
    assert model.name == variant
    assert model.output_shape == (None, 7)
    out = model(images((size, size, 3)), training=False)
    assert tuple(out.shape) == (2, 7)


def test_structure_and_names():
    model = tiny_model()
    assert model.block_names == ("block_0", "block_1")
    assert model.stem_layer_names == ("stem",)
    assert model.num_tokens == 16
    stem = model.get_layer("stem")
    assert stem.kernel_size == (4, 4) and stem.strides == (4, 4)
    assert stem.use_bias
    assert model.get_layer("tokens").output.shape == (None, 16, 16)
    block = model.get_layer("block_0")
    assert tuple(block.token_mixing.dense_0.kernel.shape) == (16, 8)
    assert tuple(block.token_mixing.dense_1.kernel.shape) == (8, 16)
    assert tuple(block.channel_mixing.dense_0.kernel.shape) == (16, 32)


def test_include_top_false_returns_pooled_features():
    model = tiny_model(include_top=False, num_classes=None)
    assert model.output_shape == (None, 16)
    with pytest.raises(ValueError):
        model.get_layer("head")


# === Numerics ===

def test_layer_norm_epsilon():
    model = tiny_model()
    norms = [model.get_layer("pre_head_layer_norm")]
    for name in model.block_names:
        block = model.get_layer(name)
        norms += [block.layer_norm_0, block.layer_norm_1]
    assert [norm.epsilon for norm in norms] == [1e-6] * 5


def test_mlp_block_uses_tanh_gelu():
    block = layers.MlpBlock(6)
    x = images((5, 4), seed=3) * 3.0
    block.build(x.shape)
    randomize(block, seed=4)
    w0, b0, w1, b1 = block.get_weights()
    h = x @ w0 + b0
    tanh_gelu = 0.5 * h * (
        1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h ** 3)))
    erf_gelu = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
    out = keras.ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(out, tanh_gelu @ w1 + b1, rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(out, erf_gelu @ w1 + b1, rtol=1e-5, atol=1e-5)


def test_head_zero_init_gives_zero_logits():
    model = tiny_model(num_classes=5)
    head = model.get_layer("head")
    assert not np.any(keras.ops.convert_to_numpy(head.kernel))
    assert not np.any(keras.ops.convert_to_numpy(head.bias))
    out = keras.ops.convert_to_numpy(model(images((16, 16, 3))))
    np.testing.assert_array_equal(out, np.zeros((2, 5), "float32"))


# === Noise: dropout and stochastic depth ===

def test_stochastic_depth_schedule_is_linear_to_rate():
    model = tiny_model(num_blocks=5, stochastic_depth_rate=0.2)
    rates = [model.get_layer(name).stochastic_depth_rate
             for name in model.block_names]
    np.testing.assert_allclose(rates, [0.0, 0.05, 0.1, 0.15, 0.2])
    assert model.get_layer("block_0").token_drop is None
    assert mlp_mixer.stochastic_depth_schedule(0.1, 1) == (0.0,)


def test_noise_is_identity_at_inference():
    clean = randomize(tiny_model())
    noisy = tiny_model(dropout_rate=0.3, stochastic_depth_rate=0.5)
    noisy.set_weights(clean.get_weights())
    x = images((16, 16, 3), batch=8)
    expected = keras.ops.convert_to_numpy(clean(x))
    for _ in range(2):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(noisy(x, training=False)), expected)


@pytest.mark.parametrize("rates", [(0.3, 0.0), (0.0, 0.5)])
def test_noise_is_active_in_training(rates):
    dropout_rate, stochastic_depth_rate = rates
    model = randomize(tiny_model(
        dropout_rate=dropout_rate,
        stochastic_depth_rate=stochastic_depth_rate))
    x = images((16, 16, 3), batch=8)
    first = keras.ops.convert_to_numpy(model(x, training=True))
    second = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.array_equal(first, second)


def test_frozen_blocks_skip_stochastic_depth():
    # Resolution finetune freezes blocks; they must act as at inference.
    model = randomize(tiny_model(stochastic_depth_rate=0.9))
    for name in model.block_names:
        model.get_layer(name).trainable = False
    x = images((16, 16, 3), batch=8)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x, training=True)),
        keras.ops.convert_to_numpy(model(x, training=False)))


def test_stochastic_depth_drops_whole_samples_without_rescaling():
    drop = layers.UnscaledStochasticDepth(0.5)
    x = np.ones((64, 3, 4), "float32")
    out = keras.ops.convert_to_numpy(drop(x, training=True))
    per_sample = out.reshape(64, -1)
    kept = np.all(per_sample == 1.0, axis=1)
    dropped = np.all(per_sample == 0.0, axis=1)
    assert np.all(kept | dropped) and kept.any() and dropped.any()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(drop(x, training=False)), x)
    drop.trainable = False
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(drop(x, training=True)), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        layers.UnscaledStochasticDepth(1.0)


def test_token_and_channel_branches_drop_independently():
    block = layers.MixerBlock(8, 32, stochastic_depth_rate=0.5)
    x1 = images((16, 16), batch=1, seed=5)
    block.build((None, 16, 16))
    randomize(block, seed=6)

    def token(x):
        y = keras.ops.swapaxes(block.layer_norm_0(x), 1, 2)
        y = keras.ops.swapaxes(block.token_mixing(y), 1, 2)
        return x + keras.ops.convert_to_numpy(y)

    def channel(x):
        return x + keras.ops.convert_to_numpy(
            block.channel_mixing(block.layer_norm_1(x)))

    outcomes = {
        "none": x1, "token": token(x1), "channel": channel(x1),
        "both": channel(token(x1)),
    }
    out = keras.ops.convert_to_numpy(
        block(np.repeat(x1, 64, axis=0), training=True))
    seen = set()
    for sample in out:
        matches = [name for name, value in outcomes.items()
                   if np.allclose(sample, value[0], atol=1e-5)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(outcomes)


# === Validation ===

@pytest.mark.parametrize("overrides, message", [
    (dict(input_shape=(18, 16, 3)), "divisible by patch_size 4"),
    (dict(input_shape=(16, 16)), "height, width, channels"),
    (dict(input_shape=(None, 16, 3)), "fully known"),
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=2.5), "num_classes"),
    (dict(num_classes=True), "num_classes"),
    (dict(dropout_rate=1.0), "dropout_rate"),
    (dict(stochastic_depth_rate=-0.1), "stochastic_depth_rate"),
    (dict(patch_size=0), "patch_size"),
])
def test_invalid_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**overrides)


# === Config and saving ===

def test_config_round_trip():
    model = randomize(tiny_model(dropout_rate=0.1,
                                 stochastic_depth_rate=0.2, name="tiny"))
    clone = mixer.MlpMixer.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    x = images((16, 16, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)),
                                  keras.ops.convert_to_numpy(model(x)))


def test_keras_save_and_load(tmp_path):
    model = randomize(tiny_model(num_classes=3, stochastic_depth_rate=0.1))
    path = str(tmp_path / "mixer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, mixer.MlpMixer)
    assert loaded.get_config() == model.get_config()
    x = images((16, 16, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(model(x)))


# === Builders and registry ===

def test_build_variant_overrides_table():
    model = mixer.build_variant(
        "mixer_s32", num_blocks=1, hidden_dim=64, tokens_mlp_dim=8,
        channels_mlp_dim=16, num_classes=4, input_shape=(64, 64, 3))
    assert model.name == "mixer_s32"
    assert (model.patch_size, model.hidden_dim, model.num_blocks) == (
        32, 64, 1)
    assert model.num_tokens == 4


def test_registry_creates_mixer():
    model = models.create_model(
        "mixer_b16", num_classes=10, input_shape=(32, 32, 3),
        dropout_rate=None)
    assert isinstance(model, mixer.MlpMixer)
    assert model.output_shape == (None, 10)
    assert models.default_image_size("mixer_b16") == 224
    assert set(mixer.VARIANTS) <= set(models.list_models())
    assert "stochastic_depth_rate" in models.valid_overrides("mixer_s32")
