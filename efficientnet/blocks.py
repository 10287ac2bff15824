"""EfficientNet building blocks: MBConv, squeeze-excite, stochastic depth.

Numerics follow tensorflow/tpu `efficientnet_model.py`: BN momentum 0.99 and
epsilon 1e-3, swish everywhere, the squeeze width taken from the block's
*input* filters, no activation after the projection, and a residual only when
the block keeps stride 1 and its width.
"""

import keras

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


def conv_kernel_initializer():
    """Untruncated normal, stddev sqrt(2 / fan_out), as in the reference.

    The reference notes it differs on purpose from the truncated
    `variance_scaling_initializer`; fan_out = kh * kw * out_channels, and a
    depthwise kernel (kh, kw, C, 1) gets fan_out = kh * kw.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def dense_kernel_initializer():
    """Uniform(-r, r), r = 1 / sqrt(num_classes): the reference's logits init."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_out", distribution="uniform"
    )


def batch_norm(name):
    return BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


@keras.saving.register_keras_serializable(package="efficientnet")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras BatchNormalization whose TensorFlow training step is fused.

    Keras 3 normalises a training batch with separate moment, subtract and
    multiply ops and as many gradient ops; TensorFlow's fused kernel
    (`FusedBatchNormV3`, oneDNN on CPU) does the same math in one pass
    each way: B0's 224-px training step takes ~30% less CPU time (its
    element-wise ops, mostly the unfused BN, were ~half its op time). Same
    variables, outputs, gradients and moving-statistics update as the
    Keras layer (the biased batch variance, as Keras 3); every other case
    (inference, other backends, masks, renorm, synchronized) is Keras'
    own code.
    """

    def _fusable(self, inputs, training, mask):
        return (training and self.trainable and mask is None
                and not self.renorm and not self.synchronized
                and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.epsilon >= 1.001e-5)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only on the TensorFlow backend

        # As Keras: BN runs in float32 even under mixed precision.
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale \
            else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center \
            else tf.zeros([channels])
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, is_training=True)
        # The kernel returns the Bessel-corrected variance; Keras 3 (and
        # this layer's inference path) keeps the biased one.
        n = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (n - 1.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum
                                + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="efficientnet")
class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch per sample with probability `rate`.

    The kept branches are scaled by 1 / (1 - rate) so inference is the
    identity. A layer that is not trainable (a frozen block during a
    resolution finetune) also behaves as at inference, as the reference's
    `fix_layer_num` does.

    Args:
      rate: drop probability in [0, 1).
      seed: optional seed for the per-sample masks.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"StochasticDepth rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or not self.trainable or self.rate == 0.0:
            return inputs
        survival = 1.0 - self.rate
        batch = keras.ops.shape(inputs)[0]
        mask_shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        uniform = keras.random.uniform(
            mask_shape, seed=self.seed_generator, dtype=inputs.dtype
        )
        mask = keras.ops.floor(survival + uniform)
        return inputs / survival * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="efficientnet")
class SqueezeExcite(keras.layers.Layer):
    """Channel gating: mean over H, W -> 1x1 reduce -> swish -> 1x1 -> sigmoid.

    Args:
      filters: channels of the gated tensor (the expanded width).
      squeeze_filters: bottleneck width, max(1, int(block input * se_ratio)).
    """

    def __init__(self, filters, squeeze_filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.squeeze_filters = squeeze_filters
        self.reduce_conv = keras.layers.Conv2D(
            squeeze_filters, 1, padding="same", use_bias=True,
            kernel_initializer=conv_kernel_initializer(), name="reduce_conv",
        )
        self.expand_conv = keras.layers.Conv2D(
            filters, 1, padding="same", use_bias=True,
            kernel_initializer=conv_kernel_initializer(), name="expand_conv",
        )

    def build(self, input_shape):
        self.reduce_conv.build(input_shape[:-1] + (self.filters,))
        self.expand_conv.build(input_shape[:-1] + (self.squeeze_filters,))

    def call(self, inputs):
        x = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
        x = keras.activations.silu(self.reduce_conv(x))
        x = keras.activations.sigmoid(self.expand_conv(x))
        return inputs * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": self.filters, "squeeze_filters": self.squeeze_filters}
        )
        return config


@keras.saving.register_keras_serializable(package="efficientnet")
class MBConvBlock(keras.layers.Layer):
    """Mobile inverted bottleneck: expand -> depthwise -> SE -> project (+ skip).

    Args:
      input_filters: channels in.
      output_filters: channels out.
      kernel_size: depthwise kernel size.
      strides: depthwise stride (only the first block of a stage strides).
      expand_ratio: expansion factor; 1 skips the expansion conv.
      se_ratio: squeeze ratio on the *input* filters; 0 disables SE.
      id_skip: allow the identity shortcut.
      drop_rate: stochastic-depth drop probability of the residual branch.
    """

    def __init__(
        self,
        input_filters,
        output_filters,
        kernel_size=3,
        strides=1,
        expand_ratio=1,
        se_ratio=0.25,
        id_skip=True,
        drop_rate=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_filters = input_filters
        self.output_filters = output_filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.expand_ratio = expand_ratio
        self.se_ratio = se_ratio
        self.id_skip = id_skip
        self.drop_rate = float(drop_rate)
        self.expanded_filters = input_filters * expand_ratio
        self.use_residual = (
            id_skip and strides == 1 and input_filters == output_filters
        )

        self.expand_conv = self.expand_bn = None
        if expand_ratio != 1:
            self.expand_conv = keras.layers.Conv2D(
                self.expanded_filters, 1, padding="same", use_bias=False,
                kernel_initializer=conv_kernel_initializer(),
                name="expand_conv",
            )
            self.expand_bn = batch_norm("expand_bn")
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding="same", use_bias=False,
            depthwise_initializer=conv_kernel_initializer(),
            name="depthwise_conv",
        )
        self.depthwise_bn = batch_norm("depthwise_bn")
        self.se = None
        if 0 < se_ratio <= 1:
            # Reference rule: squeeze width from the block *input* filters.
            squeeze = max(1, int(input_filters * se_ratio))
            self.se = SqueezeExcite(self.expanded_filters, squeeze, name="se")
        self.project_conv = keras.layers.Conv2D(
            output_filters, 1, padding="same", use_bias=False,
            kernel_initializer=conv_kernel_initializer(), name="project_conv",
        )
        self.project_bn = batch_norm("project_bn")
        self.drop = None
        if self.use_residual and self.drop_rate > 0:
            self.drop = StochasticDepth(self.drop_rate, name="drop")

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.expand_conv is not None:
            self.expand_conv.build(shape)
            shape = shape[:-1] + (self.expanded_filters,)
            self.expand_bn.build(shape)
        self.depthwise_conv.build(shape)
        shape = self.depthwise_conv.compute_output_shape(shape)
        self.depthwise_bn.build(shape)
        if self.se is not None:
            self.se.build(shape)
        self.project_conv.build(shape)
        self.project_bn.build(shape[:-1] + (self.output_filters,))

    def call(self, inputs, training=None):
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_conv(x)
            x = keras.activations.silu(self.expand_bn(x, training=training))
        x = self.depthwise_conv(x)
        x = keras.activations.silu(self.depthwise_bn(x, training=training))
        if self.se is not None:
            x = self.se(x)
        x = self.project_conv(x)
        x = self.project_bn(x, training=training)
        if self.use_residual:
            if self.drop is not None:
                x = self.drop(x, training=training)
            x = x + inputs
        return x

    def compute_output_shape(self, input_shape):
        shape = self.depthwise_conv.compute_output_shape(
            tuple(input_shape[:-1]) + (self.expanded_filters,)
        )
        return shape[:-1] + (self.output_filters,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_filters": self.input_filters,
            "output_filters": self.output_filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "expand_ratio": self.expand_ratio,
            "se_ratio": self.se_ratio,
            "id_skip": self.id_skip,
            "drop_rate": self.drop_rate,
        })
        return config
