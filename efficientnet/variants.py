"""EfficientNet variant table and block tables (tensorflow/tpu reference).

`VARIANTS` is the single source of truth for each variant's default
resolution, used by training, pseudo-labeling and finetuning alike.
"""

import dataclasses
import re

# name -> (width_coefficient, depth_coefficient, resolution, dropout_rate),
# `efficientnet_builder.efficientnet_params` in tensorflow/tpu (B8, L2 there
# and in noisystudent; Keras ships only B0-B7).
VARIANTS = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
    "efficientnet_b8": (2.2, 3.6, 672, 0.5),
    "efficientnet_l2": (4.3, 5.3, 800, 0.5),
}

# `_DEFAULT_BLOCKS_ARGS` of the B0 baseline, reference block-string grammar.
DEFAULT_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)

# noisystudent `small_image_model` (SVHN, 32x32): stages 2 and 3 keep stride
# 1 so a 32x32 input ends in 4x4 features instead of 1x1.
SMALL_IMAGE_BLOCKS = (
    DEFAULT_BLOCKS[0],
    "r2_k3_s11_e6_i16_o24_se0.25",
    "r2_k5_s11_e6_i24_o40_se0.25",
) + DEFAULT_BLOCKS[3:]

STEM_FILTERS = 32
HEAD_FILTERS = 1280
DEPTH_DIVISOR = 8


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One stage of MBConv blocks as decoded from a block string."""

    num_repeat: int
    kernel_size: int
    strides: int
    expand_ratio: int
    input_filters: int
    output_filters: int
    se_ratio: float
    id_skip: bool = True


_FIELD = re.compile(r"^([a-z]+)([0-9.]*)$")


def decode_block_string(block_string):
    """Decodes `r2_k3_s22_e6_i16_o24_se0.25` into `BlockArgs`.

    Raises:
      ValueError: if a field is missing or malformed.
    """
    fields = {}
    id_skip = True
    for part in block_string.split("_"):
        if part == "noskip":
            id_skip = False
            continue
        match = _FIELD.match(part)
        if not match:
            raise ValueError(f"Bad field {part!r} in block {block_string!r}")
        fields[match.group(1)] = match.group(2)
    required = ("r", "k", "s", "e", "i", "o")
    missing = [key for key in required if key not in fields]
    if missing:
        raise ValueError(f"Block {block_string!r} lacks fields {missing}")
    strides = fields["s"]
    if len(strides) != 2 or strides[0] != strides[1]:
        raise ValueError(
            f"Block {block_string!r}: strides must be two equal digits, "
            f"got {strides!r}"
        )
    return BlockArgs(
        num_repeat=int(fields["r"]),
        kernel_size=int(fields["k"]),
        strides=int(strides[0]),
        expand_ratio=int(fields["e"]),
        input_filters=int(fields["i"]),
        output_filters=int(fields["o"]),
        se_ratio=float(fields.get("se", 0) or 0),
        id_skip=id_skip,
    )
