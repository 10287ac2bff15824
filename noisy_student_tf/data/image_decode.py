"""Decoding odd image files with Pillow, for prediction.

`decode_file` turns any image Pillow reads -- grayscale, palette, RGBA,
CMYK, 16-bit, 1x1, TIFF, WebP -- into the uint8 HxWxC array a model takes
(C = 1 or 3), as TensorFlow's `decode_image` does for the formats it
knows: alpha is dropped (not blended), 16-bit samples keep their high
byte, and only the first frame of an animation is used. EXIF orientation
is ignored, as it is when training and labeling decode images. Listing a
pile is `image_files.list_image_files`.
"""

import numpy as np
import tensorflow as tf
from PIL import Image

# TensorFlow decodes the first six; Pillow adds TIFF.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp",
                    ".tif", ".tiff")
# Pillow's 16-bit (and 32-bit integer) grayscale modes.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageFileError(ValueError):
    """A missing path, an empty pile, or an image that does not decode."""


def _to_array(image, channels):
    if image.mode in _WIDE_GRAY_MODES:
        # 16-bit samples keep their high byte, as TF's uint8 decode does.
        wide = np.asarray(image, dtype=np.int64)
        gray = np.clip(wide >> 8, 0, 255).astype(np.uint8)
        image = Image.fromarray(gray, mode="L")
    target = "L" if channels == 1 else "RGB"
    if image.mode != target:
        # RGBA/LA/PA lose alpha, CMYK/YCbCr/P/1 convert to RGB or L.
        image = image.convert(target)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def decode_file(path, channels=3):
    """Decodes one image file to uint8 [H, W, channels].

    Args:
      path: the image file.
      channels: 1 (grayscale) or 3 (RGB).

    Returns:
      A uint8 numpy array.

    Raises:
      ImageFileError: the file does not decode (not an image, truncated,
        unreadable), naming it.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            with Image.open(handle) as image:
                image.seek(0)  # the first frame of an animation
                image.load()
                return _to_array(image, channels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            tf.errors.OpError) as error:
        message = getattr(error, "message", None) or str(error)
        raise ImageFileError(f"{path}: does not decode as an image "
                             f"({message})") from error
