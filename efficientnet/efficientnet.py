"""EfficientNet as a functional Keras 3 model (tensorflow/tpu architecture).

The model returns logits. Input normalisation lives in the preprocessing
string, not in the model, so one definition serves train, eval and serving
(see `noisy_student_tf/data/value_ops.py`).
"""

import math

import keras

from efficientnet import blocks
from efficientnet import variants


def round_filters(filters, width_coefficient, depth_divisor=8):
    """Scales a channel count by width and rounds to the divisor (10% rule)."""
    if not width_coefficient:
        return filters
    filters *= width_coefficient
    new_filters = max(
        depth_divisor,
        int(filters + depth_divisor / 2) // depth_divisor * depth_divisor,
    )
    if new_filters < 0.9 * filters:
        new_filters += depth_divisor
    return int(new_filters)


def round_repeats(repeats, depth_coefficient):
    """Scales a stage's block count by depth, rounding up."""
    if not depth_coefficient:
        return repeats
    return int(math.ceil(depth_coefficient * repeats))


def drop_rates(stochastic_depth_rate, num_blocks):
    """Per-block stochastic-depth rates: rate * i / N for block i of N.

    A float schedule, so no block ever reaches rate 1 (qubvel #111);
    the reference's `drop_connect_rate * float(idx) / len(blocks)`.
    """
    return [stochastic_depth_rate * index / num_blocks
            for index in range(num_blocks)]


def scaled_block_args(width_coefficient, depth_coefficient, small_image=False,
                      block_strings=None, depth_divisor=8):
    """Expands the stage table into one `BlockArgs` per block, in order.

    The first block of a stage takes the stage's stride and input width;
    the others keep stride 1 and input = output width.
    """
    if block_strings is None:
        block_strings = (
            variants.SMALL_IMAGE_BLOCKS if small_image
            else variants.DEFAULT_BLOCKS
        )
    expanded = []
    for block_string in block_strings:
        stage = variants.decode_block_string(block_string)
        input_filters = round_filters(
            stage.input_filters, width_coefficient, depth_divisor)
        output_filters = round_filters(
            stage.output_filters, width_coefficient, depth_divisor)
        repeats = round_repeats(stage.num_repeat, depth_coefficient)
        for index in range(repeats):
            expanded.append(variants.BlockArgs(
                num_repeat=1,
                kernel_size=stage.kernel_size,
                strides=stage.strides if index == 0 else 1,
                expand_ratio=stage.expand_ratio,
                input_filters=input_filters if index == 0 else output_filters,
                output_filters=output_filters,
                se_ratio=stage.se_ratio,
                id_skip=stage.id_skip,
            ))
    return expanded


@keras.saving.register_keras_serializable(package="efficientnet")
class EfficientNet(keras.Model):
    """EfficientNet B0-B8 / L2 (Tan & Le 2019), reference numerics.

    Layer names are stable endpoints: `stem_conv`/`stem_bn`, `blocks_0` ...
    `blocks_{N-1}` (numbered across all stages, as in the reference
    checkpoints), `head_conv`/`head_bn`, and `logits`.

    Args:
      width_coefficient: channel multiplier.
      depth_coefficient: block-count multiplier.
      default_size: the variant's native resolution (used when
        `input_shape` is None).
      dropout_rate: dropout before the logits layer.
      stochastic_depth_rate: block i of N drops its residual branch with
        probability rate * i / N (noisystudent schedule).
      num_classes: logits width (include_top only).
      input_shape: (H, W, C); H and W may be None.
      include_top: add pooling, dropout and the logits layer.
      pooling: 'avg', 'max' or None when include_top is False.
      small_image: stride-1 stages 2 and 3 for 32x32 inputs (SVHN model).
      depth_divisor: channel rounding divisor.
      name: model name.
    """

    def __init__(
        self,
        width_coefficient=1.0,
        depth_coefficient=1.0,
        default_size=224,
        dropout_rate=0.2,
        stochastic_depth_rate=0.2,
        num_classes=1000,
        input_shape=None,
        include_top=True,
        pooling=None,
        small_image=False,
        depth_divisor=variants.DEPTH_DIVISOR,
        name="efficientnet",
        **kwargs,
    ):
        if input_shape is None:
            input_shape = (default_size, default_size, 3)
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"input_shape must be (height, width, channels), got "
                f"{input_shape}")
        if include_top and (not isinstance(num_classes, int)
                            or num_classes < 1):
            raise ValueError(
                f"num_classes must be a positive int, got {num_classes!r}")
        if pooling not in (None, "avg", "max"):
            raise ValueError(f"pooling must be None, 'avg' or 'max', got "
                             f"{pooling!r}")
        if not 0.0 <= stochastic_depth_rate < 1.0:
            raise ValueError("stochastic_depth_rate must be in [0, 1), got "
                             f"{stochastic_depth_rate}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1), got {dropout_rate}")

        # === Layers ===
        block_args = scaled_block_args(
            width_coefficient, depth_coefficient, small_image,
            depth_divisor=depth_divisor)
        num_blocks = len(block_args)
        stem_filters = round_filters(
            variants.STEM_FILTERS, width_coefficient, depth_divisor)
        head_filters = round_filters(
            variants.HEAD_FILTERS, width_coefficient, depth_divisor)

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="image")
        x = keras.layers.Conv2D(
            stem_filters, 3, strides=2, padding="same", use_bias=False,
            kernel_initializer=blocks.conv_kernel_initializer(),
            name="stem_conv")(inputs)
        x = blocks.batch_norm("stem_bn")(x)
        x = keras.layers.Activation("silu", name="stem_activation")(x)
        block_names = []
        rates = drop_rates(stochastic_depth_rate, num_blocks)
        for index, (args, drop_rate) in enumerate(zip(block_args, rates)):
            name_i = f"blocks_{index}"
            x = blocks.MBConvBlock(
                input_filters=args.input_filters,
                output_filters=args.output_filters,
                kernel_size=args.kernel_size,
                strides=args.strides,
                expand_ratio=args.expand_ratio,
                se_ratio=args.se_ratio,
                id_skip=args.id_skip,
                drop_rate=drop_rate,
                name=name_i,
            )(x)
            block_names.append(name_i)
        x = keras.layers.Conv2D(
            head_filters, 1, padding="same", use_bias=False,
            kernel_initializer=blocks.conv_kernel_initializer(),
            name="head_conv")(x)
        x = blocks.batch_norm("head_bn")(x)
        x = keras.layers.Activation("silu", name="head_activation")(x)
        if include_top:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            if dropout_rate > 0:
                x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
            x = keras.layers.Dense(
                num_classes,
                kernel_initializer=blocks.dense_kernel_initializer(),
                name="logits")(x)
        elif pooling == "avg":
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        elif pooling == "max":
            x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)

        # === Config ===
        self.width_coefficient = width_coefficient
        self.depth_coefficient = depth_coefficient
        self.default_size = default_size
        self.dropout_rate = dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.num_classes = num_classes
        self.image_shape = input_shape
        self.include_top = include_top
        self.pooling = pooling
        self.small_image = small_image
        self.depth_divisor = depth_divisor
        self.stem_layer_names = ("stem_conv", "stem_bn")
        self.block_names = tuple(block_names)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "width_coefficient": self.width_coefficient,
            "depth_coefficient": self.depth_coefficient,
            "default_size": self.default_size,
            "dropout_rate": self.dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "num_classes": self.num_classes,
            "input_shape": self.image_shape,
            "include_top": self.include_top,
            "pooling": self.pooling,
            "small_image": self.small_image,
            "depth_divisor": self.depth_divisor,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_variant(variant, **overrides):
    """Builds `variant` (a key of VARIANTS) with keyword overrides.

    `width_coefficient`, `depth_coefficient` and `dropout_rate` default to
    the variant table; anything else goes to `EfficientNet`.
    """
    width, depth, resolution, dropout = variants.VARIANTS[variant]
    kwargs = {
        "width_coefficient": width,
        "depth_coefficient": depth,
        "default_size": resolution,
        "dropout_rate": dropout,
        "name": variant,
    }
    kwargs.update(overrides)
    return EfficientNet(**kwargs)
