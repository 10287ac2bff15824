"""MLP-Mixer S/B/L/H in Keras 3 with the vision_transformer numerics."""

import functools

from mixer.convert import load_vit_jax_npz
from mixer.layers import MixerBlock
from mixer.layers import MlpBlock
from mixer.layers import UnscaledStochasticDepth
from mixer.mlp_mixer import MlpMixer
from mixer.mlp_mixer import build_variant
from mixer.variants import DEFAULT_IMAGE_SIZE
from mixer.variants import VARIANTS


def _builder(variant):
    fn = functools.partial(build_variant, variant)
    fn.__name__ = variant
    fn.__doc__ = f"Builds {variant} with its table defaults; kwargs override."
    return fn


mixer_s32 = _builder("mixer_s32")
mixer_s16 = _builder("mixer_s16")
mixer_b32 = _builder("mixer_b32")
mixer_b16 = _builder("mixer_b16")
mixer_l32 = _builder("mixer_l32")
mixer_l16 = _builder("mixer_l16")
mixer_h14 = _builder("mixer_h14")
