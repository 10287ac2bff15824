"""MLP-Mixer layers: MLP block, Mixer block, per-branch stochastic depth.

Numerics follow google-research/vision_transformer `vit_jax/models_mixer.py`
(Flax defaults): LayerNorm epsilon 1e-6, tanh-approximated GELU
(`jax.nn.gelu` defaults to approximate=True; Keras defaults to the erf
form), lecun_normal kernels and zero biases. Stochastic depth follows
big_vision `models/mlp_mixer.py`: one per-sample Bernoulli mask for the
token branch and an independent one for the channel branch.

Sub-layer names (`layer_norm_0`, `token_mixing/dense_0`, ...) mirror the
Flax auto-names (`LayerNorm_0`, `token_mixing/Dense_0`, ...) so that
`mixer/convert.py` maps official checkpoints one to one.
"""

import keras

from mixer import variants


def kernel_initializer():
    """Flax's `lecun_normal`: truncated normal, variance 1 / fan_in."""
    return keras.initializers.LecunNormal()


def layer_norm(name):
    return keras.layers.LayerNormalization(
        epsilon=variants.LAYER_NORM_EPSILON, name=name)


@keras.saving.register_keras_serializable(package="mixer")
class UnscaledStochasticDepth(keras.layers.Layer):
    """Zeroes a residual branch per sample with probability `rate`.

    big_vision's `_stoch_depth_mask`: a per-sample Bernoulli keep mask,
    multiplied in training and absent at inference, so inference is the
    identity. A layer that is not trainable (a frozen block during a
    resolution finetune) also behaves as at inference.

    Args:
      rate: drop probability in [0, 1).
      seed: optional seed for the per-sample masks.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(
                f"UnscaledStochasticDepth rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or not self.trainable or self.rate == 0.0:
            return inputs
        batch = keras.ops.shape(inputs)[0]
        mask_shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        uniform = keras.random.uniform(
            mask_shape, seed=self.seed_generator, dtype=inputs.dtype)
        keep = keras.ops.cast(uniform >= self.rate, inputs.dtype)
        # Deliberately no 1 / (1 - rate) rescaling (unlike
        # efficientnet.blocks.StochasticDepth and timm's DropPath): this is
        # big_vision's form, the one the paper's Mixer recipe (stoch_depth
        # 0.1, B/16 76.3% on i1k) was tuned with, and it keeps training
        # numerics identical to the reference for models loaded from its
        # checkpoints. The kept branch's train-time mean is (1 - rate) times
        # its inference value, a small mismatch at the paper's rate <= 0.1.
        return inputs * keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="mixer")
class MlpBlock(keras.layers.Layer):
    """Dense(mlp_dim) -> tanh GELU -> Dense(input width), both with bias.

    The output width equals the input's last dimension, as in Flax's
    `nn.Dense(x.shape[-1])`, so the second Dense is created in `build`.

    Args:
      mlp_dim: hidden width (D_S for token mixing, D_C for channel mixing).
      dropout_rate: dropout after each Dense (0 disables; the reference has
        none, the paper swept {0, 0.1}).
    """

    def __init__(self, mlp_dim, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1), got {dropout_rate}")
        self.mlp_dim = mlp_dim
        self.dropout_rate = float(dropout_rate)
        self.dense_0 = keras.layers.Dense(
            mlp_dim, kernel_initializer=kernel_initializer(),
            bias_initializer="zeros", name="dense_0")
        self.dense_1 = None
        self.dropout_0 = self.dropout_1 = None
        if self.dropout_rate > 0:
            self.dropout_0 = keras.layers.Dropout(
                self.dropout_rate, name="dropout_0")
            self.dropout_1 = keras.layers.Dropout(
                self.dropout_rate, name="dropout_1")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.dense_1 = keras.layers.Dense(
            input_shape[-1], kernel_initializer=kernel_initializer(),
            bias_initializer="zeros", name="dense_1")
        self.dense_0.build(input_shape)
        self.dense_1.build(input_shape[:-1] + (self.mlp_dim,))

    def call(self, inputs, training=None):
        x = self.dense_0(inputs)
        x = keras.activations.gelu(x, approximate=True)
        if self.dropout_0 is not None:
            x = self.dropout_0(x, training=training)
        x = self.dense_1(x)
        if self.dropout_1 is not None:
            x = self.dropout_1(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"mlp_dim": self.mlp_dim, "dropout_rate": self.dropout_rate})
        return config


@keras.saving.register_keras_serializable(package="mixer")
class MixerBlock(keras.layers.Layer):
    """Pre-LN token mixing then channel mixing, each with its own residual.

    On tokens x of shape (batch, S, C):
    x = x + drop(T(LN_0(x)^T)^T); x = x + drop(M(LN_1(x))), where the token
    MLP T maps S -> D_S -> S (shared across channels) and the channel MLP M
    maps C -> D_C -> C (shared across tokens).

    Args:
      tokens_mlp_dim: token-MLP hidden width D_S.
      channels_mlp_dim: channel-MLP hidden width D_C.
      dropout_rate: dropout inside both MLPs.
      stochastic_depth_rate: per-sample drop probability of each residual
        branch; the token and channel branches draw independent masks.
    """

    def __init__(self, tokens_mlp_dim, channels_mlp_dim, dropout_rate=0.0,
                 stochastic_depth_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.tokens_mlp_dim = tokens_mlp_dim
        self.channels_mlp_dim = channels_mlp_dim
        self.dropout_rate = float(dropout_rate)
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.layer_norm_0 = layer_norm("layer_norm_0")
        self.token_mixing = MlpBlock(
            tokens_mlp_dim, dropout_rate, name="token_mixing")
        self.layer_norm_1 = layer_norm("layer_norm_1")
        self.channel_mixing = MlpBlock(
            channels_mlp_dim, dropout_rate, name="channel_mixing")
        self.token_drop = self.channel_drop = None
        if self.stochastic_depth_rate > 0:
            self.token_drop = UnscaledStochasticDepth(
                self.stochastic_depth_rate, name="token_drop")
            self.channel_drop = UnscaledStochasticDepth(
                self.stochastic_depth_rate, name="channel_drop")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"MixerBlock expects (batch, tokens, channels), got "
                f"{input_shape}")
        batch, tokens, channels = input_shape
        self.layer_norm_0.build(input_shape)
        # Token mixing runs on the transposed (batch, C, S) tensor.
        self.token_mixing.build((batch, channels, tokens))
        self.layer_norm_1.build(input_shape)
        self.channel_mixing.build(input_shape)

    def call(self, inputs, training=None):
        y = self.layer_norm_0(inputs)
        y = keras.ops.swapaxes(y, 1, 2)
        y = self.token_mixing(y, training=training)
        y = keras.ops.swapaxes(y, 1, 2)
        if self.token_drop is not None:
            y = self.token_drop(y, training=training)
        x = inputs + y
        y = self.channel_mixing(self.layer_norm_1(x), training=training)
        if self.channel_drop is not None:
            y = self.channel_drop(y, training=training)
        return x + y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "tokens_mlp_dim": self.tokens_mlp_dim,
            "channels_mlp_dim": self.channels_mlp_dim,
            "dropout_rate": self.dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
        })
        return config
