"""The 16 RandAugment image ops with the reference TF1 numerics.

Ports of tensorflow/tpu `models/official/efficientnet/autoaugment.py`
(PIL-equivalent ops) on TF2 ops: every function takes a uint8 `[H, W, C]`
image (C is 1 or 3; H and W may be unknown) and returns a uint8 image of
the same shape. They run eagerly, in `tf.function` and in `tf.data` maps.

Geometric ops use `tf.raw_ops.ImageProjectiveTransformV3` (the kernel
behind TF1's `tf.contrib.image.transform`) with nearest interpolation and a
constant fill, which equals the reference's wrap/unwrap alpha-channel trick:
a pixel is filled exactly where its nearest source is outside the image.
Per-channel ops (AutoContrast, Equalize) are vectorised over channels
instead of the reference's three stacked calls; the arithmetic per pixel is
the same.
"""

import math

import tensorflow as tf

# PIL's SMOOTH kernel, used as the degenerate image of Sharpness.
_SMOOTH_KERNEL = [[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]


def _to_float(image):
    return tf.cast(image, tf.float32)


def _select(condition, x, y):
    """`tf.where` for operands broadcastable to `x`'s shape.

    Broadcasts explicitly and uses the v1 `Select` kernel: on CPU it is
    about 4x faster than `SelectV2` (what `tf.where` runs) for images, and
    implicit broadcasting in binary ops is slow as well.
    """
    shape = tf.shape(x)
    return tf.raw_ops.Select(
        condition=tf.broadcast_to(condition, shape), x=x,
        y=tf.broadcast_to(tf.cast(y, x.dtype), shape))


def _hw(image):
    shape = tf.shape(image)
    return shape[0], shape[1]


def blend(image1, image2, factor):
    """Blends two uint8 images: `image1 + factor * (image2 - image1)`.

    Factor 0 gives image1, 1 gives image2, values above 1 extrapolate; the
    result is clipped to [0, 255] and truncated to uint8 like the
    reference (inside [0, 1] the clip is a no-op, as it is there).

    Args:
      image1: uint8 image (the degenerate image).
      image2: uint8 image of the same shape.
      factor: a Python float or float scalar tensor.

    Returns:
      The blended uint8 image.
    """
    if isinstance(factor, (int, float)):
        if factor == 0.0:
            return tf.convert_to_tensor(image1)
        if factor == 1.0:
            return tf.convert_to_tensor(image2)
    image1 = _to_float(image1)
    temp = image1 + factor * (_to_float(image2) - image1)
    return tf.cast(tf.clip_by_value(temp, 0.0, 255.0), tf.uint8)


def invert(image):
    """Returns `255 - image`."""
    return 255 - tf.convert_to_tensor(image)


def solarize(image, threshold=128):
    """Inverts pixels at or above `threshold`.

    Compared in int32 so thresholds >= 256 (the reference's M >= 10) are
    representable; they leave the image unchanged, as in the reference.

    Args:
      image: uint8 image.
      threshold: int; pixels < threshold are kept.

    Returns:
      The solarized uint8 image.
    """
    image = tf.convert_to_tensor(image)
    keep = tf.cast(image, tf.int32) < threshold
    return _select(keep, image, 255 - image)


def solarize_add(image, addition=0, threshold=128):
    """Adds `addition` to pixels below `threshold`, clipped to [0, 255].

    Args:
      image: uint8 image.
      addition: int added to dark pixels.
      threshold: int; only pixels < threshold change.

    Returns:
      The uint8 image.
    """
    pixels = tf.cast(image, tf.int32)
    added = tf.cast(tf.clip_by_value(pixels + addition, 0, 255), tf.uint8)
    return _select(pixels < threshold, added, image)


def posterize(image, bits):
    """Keeps the `bits` most significant bits of each pixel.

    Args:
      image: uint8 image.
      bits: number of bits kept.

    Returns:
      The uint8 image.
    """
    # Deliberate deviation: the reference shifts by 8 - bits, negative for
    # bits > 8 (M >= 23 in RandAugment) and undefined; we clamp at 0, which
    # keeps all bits (the value it has for M 20-22).
    shift = tf.cast(tf.maximum(8 - tf.cast(bits, tf.int32), 0), tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def _grayscale(image):
    # A 1-channel image is its own grayscale, so Color is the identity and
    # Contrast uses the image itself for such images.
    if image.shape[-1] == 1:
        return image
    return tf.image.rgb_to_grayscale(image)


def color(image, factor):
    """PIL Color: blends with the image's grayscale (tiled to C channels).

    Args:
      image: uint8 image.
      factor: 0 gives grayscale, 1 the image, >1 more saturation.

    Returns:
      The uint8 image.
    """
    image = tf.convert_to_tensor(image)
    degenerate = _grayscale(image)
    degenerate = tf.broadcast_to(degenerate, tf.shape(image))
    return blend(degenerate, image, factor)


def contrast(image, factor):
    """PIL Contrast as the reference computes it, blending with a flat image.

    Args:
      image: uint8 image.
      factor: 0 gives the flat image, 1 the image, >1 more contrast.

    Returns:
      The uint8 image.
    """
    image = tf.convert_to_tensor(image)
    height, width = _hw(image)
    # Reference quirk, kept: its "mean" is the sum of the grayscale
    # histogram / 256 = H*W/256 (4 at 32 px, 196 at 224 px, 255 from
    # 256 px), not the mean pixel value (tensorflow/tpu#825); the published
    # models were trained with it.
    mean = tf.cast(height * width, tf.float32) / 256.0
    value = tf.cast(tf.clip_by_value(mean, 0.0, 255.0), tf.uint8)
    return blend(tf.fill(tf.shape(image), value), image, factor)


def brightness(image, factor):
    """PIL Brightness: blends with black.

    Args:
      image: uint8 image.
      factor: 0 gives black, 1 the image, >1 brighter.

    Returns:
      The uint8 image.
    """
    image = tf.convert_to_tensor(image)
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
    """PIL Sharpness: blends with a 3x3-smoothed image (border kept).

    Args:
      image: uint8 image, at least 3x3.
      factor: 0 gives the smoothed image, 1 the image, >1 sharper.

    Returns:
      The uint8 image.
    """
    image = tf.convert_to_tensor(image)
    channels = image.shape[-1] or tf.shape(image)[-1]
    kernel = tf.constant(_SMOOTH_KERNEL, shape=[3, 3, 1, 1]) / 13.0
    kernel = tf.tile(kernel, [1, 1, channels, 1])
    smoothed = tf.nn.depthwise_conv2d(
        _to_float(image)[None], kernel, [1, 1, 1, 1], padding="VALID")
    smoothed = tf.cast(tf.clip_by_value(smoothed[0], 0.0, 255.0), tf.uint8)
    # The one-pixel border keeps the original pixels, as in the reference;
    # concatenation is cheaper than a per-pixel select.
    middle = tf.concat([image[1:-1, :1], smoothed, image[1:-1, -1:]], axis=1)
    degenerate = tf.concat([image[:1], middle, image[-1:]], axis=0)
    return blend(degenerate, image, factor)


def autocontrast(image):
    """PIL AutoContrast: stretches each channel to the full [0, 255] range.

    Args:
      image: uint8 image.

    Returns:
      The uint8 image; constant channels are left unchanged.
    """
    image = tf.convert_to_tensor(image)
    lo = _to_float(tf.reduce_min(image, axis=[0, 1]))
    hi = _to_float(tf.reduce_max(image, axis=[0, 1]))
    stretch = hi > lo
    # Constant channels get scale 1, offset 0: x * 1 + 0 is exact, so this
    # equals the reference's per-channel cond without a per-pixel select.
    scale = tf.where(stretch, 255.0 / tf.maximum(hi - lo, 1.0), 1.0)
    offset = tf.where(stretch, -lo * scale, 0.0)
    shape = tf.shape(image)
    scaled = (_to_float(image) * tf.broadcast_to(scale, shape)
              + tf.broadcast_to(offset, shape))
    return tf.cast(tf.clip_by_value(scaled, 0.0, 255.0), tf.uint8)


def equalize(image):
    """PIL Equalize: per-channel histogram equalisation.

    Args:
      image: uint8 image.

    Returns:
      The uint8 image; channels whose step is 0 are left unchanged.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    # [C, H*W] so one bincount/cumsum/gather handles every channel.
    pixels = tf.transpose(tf.reshape(tf.cast(image, tf.int32),
                                     [-1, shape[-1]]))
    histo = tf.math.bincount(pixels, minlength=256, maxlength=256, axis=-1)
    # Count of the last non-empty bin (the brightest value present).
    last_bin = tf.reduce_max(
        tf.where(histo > 0, tf.range(256)[None, :], 0), axis=-1)
    last_count = tf.gather(histo, last_bin, batch_dims=1)
    step = (shape[0] * shape[1] - last_count) // 255
    safe_step = tf.maximum(step, 1)[:, None]
    lut = (tf.cumsum(histo, axis=-1) + safe_step // 2) // safe_step
    lut = tf.clip_by_value(
        tf.concat([tf.zeros_like(lut[:, :1]), lut[:, :-1]], axis=-1), 0, 255)
    # Step 0 leaves the channel unchanged: an identity table does that
    # without a per-pixel select.
    lut = tf.where(step[:, None] == 0, tf.range(256)[None, :], lut)
    equalized = tf.gather(tf.cast(lut, tf.uint8), pixels, batch_dims=1)
    return tf.reshape(tf.transpose(equalized), shape)


def transform(image, matrix, replace=128):
    """Applies a projective transform with nearest sampling and fill.

    Args:
      image: uint8 image.
      matrix: 8 floats `[a0, a1, a2, b0, b1, b2, c0, c1]` mapping an output
        point (x, y) to the input point `((a0 x + a1 y + a2) / k,
        (b0 x + b1 y + b2) / k)`, `k = c0 x + c1 y + 1`.
      replace: value for output pixels whose source is outside the image.

    Returns:
      The transformed uint8 image.
    """
    image = tf.convert_to_tensor(image)
    matrix = tf.reshape(
        tf.stack([tf.cast(v, tf.float32) for v in matrix]), [1, 8])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=matrix,
        output_shape=tf.shape(image)[:2],
        fill_value=tf.cast(replace, tf.float32),
        interpolation="NEAREST", fill_mode="CONSTANT")
    return tf.ensure_shape(out[0], image.shape)


def rotate(image, degrees, replace=128):
    """Rotates about the image centre by `degrees` (counter-clockwise).

    Args:
      image: uint8 image.
      degrees: angle; positive turns the content counter-clockwise as
        displayed (row 0 at the top), like `np.rot90`.
      replace: fill for uncovered pixels.

    Returns:
      The rotated uint8 image.
    """
    radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    height, width = _hw(image)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    cos, sin = tf.cos(radians), tf.sin(radians)
    # TF1 contrib.image.angles_to_projective_transforms.
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    return transform(
        image, [cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0], replace)


def translate_x(image, pixels, replace=128):
    """Shifts content left by `pixels` (right if negative), like PIL.

    Args:
      image: uint8 image.
      pixels: shift in pixels; output(x) = input(x + pixels).
      replace: fill for uncovered pixels.

    Returns:
      The translated uint8 image.
    """
    return transform(image, [1.0, 0.0, pixels, 0.0, 1.0, 0.0, 0.0, 0.0],
                     replace)


def translate_y(image, pixels, replace=128):
    """Shifts content up by `pixels`; output(y) = input(y + pixels)."""
    return transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, pixels, 0.0, 0.0],
                     replace)


def shear_x(image, level, replace=128):
    """Shears along x: output(x, y) = input(x + level * y, y).

    Args:
      image: uint8 image.
      level: shear coefficient (0.3 * M / 10 in RandAugment).
      replace: fill for uncovered pixels.

    Returns:
      The sheared uint8 image.
    """
    return transform(image, [1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                     replace)


def shear_y(image, level, replace=128):
    """Shears along y: output(x, y) = input(x, level * x + y)."""
    return transform(image, [1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0],
                     replace)


def fill_patch(image, size, replace=128):
    """Fills one `size` x `size` patch at a uniform random centre.

    The patch covers rows `[cy - size // 2, cy - size // 2 + size)` (and
    likewise columns), clipped at the borders, with `cy` uniform over all
    rows: the reference's Cutout when `size` is even.

    Args:
      image: uint8 image.
      size: patch side in pixels (int or int scalar tensor).
      replace: fill value.

    Returns:
      The uint8 image.
    """
    image = tf.convert_to_tensor(image)
    height, width = _hw(image)
    center_y = tf.random.uniform([], 0, height, dtype=tf.int32)
    center_x = tf.random.uniform([], 0, width, dtype=tf.int32)
    top = center_y - size // 2
    left = center_x - size // 2
    rows = tf.range(height)
    cols = tf.range(width)
    in_rows = (rows >= top) & (rows < top + size)
    in_cols = (cols >= left) & (cols < left + size)
    mask = (in_rows[:, None] & in_cols[None, :])[:, :, None]
    return _select(tf.logical_not(mask), image, replace)


def cutout(image, pad_size, replace=128):
    """Reference Cutout: a `2 * pad_size` square of `replace`, random centre.

    Args:
      image: uint8 image.
      pad_size: half the patch side.
      replace: fill value.

    Returns:
      The uint8 image.
    """
    return fill_patch(image, 2 * pad_size, replace)
