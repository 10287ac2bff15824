"""Image files for prediction: listing piles and decoding odd images.

`iter_image_files` walks a directory at any depth (image extensions,
case-insensitive; everything else is ignored) or expands globs, lazily and
in sorted order, so a pile of millions of files is never held as a list.
`decode_file` turns any image Pillow reads -- grayscale, palette, RGBA,
CMYK, 16-bit, 1x1 -- into the uint8 HxWxC array a model takes (C = 1 or
3), as TensorFlow's `decode_image` does for the formats it knows: alpha is
dropped (not blended), 16-bit samples keep their high byte, and only the
first frame of an animation is used. EXIF orientation is ignored, as it is
when training and labeling decode images.
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

# TensorFlow decodes the first five; Pillow adds TIFF and WebP.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif",
                    ".tiff", ".webp")
# Pillow's 16-bit (and 32-bit integer) grayscale modes.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageFileError(ValueError):
    """A missing path, an empty pile, or an image that does not decode."""


def is_image_file(path):
    """True for a name with an image extension (any case)."""
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _walk(root):
    """Image files under `root` at any depth, sorted per folder."""
    for directory, subdirs, files in tf.io.gfile.walk(root):
        subdirs.sort()  # in place: the walk descends in this order
        for name in sorted(files):
            if is_image_file(name):
                yield os.path.join(directory, name)


def iter_image_files(specs):
    """Yields image file paths for directories and globs, lazily.

    Args:
      specs: a string or a list of strings, each a directory (walked
        recursively, image extensions only) or a glob (every match that is
        a file, whatever its extension: an undecodable one is skipped by
        the caller).

    Yields:
      Paths, in sorted order within each spec.

    Raises:
      ImageFileError: a spec that matches nothing (a missing path, an
        empty glob, a directory without images).
    """
    if isinstance(specs, str):
        specs = [specs]
    for spec in specs:
        found = False
        if tf.io.gfile.isdir(spec):
            paths = _walk(spec)
            empty = (f"no images ({', '.join(IMAGE_EXTENSIONS)}) under "
                     f"{spec!r}")
        else:
            paths = (path for path in sorted(tf.io.gfile.glob(spec))
                     if not tf.io.gfile.isdir(path))
            empty = f"no files match {spec!r}"
        for path in paths:
            found = True
            yield path
        if not found:
            raise ImageFileError(empty)


def count_image_files(specs):
    """How many paths `iter_image_files(specs)` yields (for progress)."""
    return sum(1 for _ in iter_image_files(specs))


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
