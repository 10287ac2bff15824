"""The registered `decode` op: encoded image bytes to uint8 pixels.

Decoding is where damaged input shows up. In graph mode (tf.data) a
decoder error cannot be caught and re-worded, so `decode` first asserts a
recognised header and, for PNG, the trailer, failing with a message that
starts "corrupt image" (`errors.is_corrupt_image_error` recognises it and
the decoders' own texts); eagerly it re-raises the decoder's error with
that prefix.

Reference semantics: google-research/noisystudent `preprocessing.py`
(spec §10).
"""

import tensorflow as tf

from noisy_student_tf.data import errors
from noisy_student_tf.data import registry

_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")
_PNG_TRAILER = b"IEND\xaeB`\x82"


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
            f"{errors.CORRUPT_IMAGE}: not a JPEG/PNG/GIF/BMP/WebP file (or "
            "empty); first bytes:",
            # As numbers: raw bytes that are not UTF-8 made TensorFlow's
            # error text undecodable (a UnicodeDecodeError, not this).
            tf.io.decode_raw(tf.strings.substr(padded, 0, 8), tf.uint8)]),
        tf.debugging.Assert(complete, [
            f"{errors.CORRUPT_IMAGE}: truncated PNG (no IEND chunk at the "
            "end)"]),
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
        unrecognised or truncated files, see
        `errors.is_corrupt_image_error`).
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
                    None, None,
                    f"{errors.CORRUPT_IMAGE}: {e.message}") from None
        else:
            with tf.control_dependencies(_check_encoded(image)):
                out = _decode_to(image, channels)
        return tf.ensure_shape(out, [None, None, channels])

    return fn
