"""Frost layers: the ImageNet-C frost photographs, or synthetic stand-ins.

hendrycks/robustness `make_imagenet_c.py` / `make_cifar_c.py` blend every
image with a random crop of a frost photograph. The six photographs ship
inside the PyPI wheel of `imagecorruptions-imaug` (the `robustness` extra);
they are read from the installed package, never copied into this
repository, and without the package decoded with Pillow alone (the
package's own module, which imports OpenCV and numba, is not imported).

Reference semantics kept here:
* `idx = np.random.randint(5)`: only frost1..frost5 are ever drawn.
* ImageNet constants crop the photograph at its own resolution;
  CIFAR constants first shrink it with `cv2.resize(fx=0.2, fy=0.2)`
  (bilinear, which at exactly 1/5 samples pixel 5i + 2: no blending).
* `x_start = np.random.randint(0, H - h)`: the last offset is never drawn.
Images larger than a photograph (the reference would crash) use the
photograph upscaled (bicubic) by 1.1x the factor that makes it cover the
image, as `imagecorruptions` does.

Without the package a bank of six deterministic synthetic textures
(`filters.frost_textures`) stands in, with a one-line warning; frost
numbers are then not comparable to ImageNet-C (see README, Robustness).
"""

import functools
import importlib.metadata
import importlib.util
import os
import warnings
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from noisy_student_tf.robustness import filters

DISTRIBUTION = "imagecorruptions-imaug"
_MODULE = "imagecorruptions"  # import name of the wheel's package
PHOTO_FILES = ("frost1.png", "frost2.png", "frost3.png",
               "frost4.jpg", "frost5.jpg", "frost6.jpg")
NUM_DRAWN = 5  # randint(5) in the reference: frost6.jpg is never used
CIFAR_SCALE = 5  # make_cifar_c.py: cv2.resize(frost, fx=0.2, fy=0.2)
SOURCES = ("auto", "photos", "synthetic")

# Like the photographs: a small bank of textures, 1.5x the image size,
# from which every image takes a random crop.
_BANK_SIZE = 6
_BANK_STREAM = 0xF057  # spawn key: the bank's stream differs from images'


def photo_dir() -> Optional[str]:
    """The installed package's frost folder, or None if not installed.

    Located with `importlib.util.find_spec`, which does not execute the
    package (its import pulls in OpenCV, numba and scikit-image).
    """
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = os.path.join(location, "frost")
        if all(os.path.isfile(os.path.join(folder, f))
               for f in PHOTO_FILES):
            return folder
    return None


def _package_version() -> str:
    for dist in (DISTRIBUTION, _MODULE):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return _MODULE


@functools.lru_cache(maxsize=1)
def load_photos() -> Optional[tuple]:
    """The six frost photographs as uint8 RGB arrays, or None.

    Returns:
        A tuple of six [H, W, 3] uint8 arrays (the alpha channel of the
        PNGs dropped, as `cv2.imread` does), or None when the package is
        not installed.

    Raises:
        ValueError: if an installed photograph cannot be decoded.
    """
    folder = photo_dir()
    if folder is None:
        return None
    photos = []
    for name in PHOTO_FILES:
        path = os.path.join(folder, name)
        try:
            with Image.open(path) as img:
                photos.append(np.asarray(img.convert("RGB")))
        except OSError as e:
            raise ValueError(f"corrupt frost photograph {path}: {e}") from e
    return tuple(photos)


def describe(source: str = "auto") -> str:
    """Which frost a `corrupt(..., frost_source=source)` call uses.

    Args:
        source: "auto" (photographs when installed), "photos" or
            "synthetic".

    Returns:
        e.g. "photographs (imagecorruptions-imaug 1.1.5)" or
        "synthetic textures".
    """
    if source != "synthetic" and load_photos() is not None:
        return f"photographs ({_package_version()})"
    return "synthetic textures"


_warned = False


def _warn_synthetic_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"frost: {DISTRIBUTION} is not installed (the `robustness` "
            "extra); using synthetic frost textures, not comparable to "
            "ImageNet-C", RuntimeWarning,
            stacklevel=3)


def _cover(photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """The photograph, upscaled if needed so a crop of h x w fits."""
    ph, pw = photo.shape[:2]
    if ph > h and pw > w:
        return photo
    scale = 1.1 * max((h + 1) / ph, (w + 1) / pw)
    size = (int(np.ceil(pw * scale)), int(np.ceil(ph * scale)))
    return np.asarray(Image.fromarray(photo).resize(size, Image.BICUBIC))


@functools.lru_cache(maxsize=4)
def _photo_bank(constants: str, h: int, w: int) -> tuple:
    photos = load_photos()[:NUM_DRAWN]
    if constants == "cifar":
        photos = [p[2::CIFAR_SCALE, 2::CIFAR_SCALE][
            :int(round(p.shape[0] / CIFAR_SCALE)),
            :int(round(p.shape[1] / CIFAR_SCALE))] for p in photos]
    return tuple(_cover(p, h, w) for p in photos)  # uint8: 4x less memory


@functools.lru_cache(maxsize=4)
def _synthetic_bank(seed: int, h: int, w: int) -> tuple:
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_BANK_STREAM,)))
    bank = filters.frost_textures(rng, _BANK_SIZE, h + h // 2, w + w // 2,
                                  max(3.0, min(h, w) / 12))
    return tuple(bank)


def layers(rngs: Sequence[np.random.Generator], h: int, w: int,
           constants: str, seed: int, source: str = "auto") -> np.ndarray:
    """One random frost crop per generator, on the 0-255 scale.

    Args:
        rngs: one NumPy generator per image (photo index, then offsets).
        h: image height.
        w: image width.
        constants: "imagenet" (native photographs) or "cifar" (1/5 size).
        seed: seed of the synthetic bank (unused with photographs).
        source: "auto", "photos" or "synthetic".

    Returns:
        float32 [N, h, w, 3] frost layers.

    Raises:
        ValueError: on a bad source, or "photos" without the package.
    """
    if source not in SOURCES:
        raise ValueError(f"frost source must be one of {SOURCES}, "
                         f"got {source!r}")
    photos = None if source == "synthetic" else load_photos()
    if photos is None and source == "photos":
        raise ValueError(f"frost_source='photos' needs {DISTRIBUTION} "
                         "(pip install -e '.[robustness]')")
    if photos is not None:
        bank = _photo_bank(constants, h, w)
    else:
        if source == "auto":
            _warn_synthetic_once()
        bank = _synthetic_bank(seed, h, w)
    return np.stack([_crop(bank, r, h, w, photos is not None)
                     for r in rngs]).astype(np.float32)


def _crop(bank, r, h, w, reference_order):
    if reference_order:  # idx, then randint(0, H - h) for each offset
        tex = bank[r.integers(len(bank))]
        top = r.integers(0, tex.shape[0] - h)
        left = r.integers(0, tex.shape[1] - w)
    else:  # the synthetic bank's original draws, so its outputs stay
        top = r.integers(0, bank[0].shape[0] - h + 1)
        left = r.integers(0, bank[0].shape[1] - w + 1)
        tex = bank[r.integers(len(bank))]
    return tex[top:top + h, left:left + w]
