"""load_vit_jax_npz: the official vision_transformer Mixer `.npz` scheme.

The test writes checkpoints with the key names used by public loaders of
gs://mixer_models/*.npz (Flax auto-names of `vit_jax/models_mixer.py`),
independently of `mixer.convert`'s own table, and checks the loaded model
against a NumPy transcription of the Flax forward pass.
"""

import math

import keras
import numpy as np
import pytest

import mixer
from mixer import convert

TINY = dict(patch_size=4, hidden_dim=16, num_blocks=2, tokens_mlp_dim=8,
            channels_mlp_dim=32, input_shape=(16, 16, 3))


def tiny_model(**overrides):
    return mixer.MlpMixer(**{**TINY, **overrides})


def flax_params(model, seed=0):
    """Random Flax-named params shaped like `model`'s (P, P, 3, C) etc."""
    rng = np.random.default_rng(seed)
    c, s = model.hidden_dim, model.num_tokens
    d_s, d_c, p = model.tokens_mlp_dim, model.channels_mlp_dim, model.patch_size
    shapes = {"stem/kernel": (p, p, 3, c), "stem/bias": (c,)}
    for i in range(model.num_blocks):
        b = f"MixerBlock_{i}"
        shapes.update({
            f"{b}/LayerNorm_0/scale": (c,), f"{b}/LayerNorm_0/bias": (c,),
            f"{b}/token_mixing/Dense_0/kernel": (s, d_s),
            f"{b}/token_mixing/Dense_0/bias": (d_s,),
            f"{b}/token_mixing/Dense_1/kernel": (d_s, s),
            f"{b}/token_mixing/Dense_1/bias": (s,),
            f"{b}/LayerNorm_1/scale": (c,), f"{b}/LayerNorm_1/bias": (c,),
            f"{b}/channel_mixing/Dense_0/kernel": (c, d_c),
            f"{b}/channel_mixing/Dense_0/bias": (d_c,),
            f"{b}/channel_mixing/Dense_1/kernel": (d_c, c),
            f"{b}/channel_mixing/Dense_1/bias": (c,),
        })
    shapes.update({
        "pre_head_layer_norm/scale": (c,), "pre_head_layer_norm/bias": (c,),
    })
    if model.include_top:
        shapes.update({"head/kernel": (c, model.num_classes),
                       "head/bias": (model.num_classes,)})
    return {key: rng.normal(scale=0.5, size=shape).astype("float32")
            for key, shape in shapes.items()}


def write_npz(tmp_path, params, name="ckpt.npz"):
    path = str(tmp_path / name)
    np.savez(path, **params)
    return path


def images(batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(batch, 16, 16, 3)).astype("float32")


def outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def flax_forward(params, x, patch, num_blocks):
    """NumPy transcription of vit_jax `MlpMixer.__call__` (eps 1e-6)."""

    def layer_norm(v, prefix):
        mean = v.mean(-1, keepdims=True)
        var = ((v - mean) ** 2).mean(-1, keepdims=True)
        return ((v - mean) / np.sqrt(var + 1e-6) * params[f"{prefix}/scale"]
                + params[f"{prefix}/bias"])

    def gelu(v):
        return 0.5 * v * (1.0 + np.tanh(
            math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))

    def mlp(v, prefix):
        h = gelu(v @ params[f"{prefix}/Dense_0/kernel"]
                 + params[f"{prefix}/Dense_0/bias"])
        return (h @ params[f"{prefix}/Dense_1/kernel"]
                + params[f"{prefix}/Dense_1/bias"])

    x = x.astype("float64")
    n, height, width, _ = x.shape
    h, w = height // patch, width // patch
    patches = x.reshape(n, h, patch, w, patch, 3).transpose(0, 1, 3, 2, 4, 5)
    kernel = params["stem/kernel"].reshape(patch * patch * 3, -1)
    x = patches.reshape(n, h * w, -1) @ kernel + params["stem/bias"]
    for i in range(num_blocks):
        b = f"MixerBlock_{i}"
        y = layer_norm(x, f"{b}/LayerNorm_0").swapaxes(1, 2)
        x = x + mlp(y, f"{b}/token_mixing").swapaxes(1, 2)
        x = x + mlp(layer_norm(x, f"{b}/LayerNorm_1"), f"{b}/channel_mixing")
    x = layer_norm(x, "pre_head_layer_norm").mean(axis=1)
    return x @ params["head/kernel"] + params["head/bias"]


def test_key_table_matches_public_names():
    model = tiny_model(num_classes=5)
    names = list(convert.npz_variable_map(model))
    assert names == list(flax_params(model))


def test_load_matches_flax_forward(tmp_path):
    model = tiny_model(num_classes=5)
    params = flax_params(model)
    loaded = convert.load_vit_jax_npz(model, write_npz(tmp_path, params))
    assert loaded == sorted(params)
    x = images()
    np.testing.assert_allclose(
        outputs(model, x), flax_forward(params, x, 4, 2),
        rtol=1e-4, atol=1e-4)


def test_round_trip_from_keras_weights_is_exact(tmp_path):
    source = tiny_model(num_classes=5)
    rng = np.random.default_rng(2)
    source.set_weights([rng.normal(size=w.shape).astype("float32")
                        for w in source.get_weights()])
    # The exact scheme written straight from the Keras layers.
    params = {"stem/kernel": source.get_layer("stem").kernel,
              "stem/bias": source.get_layer("stem").bias}
    for i, name in enumerate(source.block_names):
        block, b = source.get_layer(name), f"MixerBlock_{i}"
        for ln, layer in (("LayerNorm_0", block.layer_norm_0),
                          ("LayerNorm_1", block.layer_norm_1)):
            params[f"{b}/{ln}/scale"] = layer.gamma
            params[f"{b}/{ln}/bias"] = layer.beta
        for mlp_name in ("token_mixing", "channel_mixing"):
            mlp = getattr(block, mlp_name)
            for dense_name, dense in (("Dense_0", mlp.dense_0),
                                      ("Dense_1", mlp.dense_1)):
                params[f"{b}/{mlp_name}/{dense_name}/kernel"] = dense.kernel
                params[f"{b}/{mlp_name}/{dense_name}/bias"] = dense.bias
    norm, head = (source.get_layer("pre_head_layer_norm"),
                  source.get_layer("head"))
    params.update({"pre_head_layer_norm/scale": norm.gamma,
                   "pre_head_layer_norm/bias": norm.beta,
                   "head/kernel": head.kernel, "head/bias": head.bias})
    params = {k: keras.ops.convert_to_numpy(v) for k, v in params.items()}
    assert len(params) == len(source.weights)

    target = tiny_model(num_classes=5)
    convert.load_vit_jax_npz(target, write_npz(tmp_path, params))
    for got, want in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)
    x = images()
    np.testing.assert_array_equal(outputs(target, x), outputs(source, x))


def test_include_head_false_keeps_new_head(tmp_path):
    params = flax_params(tiny_model(num_classes=1000))
    path = write_npz(tmp_path, params)
    model = tiny_model(num_classes=10)
    with pytest.raises(ValueError, match="include_head=False"):
        convert.load_vit_jax_npz(model, path)
    loaded = convert.load_vit_jax_npz(model, path, include_head=False)
    assert "head/kernel" not in loaded
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("head").kernel),
        np.zeros((16, 10), "float32"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("stem").kernel),
        params["stem/kernel"])
    headless = tiny_model(include_top=False)
    assert "head/bias" not in convert.load_vit_jax_npz(headless, path)


def test_missing_key_names_first_missing(tmp_path):
    model = tiny_model(num_classes=5)
    params = flax_params(model)
    del params["MixerBlock_1/channel_mixing/Dense_1/bias"]
    del params["MixerBlock_0/token_mixing/Dense_1/bias"]
    before = model.get_weights()
    with pytest.raises(ValueError) as error:
        convert.load_vit_jax_npz(model, write_npz(tmp_path, params))
    message = str(error.value)
    assert "'MixerBlock_0/token_mixing/Dense_1/bias'" in message
    assert "(16,)" in message
    assert "MixerBlock_1" not in message
    # Nothing was assigned before the check failed.
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_misshaped_key_names_expected_and_found(tmp_path):
    # Same widths at 32x32: 64 tokens instead of 16.
    params = flax_params(tiny_model(input_shape=(32, 32, 3)))
    model = tiny_model()
    with pytest.raises(ValueError) as error:
        convert.load_vit_jax_npz(model, write_npz(tmp_path, params))
    message = str(error.value)
    assert "'MixerBlock_0/token_mixing/Dense_0/kernel'" in message
    assert "shape (64, 8), expected (16, 8)" in message
    assert "resolution" in message


def test_unused_keys_rejected_unless_not_strict(tmp_path):
    params = flax_params(tiny_model(num_blocks=3))
    path = write_npz(tmp_path, params)
    model = tiny_model()
    with pytest.raises(ValueError, match="MixerBlock_2/"):
        convert.load_vit_jax_npz(model, path)
    convert.load_vit_jax_npz(model, path, strict=False)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("block_1").layer_norm_1
                                   .gamma),
        params["MixerBlock_1/LayerNorm_1/scale"])


def test_rejects_other_models_and_missing_files(tmp_path):
    with pytest.raises(TypeError, match="MlpMixer"):
        convert.npz_variable_map(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        convert.load_vit_jax_npz(tiny_model(), str(tmp_path / "nope.npz"))
