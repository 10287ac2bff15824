"""MLP-Mixer variant table (paper Table 1; big_vision `Model(variant=...)`).

`VARIANTS` is the single source of truth for each variant's widths. Every
variant trains natively at `DEFAULT_IMAGE_SIZE`; unlike EfficientNet the
resolution is not part of the row, because it only changes the number of
tokens S = H * W / P**2 (and with it the token-MLP weight shapes).
"""

# name -> (patch_size, hidden_dim, num_blocks, tokens_mlp_dim,
#          channels_mlp_dim). Rule of thumb from the paper: D_S = C / 2 and
# D_C = 4 C. vit_jax ships configs only for B/16, B/32 and L/16; the other
# rows are the paper's (and big_vision's) S, B, L, H widths.
VARIANTS = {
    "mixer_s32": (32, 512, 8, 256, 2048),
    "mixer_s16": (16, 512, 8, 256, 2048),
    "mixer_b32": (32, 768, 12, 384, 3072),
    "mixer_b16": (16, 768, 12, 384, 3072),
    "mixer_l32": (32, 1024, 24, 512, 4096),
    "mixer_l16": (16, 1024, 24, 512, 4096),
    "mixer_h14": (14, 1280, 32, 640, 5120),
}

# Pre-training resolution of every row of Table 1 (S = 49, 196 or 256).
DEFAULT_IMAGE_SIZE = 224

# Flax `nn.LayerNorm` default; Keras' own default (1e-3) would not match
# the reference checkpoints.
LAYER_NORM_EPSILON = 1e-6
