"""MLP-Mixer as a functional Keras 3 model (vit_jax architecture).

The model returns logits. Input normalisation ([-1, 1] in the reference)
lives in the preprocessing string, not in the model, so one definition
serves train, eval and serving (see `noisy_student_tf/data/value_ops.py`).

Layer names are stable endpoints: `stem`, `tokens`, `block_0` ...
`block_{N-1}`, `pre_head_layer_norm`, `avg_pool`, `head`.
"""

import keras

from mixer import layers
from mixer import variants


def _check_rate(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def stochastic_depth_schedule(rate, num_blocks):
    """Per-block drop probabilities: block i gets i / (N - 1) * rate.

    big_vision's linear schedule: 0 at the first block, `rate` at the last
    (paper App. B), so unlike EfficientNet the last block reaches `rate`.

    Args:
      rate: drop probability of the last block.
      num_blocks: number of blocks N.

    Returns:
      A tuple of N probabilities; (0.0,) for a single block.
    """
    return tuple(
        rate * index / max(num_blocks - 1, 1) for index in range(num_blocks))


@keras.saving.register_keras_serializable(package="mixer")
class MlpMixer(keras.Model):
    """MLP-Mixer (Tolstikhin et al. 2021) with Flax reference numerics.

    Patch stem (a PxP, stride-P conv) -> S = HW / P**2 tokens of width C ->
    N Mixer blocks -> LayerNorm -> mean over tokens -> zero-initialised
    Dense head. No position embedding and no class token.

    Args:
      patch_size: patch side P; H and W must be multiples of it.
      hidden_dim: token width C.
      num_blocks: number of Mixer blocks N.
      tokens_mlp_dim: token-MLP hidden width D_S.
      channels_mlp_dim: channel-MLP hidden width D_C.
      num_classes: logits width (include_top only).
      input_shape: (H, W, C), all known; defaults to 224x224x3. The token
        MLP weights depend on H and W, so the resolution is fixed.
      include_top: add the head; without it the model returns the pooled
        (batch, C) features (big_vision's `pre_logits`).
      dropout_rate: dropout after each Dense inside every MLP block.
      stochastic_depth_rate: drop probability of the last block's residual
        branches; block i uses i / (N - 1) of it (big_vision schedule).
      name: model name.

    Raises:
      ValueError: on a malformed shape, H or W not divisible by P, a
        non-positive class count or a rate outside [0, 1).
    """

    def __init__(
        self,
        patch_size,
        hidden_dim,
        num_blocks,
        tokens_mlp_dim,
        channels_mlp_dim,
        num_classes=1000,
        input_shape=None,
        include_top=True,
        dropout_rate=0.0,
        stochastic_depth_rate=0.0,
        name="mlp_mixer",
        **kwargs,
    ):
        if input_shape is None:
            size = variants.DEFAULT_IMAGE_SIZE
            input_shape = (size, size, 3)
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"input_shape must be (height, width, channels), got "
                f"{input_shape}")
        for arg, value in (("patch_size", patch_size),
                           ("hidden_dim", hidden_dim),
                           ("num_blocks", num_blocks),
                           ("tokens_mlp_dim", tokens_mlp_dim),
                           ("channels_mlp_dim", channels_mlp_dim)):
            _check_positive_int(arg, value)
        height, width, _ = input_shape
        if any(dim is None for dim in input_shape):
            raise ValueError(
                f"MlpMixer needs a fully known input_shape (the token MLP "
                f"is sized by the token count), got {input_shape}")
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"Input height and width must be divisible by patch_size "
                f"{patch_size}, got {height}x{width}")
        if include_top:
            _check_positive_int("num_classes", num_classes)
        _check_rate("dropout_rate", dropout_rate)
        _check_rate("stochastic_depth_rate", stochastic_depth_rate)

        # === Layers ===
        num_tokens = (height // patch_size) * (width // patch_size)
        drop_rates = stochastic_depth_schedule(
            stochastic_depth_rate, num_blocks)

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="image")
        # 'valid' equals Flax's default 'SAME' here: H and W are multiples
        # of the stride, so SAME adds no padding.
        x = keras.layers.Conv2D(
            hidden_dim, patch_size, strides=patch_size, padding="valid",
            use_bias=True, kernel_initializer=layers.kernel_initializer(),
            bias_initializer="zeros", name="stem")(inputs)
        # Row-major n h w c -> n (h w) c, as einops.rearrange in vit_jax.
        x = keras.layers.Reshape((num_tokens, hidden_dim), name="tokens")(x)
        block_names = []
        for index, drop_rate in enumerate(drop_rates):
            block_name = f"block_{index}"
            x = layers.MixerBlock(
                tokens_mlp_dim, channels_mlp_dim, dropout_rate=dropout_rate,
                stochastic_depth_rate=drop_rate, name=block_name)(x)
            block_names.append(block_name)
        x = layers.layer_norm("pre_head_layer_norm")(x)
        x = keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
        if include_top:
            x = keras.layers.Dense(
                num_classes, kernel_initializer="zeros",
                bias_initializer="zeros", name="head")(x)
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)

        # === Config ===
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.num_blocks = num_blocks
        self.tokens_mlp_dim = tokens_mlp_dim
        self.channels_mlp_dim = channels_mlp_dim
        self.num_classes = num_classes
        self.image_shape = input_shape
        self.include_top = include_top
        self.dropout_rate = dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.num_tokens = num_tokens
        self.stem_layer_names = ("stem",)
        self.block_names = tuple(block_names)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "patch_size": self.patch_size,
            "hidden_dim": self.hidden_dim,
            "num_blocks": self.num_blocks,
            "tokens_mlp_dim": self.tokens_mlp_dim,
            "channels_mlp_dim": self.channels_mlp_dim,
            "num_classes": self.num_classes,
            "input_shape": self.image_shape,
            "include_top": self.include_top,
            "dropout_rate": self.dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_variant(variant, **overrides):
    """Builds `variant` (a key of VARIANTS) with keyword overrides.

    The table's patch size and widths are defaults; any keyword (including
    `patch_size` or `num_blocks`) overrides them, the rest goes to
    `MlpMixer`. The model is named after the variant unless `name` is given.

    Raises:
      KeyError: unknown variant.
    """
    patch, hidden, blocks, tokens_mlp, channels_mlp = (
        variants.VARIANTS[variant])
    kwargs = {
        "patch_size": patch,
        "hidden_dim": hidden,
        "num_blocks": blocks,
        "tokens_mlp_dim": tokens_mlp,
        "channels_mlp_dim": channels_mlp,
        "name": variant,
    }
    kwargs.update(overrides)
    return MlpMixer(**kwargs)
