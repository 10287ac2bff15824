"""Registered geometry ops: crops, resizes, padding, flips, cutout.

Each op is a factory registered under its pp-string name; the returned
function maps a data dict to a data dict. Unless an op says otherwise it
reads and writes `data["image"]` (pass `key=` / `outkey=` to change that)
and leaves every other entry untouched. Images are uint8 `[H, W, C]` with C
in {1, 3}; H and W may be unknown (decoded images), and every op here
returns uint8. Every op works eagerly, inside `tf.function` and inside
`tf.data.Dataset.map`.

Reference semantics: google-research/noisystudent `preprocessing.py`
(spec §10). RandAugment lives in `randaugment.py`.
"""

import tensorflow as tf

from noisy_student_tf.data import augment_ops
from noisy_student_tf.data import registry

_RESIZE_METHODS = ("bicubic_tf1", "bilinear", "bicubic", "nearest", "area",
                   "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def _check_method(method):
    if method not in _RESIZE_METHODS:
        raise ValueError(
            f"Unknown resize method {method!r}; known: {_RESIZE_METHODS}")


def _size_hw(size):
    if isinstance(size, int):
        return size, size
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, int) for s in size)):
        return tuple(size)
    raise ValueError(f"size must be an int or (height, width), got {size!r}")


def resize_image(image, size, method="bicubic", antialias=False):
    """Resizes to `size` and returns uint8 (rounded, clipped to 0..255).

    Args:
      image: `[H, W, C]` image.
      size: int or (height, width).
      method: a `tf.image.resize` method, or "bicubic_tf1" for the TF1
        kernel the reference used (`resize_bicubic`, no half-pixel
        centres).
      antialias: passed to `tf.image.resize`.

    Returns:
      uint8 `[height, width, C]`.
    """
    height, width = _size_hw(size)
    if method == "bicubic_tf1":
        out = tf.raw_ops.ResizeBicubic(
            images=image[None], size=[height, width], align_corners=False,
            half_pixel_centers=False)[0]
    else:
        out = tf.image.resize(image, [height, width], method=method,
                              antialias=antialias)
    # Bicubic overshoots [0, 255]; round rather than truncate so a flat
    # image stays flat.
    out = tf.clip_by_value(tf.round(tf.cast(out, tf.float32)), 0.0, 255.0)
    return tf.cast(out, tf.uint8)


def _center_crop(image, size, crop_pct, method):
    height, width = _size_hw(size)
    if crop_pct is None:
        # The reference's CROP_PADDING = 32: 0.875 at 224, 0.937 at 475.
        crop_pct = min(height, width) / (min(height, width) + 32)
    shape = tf.shape(image)
    # At least one pixel: tiny images (1x1) must crop to something.
    side = tf.maximum(tf.cast(
        crop_pct * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32),
        tf.int32), 1)
    top = (shape[0] - side + 1) // 2
    left = (shape[1] - side + 1) // 2
    crop = image[top:top + side, left:left + side]
    return resize_image(crop, (height, width), method)


@registry.register("center_crop")
@registry.in_key_out_key()
def center_crop(size, crop_pct=None, method="bicubic"):
    """Central square of side `crop_pct * min(H, W)`, resized to `size`.

    Args:
      size: int or (height, width) output size.
      crop_pct: crop fraction; default res / (res + 32) as the reference.
      method: resize method (see `resize_image`). Deliberate difference:
        the default is TF2's half-pixel bicubic; "bicubic_tf1" reproduces
        the reference's TF1 kernel, which shifts content by half a pixel.

    Returns:
      The image op (uint8 output).
    """
    _size_hw(size)
    _check_method(method)
    if crop_pct is not None and not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return lambda image: _center_crop(image, size, crop_pct, method)


@registry.register("inception_crop")
@registry.in_key_out_key()
def inception_crop(size, area_min=0.08, area_max=1.0, method="bicubic"):
    """Random-area, random-aspect crop resized to `size` (reference train).

    `sample_distorted_bounding_box` with min_object_covered 0.1, aspect
    (3/4, 4/3), area (area_min, area_max) and 10 attempts; when it returns
    the whole image (failure), the eval centre crop is used instead, as in
    the reference's `_random_crop`.

    Args:
      size: int or (height, width) output size.
      area_min: smallest crop area as a fraction of the image.
      area_max: largest crop area fraction.
      method: resize method (see `center_crop`).

    Returns:
      The image op (uint8 output).
    """
    _size_hw(size)
    _check_method(method)
    if not 0.0 < area_min <= area_max <= 1.0:
        raise ValueError(
            f"need 0 < area_min <= area_max <= 1, got {area_min}, {area_max}")

    def fn(image):
        shape = tf.shape(image)
        begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            min_object_covered=0.1, aspect_ratio_range=(3.0 / 4, 4.0 / 3),
            area_range=(area_min, area_max), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        crop = tf.slice(image, begin, crop_size)
        # tf.slice with a dynamic size forgets the static channel count.
        crop.set_shape([None, None, image.shape[-1]])
        whole = tf.reduce_all(tf.equal(shape, tf.shape(crop)))
        return tf.cond(
            whole, lambda: _center_crop(image, size, None, method),
            lambda: resize_image(crop, size, method))

    return fn


@registry.register("resize")
@registry.in_key_out_key()
def resize(size, method="bicubic", antialias=False):
    """Resizes to `size`; uint8 output (see `resize_image`).

    Args:
      size: int or (height, width).
      method: `tf.image.resize` method or "bicubic_tf1".
      antialias: antialias when downsampling.

    Returns:
      The image op.
    """
    _size_hw(size)
    _check_method(method)
    return lambda image: resize_image(image, size, method, antialias)


@registry.register("pad_to_size")
@registry.in_key_out_key()
def pad_to_size(size, value=0):
    """Pads evenly on all sides to `size` (e.g. Fashion-MNIST 28 -> 32).

    Args:
      size: int or (height, width); must not be smaller than the image.
      value: fill value.

    Returns:
      The image op.
    """
    height, width = _size_hw(size)

    def fn(image):
        shape = tf.shape(image)
        checks = [tf.debugging.assert_less_equal(
            shape[:2], [height, width],
            message=f"pad_to_size({size}): image is larger than the target")]
        with tf.control_dependencies(checks):
            top = (height - shape[0]) // 2
            left = (width - shape[1]) // 2
        paddings = [[top, height - shape[0] - top],
                    [left, width - shape[1] - left], [0, 0]]
        out = tf.pad(image, paddings, constant_values=value)
        return tf.ensure_shape(out, [height, width, image.shape[-1]])

    return fn


@registry.register("flip_lr")
@registry.in_key_out_key()
def flip_lr():
    """Random horizontal flip with probability 1/2."""
    return tf.image.random_flip_left_right


@registry.register("pad_crop")
@registry.in_key_out_key()
def pad_crop(size, pad=4):
    """Reflect-pads by `pad` then takes a random `size` crop (CIFAR/SVHN).

    Args:
      size: int or (height, width) crop size (the reference: input size).
      pad: pixels of reflection padding per side; must be < the image side.

    Returns:
      The image op.
    """
    height, width = _size_hw(size)

    def fn(image):
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], "REFLECT")
        crop = tf.image.random_crop(
            padded, tf.stack([height, width, tf.shape(image)[-1]]))
        return tf.ensure_shape(crop, [height, width, image.shape[-1]])

    return fn


@registry.register("cutout")
@registry.in_key_out_key()
def cutout(size, value=128):
    """One `size` x `size` patch of `value` at a random centre.

    The reference SVHN path applies this after RandAugment with
    pad_size = 32 // 4, i.e. `cutout(16)`; the patch is clipped at borders.

    Args:
      size: patch side in pixels.
      value: fill value.

    Returns:
      The image op.
    """
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")
    return lambda image: augment_ops.fill_patch(image, size, value)
