"""Registered image preprocessing ops (decode, crops, resize, normalise).

Each op is a factory registered under its pp-string name; the returned
function maps a data dict to a data dict. Unless an op says otherwise it
reads and writes `data["image"]` (pass `key=` / `outkey=` to change that)
and leaves every other entry untouched. Images are uint8 `[H, W, C]` with C
in {1, 3}; H and W may be unknown (decoded images). Every op works eagerly,
inside `tf.function` and inside `tf.data.Dataset.map`.

Reference semantics: google-research/noisystudent `preprocessing.py`
(spec §10). RandAugment lives in `randaugment.py`.
"""

import tensorflow as tf

from noisy_student_tf.data import augment_ops
from noisy_student_tf.data import registry

CORRUPT_IMAGE = "corrupt image"

# Mean and std on the 0..1 scale; `normalize` multiplies by 255.
NORMALIZE_PRESETS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}

# Messages of TF's image decoders for damaged data. Inside tf.data a
# decoder error cannot be caught and re-worded, so data-level corruption
# the header checks miss surfaces with one of these texts.
_DECODER_ERRORS = (
    CORRUPT_IMAGE, "Invalid PNG data", "Invalid JPEG data",
    "jpeg::Uncompress failed", "Unknown image file format",
    "Failed to initialize decoder", "Invalid GIF data",
)
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")
_PNG_TRAILER = b"IEND\xaeB`\x82"
_RESIZE_METHODS = ("bicubic_tf1", "bilinear", "bicubic", "nearest", "area",
                   "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def is_corrupt_image_error(error):
    """Whether an exception (or message) reports an undecodable image.

    Args:
      error: a `tf.errors.OpError` or a message string.

    Returns:
      True for `decode`'s own "corrupt image" errors and for TF decoder
      errors about damaged data.
    """
    message = getattr(error, "message", None) or str(error)
    return any(text in message for text in _DECODER_ERRORS)


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


def _check_encoded(data):
    """Asserts a recognised header (and PNG trailer) before decoding."""
    # Padding keeps substr in range for files shorter than a header.
    padded = tf.strings.join([data, b"\0" * 12])
    head = [tf.strings.substr(padded, 0, len(sig)) == sig
            for sig in _SIGNATURES]
    webp = ((tf.strings.substr(padded, 0, 4) == b"RIFF")
            & (tf.strings.substr(padded, 8, 4) == b"WEBP"))
    known = tf.reduce_any(tf.stack(head + [webp]))
    is_png = head[1]
    tail = tf.strings.substr(
        padded, tf.maximum(tf.strings.length(data) - 8, 0), 8)
    # A PNG always ends with its IEND chunk; a missing one means the file
    # was truncated, which is the common kind of damage.
    complete = tf.logical_or(tf.logical_not(is_png), tail == _PNG_TRAILER)
    return [
        tf.debugging.Assert(known, [
            f"{CORRUPT_IMAGE}: not a JPEG/PNG/GIF/BMP/WebP file (or "
            "empty); first bytes:", tf.strings.substr(padded, 0, 8)]),
        tf.debugging.Assert(complete, [
            f"{CORRUPT_IMAGE}: truncated PNG (no IEND chunk at the end)"]),
    ]


def _decode_to(data, channels):
    """Decodes any JPEG/PNG/GIF/BMP/WebP to `channels` (1 or 3) uint8.

    TF's decoders give 3 channels for every input (grayscale, gray+alpha,
    RGBA, CMYK JPEG, 16-bit PNG), but refuse 1 channel for CMYK JPEG, BMP,
    GIF and WebP. One channel is therefore the file's own gray channel
    when it has one, else the ITU-R 601 luma of its RGB (PIL's "L").
    """
    if channels == 3:
        return tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.io.decode_image(data, channels=0, expand_animations=False)

    def luma():
        rgb = tf.cast(image[..., :3], tf.float32)
        gray = tf.reduce_sum(rgb * [0.299, 0.587, 0.114], -1, keepdims=True)
        return tf.cast(tf.clip_by_value(tf.round(gray), 0, 255), tf.uint8)

    return tf.cond(tf.shape(image)[-1] >= 3, luma, lambda: image[..., :1])


@registry.register("decode")
@registry.in_key_out_key()
def decode(channels=3):
    """Decodes PNG/JPEG/GIF/BMP/WebP bytes to uint8 (uint8 passes through).

    Grayscale, gray+alpha, RGBA, CMYK and 16-bit files all come out with
    `channels` channels (alpha dropped, 16 bits scaled to 8).

    Args:
      channels: 1 or 3, the decoded channel count.

    Returns:
      The image op.

    Raises:
      ValueError: bad `channels`.
      tf.errors.InvalidArgumentError: at run time for a corrupt image, with
        "corrupt image" in the message (always in eager mode; in graphs for
        unrecognised or truncated files, see `is_corrupt_image_error`).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")

    def fn(image):
        image = tf.convert_to_tensor(image)
        if image.dtype == tf.uint8:
            return image
        if image.dtype != tf.string:
            raise ValueError(
                f"decode expects encoded bytes or uint8, got {image.dtype}")
        if tf.executing_eagerly():
            try:
                out = _decode_to(image, channels)
            except tf.errors.InvalidArgumentError as e:
                raise tf.errors.InvalidArgumentError(
                    None, None, f"{CORRUPT_IMAGE}: {e.message}") from None
        else:
            with tf.control_dependencies(_check_encoded(image)):
                out = _decode_to(image, channels)
        return tf.ensure_shape(out, [None, None, channels])

    return fn


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


@registry.register("normalize")
@registry.in_key_out_key()
def normalize(name_or_mean, std=None):
    """To float32 `(x - mean) / std`, mean and std on the 0..255 scale.

    Args:
      name_or_mean: a preset name ("imagenet", "svhn", "fashion_mnist";
        given on the 0..1 scale and multiplied by 255), or the mean as a
        number or per-channel tuple on the 0..255 scale.
      std: with a numeric mean, the std on the 0..255 scale.

    Returns:
      The image op. A 1-value mean/std broadcasts over 3 channels; a
      3-value one on a 1-channel image is an error.

    Raises:
      ValueError: unknown preset, std missing or given with a preset.
    """
    if isinstance(name_or_mean, str):
        if name_or_mean not in NORMALIZE_PRESETS:
            raise ValueError(
                f"Unknown normalize preset {name_or_mean!r}; known: "
                f"{sorted(NORMALIZE_PRESETS)}")
        if std is not None:
            raise ValueError("normalize: std is implied by a preset name")
        mean, std = (tuple(v * 255.0 for v in values)
                     for values in NORMALIZE_PRESETS[name_or_mean])
    else:
        if std is None:
            raise ValueError("normalize: a numeric mean needs a std")
        mean = name_or_mean
    mean = tuple(mean) if isinstance(mean, (tuple, list)) else (mean,)
    std = tuple(std) if isinstance(std, (tuple, list)) else (std,)

    def fn(image):
        channels = image.shape[-1]
        if channels is not None and max(len(mean), len(std)) not in (
                1, channels):
            raise ValueError(
                f"normalize: {len(mean)}-value mean / {len(std)}-value std "
                f"for a {channels}-channel image")
        image = tf.cast(image, tf.float32)
        if len(mean) == len(std) == 1:
            return (image - mean[0]) / std[0]
        # Explicit broadcast: implicit broadcasting over the channel axis
        # is markedly slower in TF's CPU kernels.
        shape = tf.shape(image)
        return ((image - tf.broadcast_to(mean, shape))
                / tf.broadcast_to(std, shape))

    return fn


@registry.register("value_range")
@registry.in_key_out_key()
def value_range(lo, hi, in_min=0, in_max=255):
    """Maps `[in_min, in_max]` linearly to float32 `[lo, hi]`.

    Args:
      lo: output value of `in_min` (MLP-Mixer uses -1).
      hi: output value of `in_max` (MLP-Mixer uses 1).
      in_min: input value mapped to lo.
      in_max: input value mapped to hi.

    Returns:
      The image op.
    """
    scale = (hi - lo) / (in_max - in_min)
    return lambda image: (tf.cast(image, tf.float32) - in_min) * scale + lo


@registry.register("to_rgb")
@registry.in_key_out_key()
def to_rgb():
    """Tiles a 1-channel image to 3 channels; 3 channels pass through."""

    def fn(image):
        channels = image.shape[-1]
        if channels == 3:
            return image
        if channels == 1:
            return tf.tile(image, [1, 1, 3])
        out = tf.cond(tf.shape(image)[-1] == 1,
                      lambda: tf.tile(image, [1, 1, 3]), lambda: image)
        return tf.ensure_shape(out, [None, None, 3])

    return fn


@registry.register("onehot")
@registry.in_key_out_key(default_key="label", default_outkey="labels")
def onehot(num_classes, on_value=1.0, off_value=0.0):
    """One-hot float32 targets from an integer label ("label" -> "labels").

    Args:
      num_classes: depth of the one-hot vector.
      on_value: value at the label's index.
      off_value: value elsewhere.

    Returns:
      The op.
    """
    return lambda label: tf.one_hot(
        label, num_classes, on_value, off_value, dtype=tf.float32)


@registry.register("keep")
def keep(*keys):
    """Keeps only `keys` of the data dict (e.g. `keep("image", "label")`).

    Args:
      *keys: entries to keep; all must be present.

    Returns:
      The op.
    """
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keep needs one or more key names, got {keys!r}")

    def fn(data):
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(f"keep: {missing} not in data keys {sorted(data)}")
        return {k: data[k] for k in keys}

    return fn
