"""Loads official vision_transformer Mixer `.npz` checkpoints into MlpMixer.

The files under gs://mixer_models/ (e.g. `imagenet21k/Mixer-B_16.npz`) are
a flattened Flax parameter tree with '/'-joined keys
(vit_jax `checkpoint.py` rebuilds the tree with `recover_tree`). The names
come from `vit_jax/models_mixer.py`: explicit `stem`, `token_mixing`,
`channel_mixing`, `pre_head_layer_norm` and `head`, plus Flax auto-names
`MixerBlock_{i}`, `LayerNorm_{0,1}` and `Dense_{0,1}`:

    stem/kernel                                (P, P, 3, C)
    stem/bias                                  (C,)
    MixerBlock_{i}/LayerNorm_0/{scale,bias}    (C,)
    MixerBlock_{i}/token_mixing/Dense_0/kernel (S, D_S)   bias (D_S,)
    MixerBlock_{i}/token_mixing/Dense_1/kernel (D_S, S)   bias (S,)
    MixerBlock_{i}/LayerNorm_1/{scale,bias}    (C,)
    MixerBlock_{i}/channel_mixing/Dense_0/kernel (C, D_C) bias (D_C,)
    MixerBlock_{i}/channel_mixing/Dense_1/kernel (D_C, C) bias (C,)
    pre_head_layer_norm/{scale,bias}           (C,)
    head/kernel (C, K), head/bias (K,)

Flax kernels share Keras' layouts (Conv HWIO, Dense (in, out)), so every
array is copied without transposition.
"""

import numpy as np
import tensorflow as tf

from mixer.mlp_mixer import MlpMixer

_HEAD_KEYS = ("head/kernel", "head/bias")


def _dense(prefix, layer):
    return {f"{prefix}/kernel": layer.kernel, f"{prefix}/bias": layer.bias}


def _mlp(prefix, mlp):
    variables = _dense(f"{prefix}/Dense_0", mlp.dense_0)
    variables.update(_dense(f"{prefix}/Dense_1", mlp.dense_1))
    return variables


def _layer_norm(prefix, layer):
    return {f"{prefix}/scale": layer.gamma, f"{prefix}/bias": layer.beta}


def npz_variable_map(model, include_head=True):
    """Maps each checkpoint key to the model variable it fills, in order.

    Args:
      model: an `MlpMixer`.
      include_head: map `head/*` too (only when the model has a head).

    Returns:
      A dict from npz key to `keras.Variable`, ordered stem, blocks,
      pre-head LayerNorm, head.

    Raises:
      TypeError: `model` is not an `MlpMixer`.
    """
    if not isinstance(model, MlpMixer):
        raise TypeError(
            f"Expected an MlpMixer, got {type(model).__name__}")
    variables = _dense("stem", model.get_layer("stem"))
    for index, block_name in enumerate(model.block_names):
        block = model.get_layer(block_name)
        prefix = f"MixerBlock_{index}"
        # Execution order, which is also Flax's creation order.
        variables.update(
            _layer_norm(f"{prefix}/LayerNorm_0", block.layer_norm_0))
        variables.update(_mlp(f"{prefix}/token_mixing", block.token_mixing))
        variables.update(
            _layer_norm(f"{prefix}/LayerNorm_1", block.layer_norm_1))
        variables.update(
            _mlp(f"{prefix}/channel_mixing", block.channel_mixing))
    variables.update(_layer_norm("pre_head_layer_norm",
                                 model.get_layer("pre_head_layer_norm")))
    if include_head and model.include_top:
        variables.update(_dense("head", model.get_layer("head")))
    return variables


def _read_npz(path):
    # gfile so gs:// paths work as in vit_jax's `checkpoint.load`.
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No Mixer checkpoint at {path}")
    with tf.io.gfile.GFile(path, "rb") as handle:
        with np.load(handle, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


def _shape_hint(key):
    if "token_mixing" in key:
        return (" (token-mixing weights are sized by the token count "
                "S = H * W / P**2: build the model at the checkpoint's "
                "resolution)")
    if key.startswith("head/"):
        return " (class counts differ: pass include_head=False)"
    return ""


def load_vit_jax_npz(model, path, include_head=True, strict=True):
    """Loads a vision_transformer Mixer `.npz` checkpoint into `model`.

    Every key is checked before anything is assigned, so a failed load
    leaves the model untouched.

    Args:
      model: an `MlpMixer` built at the checkpoint's resolution and widths.
      path: local or gs:// path of the `.npz` file.
      include_head: load `head/*`; pass False to keep the model's own head,
        e.g. when finetuning an ImageNet checkpoint to 10 classes. Ignored
        (no head loaded) when the model was built with include_top=False.
      strict: reject checkpoint keys the model does not use (say a deeper
        variant's extra blocks); `head/*` is never rejected.

    Returns:
      The sorted list of checkpoint keys that were loaded.

    Raises:
      FileNotFoundError: nothing at `path`.
      TypeError: `model` is not an `MlpMixer`.
      ValueError: naming the first (in stem, block, head order) missing or
        mis-shaped key with its expected and found shapes, or, when
        `strict`, the keys the model does not use.
    """
    variables = npz_variable_map(model, include_head=include_head)
    arrays = _read_npz(path)
    for key, variable in variables.items():
        expected = tuple(variable.shape)
        if key not in arrays:
            raise ValueError(
                f"Checkpoint {path} lacks {key!r} (expected shape "
                f"{expected}); model {model.name!r} with "
                f"{len(model.block_names)} blocks needs it")
        found = tuple(arrays[key].shape)
        if found != expected:
            raise ValueError(
                f"Checkpoint {path}: {key!r} has shape {found}, expected "
                f"{expected}{_shape_hint(key)}")
    unused = sorted(
        key for key in set(arrays) - set(variables) if key not in _HEAD_KEYS)
    if strict and unused:
        raise ValueError(
            f"Checkpoint {path} has {len(unused)} key(s) model "
            f"{model.name!r} does not use, first {unused[:5]}; pass "
            f"strict=False to ignore them")
    for key, variable in variables.items():
        variable.assign(np.asarray(arrays[key], dtype=variable.dtype))
    return sorted(variables)
