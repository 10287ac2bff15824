"""EfficientNet B0-B8 and L2 in Keras 3 with the tensorflow/tpu numerics."""

import functools

from efficientnet.blocks import MBConvBlock
from efficientnet.blocks import SqueezeExcite
from efficientnet.blocks import StochasticDepth
from efficientnet.convert import load_tf1_checkpoint
from efficientnet.efficientnet import EfficientNet
from efficientnet.efficientnet import build_variant
from efficientnet.efficientnet import round_filters
from efficientnet.efficientnet import round_repeats
from efficientnet.variants import VARIANTS


def _builder(variant):
    fn = functools.partial(build_variant, variant)
    fn.__name__ = variant
    fn.__doc__ = f"Builds {variant} with its table defaults; kwargs override."
    return fn


efficientnet_b0 = _builder("efficientnet_b0")
efficientnet_b1 = _builder("efficientnet_b1")
efficientnet_b2 = _builder("efficientnet_b2")
efficientnet_b3 = _builder("efficientnet_b3")
efficientnet_b4 = _builder("efficientnet_b4")
efficientnet_b5 = _builder("efficientnet_b5")
efficientnet_b6 = _builder("efficientnet_b6")
efficientnet_b7 = _builder("efficientnet_b7")
efficientnet_b8 = _builder("efficientnet_b8")
efficientnet_l2 = _builder("efficientnet_l2")
