"""The 15 ImageNet-C corruptions at severities 1-5, for any image batch.

Re-implements the corruption functions of hendrycks/robustness
(`ImageNet-C/create_c/make_imagenet_c.py`, `make_cifar_c.py`) on NumPy,
SciPy, TensorFlow and Pillow. Severity constants live in
`corruption_tables.py` ("imagenet" and "cifar" kept apart).

Not the PyPI `imagecorruptions` wheel as the implementation: it only has
the ImageNet constants, so it cannot reproduce CIFAR-10-C. Its maintained
fork `imagecorruptions-imaug` (the `robustness` extra) is the oracle of
tests/robustness/test_corruption_oracle.py and the source of the six frost
photographs (`frost.py`). ImageNet constants: defocus, zoom blur,
brightness, contrast, pixelate and JPEG equal it within uint8 truncation
(at most 1 level; mean 0.00-0.01 levels, scripts/corruption_oracle.py);
the random kinds (noises, glass / motion blur, snow, frost, fog) equal it
in distribution; motion blur equals its kernel given the angle.

Deliberate differences from the reference, one line each:
* frost: frost1-5 at their own size as make_*_c.py; the package also
  draws frost6 and upsamples 1.1x (mean change 1.6 levels apart, noise).
* frost without imagecorruptions-imaug: six synthetic textures stand in
  (`filters.frost_textures`), with a warning; not comparable.
* motion_blur / snow: a NumPy line kernel replaces Wand/ImageMagick
  `MotionBlurImage`: within 1 level (mean < 0.05) of ImageMagick 6.9.
* pixelate: BOX upsampling as make_imagenet_c.py; the package uses
  NEAREST (0 levels apart on the test images).
* randomness comes from one NumPy generator per image seeded by
  (seed, image index), so outputs are reproducible and independent of
  batching, but not bit-identical to the released unseeded data.
* 1-channel images are corrupted directly (every op is channel-generic);
  snow and frost use the image itself / the layer's luma as grey.
"""

import io
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from noisy_student_tf.robustness import corruption_tables
from noisy_student_tf.robustness import filters
from noisy_student_tf.robustness import frost as frost_lib

CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)
CONSTANTS = tuple(corruption_tables.TABLES)

# Each op maps a uint8 [N, H, W, C] batch, the severity's constants and one
# generator per image to an array on the 0-255 scale.
_Op = Callable[[np.ndarray, object, Sequence[np.random.Generator]],
               np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def _gaussian_noise(x, c, rngs):
    noise = np.stack([r.normal(size=x.shape[1:]) for r in rngs])
    return np.clip(_unit(x) + c * noise, 0, 1) * 255


def _shot_noise(x, c, rngs):
    x = _unit(x).astype(np.float64)
    return np.clip(
        np.stack([r.poisson(xi * c) for r, xi in zip(rngs, x)]) / c,
        0, 1) * 255


def _impulse_noise(x, c, rngs):
    # skimage.util.random_noise(mode='s&p', salt_vs_pepper=0.5), per value.
    out = _unit(x)
    for xi, r in zip(out, rngs):
        flipped = r.random(xi.shape) <= c
        salted = r.random(xi.shape) <= 0.5
        xi[flipped & salted] = 1.0
        xi[flipped & ~salted] = 0.0
    return out * 255


def _defocus_blur(x, c, rngs):
    del rngs
    return np.clip(filters.filter2d(_unit(x), filters.disk_kernel(*c)),
                   0, 1) * 255


def _glass_blur(x, c, rngs):
    sigma, delta, iterations = c
    n, h, w, _ = x.shape
    x = (filters.gaussian_hw(_unit(x), sigma) * 255).astype(np.uint8)
    positions = [(i, j) for i in range(h - delta, delta, -1)
                 for j in range(w - delta, delta, -1)]
    # [N, iterations, positions, (dx, dy)], drawn per image.
    offsets = np.stack([
        r.integers(-delta, delta, size=(iterations, len(positions), 2))
        for r in rngs])
    batch = np.arange(n)
    for it in range(iterations):
        for p, (i, j) in enumerate(positions):
            dx, dy = offsets[:, it, p, 0], offsets[:, it, p, 1]
            # The reference's tuple "swap" of two NumPy views only copies
            # x[h', w'] into x[h, w]; we keep that to match the data.
            x[batch, i, j] = x[batch, i + dy, j + dx]
    return np.clip(filters.gaussian_hw(_unit(x), sigma), 0, 1) * 255


def _motion_blur(x, c, rngs):
    angles = np.array([r.uniform(-45, 45) for r in rngs])
    return filters.motion_blur(x.astype(np.float32), c[0], c[1], angles)


def _zoom_blur(x, c, rngs):
    del rngs
    x = _unit(x)
    out = np.zeros_like(x)
    for zoom in c:
        out += filters.clipped_zoom(x, zoom)
    return np.clip((x + out) / (len(c) + 1), 0, 1) * 255


def _snow(x, c, rngs):
    loc, scale, zoom, threshold, radius, sigma, blend = c
    _, h, w, _ = x.shape
    flakes = filters.snow_flakes(rngs, h, w, loc, scale, zoom, threshold)
    angles = np.array([r.uniform(-135, -45) for r in rngs])
    flakes = filters.motion_blur(flakes, radius, sigma, angles)
    return filters.add_snow(_unit(x), flakes, blend) * 255


def _frost(x, c, rngs, constants, seed, source):
    _, h, w, channels = x.shape
    frost = frost_lib.layers(rngs, h, w, constants, seed, source)
    if channels == 1:
        frost = filters.luminance(frost)
    return np.clip(c[0] * x.astype(np.float32) + c[1] * frost, 0, 255)


def _fog(x, c, rngs):
    weight, decay = c
    _, h, w, _ = x.shape
    size = filters.next_power_of_two(max(h, w))
    out = []
    for xi, r in zip(_unit(x), rngs):
        max_val = xi.max()
        xi = xi + weight * filters.plasma_fractal(size, decay, r)[:h, :w, None]
        out.append(np.clip(xi * max_val / (max_val + weight), 0, 1) * 255)
    return np.stack(out)


def _brightness(x, c, rngs):
    del rngs
    return filters.brighten(_unit(x), c) * 255


def _contrast(x, c, rngs):
    del rngs
    x = _unit(x)
    means = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def _elastic_transform(x, c, rngs):
    alpha, sigma, jitter = c
    _, h, w, channels = x.shape
    centre = np.float32((h, w)) // 2
    square = min(h, w) // 3
    src = np.float32([centre + square,
                      [centre[0] + square, centre[1] - square],
                      centre - square])
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = []
    for xi, r in zip(_unit(x), rngs):
        dst = src + r.uniform(-jitter, jitter, size=src.shape)
        forward = filters.affine_from_points(src, dst)
        # cv2.warpAffine(..., borderMode=BORDER_REFLECT_101), bilinear.
        xi = filters.warp(xi, np.linalg.inv(forward), order=1, mode="mirror")
        dx, dy = (ndimage.gaussian_filter(
            r.uniform(-1, 1, size=(h, w)), sigma, mode="reflect",
            truncate=3) * alpha for _ in range(2))
        warped = [ndimage.map_coordinates(
            xi[..., ch], [rows + dy, cols + dx], order=1, mode="reflect")
            for ch in range(channels)]
        out.append(np.clip(np.stack(warped, -1), 0, 1) * 255)
    return np.stack(out)


def _to_pil(xi: np.ndarray) -> Image.Image:
    return Image.fromarray(xi[..., 0] if xi.shape[-1] == 1 else xi)


def _from_pil(img: Image.Image, channels: int) -> np.ndarray:
    arr = np.asarray(img)
    return arr[..., None] if channels == 1 else arr


def _pixelate(x, c, rngs):
    del rngs
    _, h, w, channels = x.shape
    out = []
    for xi in x:
        img = _to_pil(xi).resize((int(w * c), int(h * c)), Image.BOX)
        out.append(_from_pil(img.resize((w, h), Image.BOX), channels))
    return np.stack(out)


def _jpeg_compression(x, c, rngs):
    del rngs
    out = []
    for xi in x:
        buf = io.BytesIO()
        _to_pil(xi).save(buf, "JPEG", quality=c)
        buf.seek(0)
        out.append(_from_pil(Image.open(buf), x.shape[-1]))
    return np.stack(out)


_OPS: dict[str, _Op] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}


def validate(name: str, severity: int, constants: str) -> None:
    """Raises ValueError naming the valid choices for a bad argument.

    Args:
        name: corruption name.
        severity: 1..5.
        constants: "imagenet" or "cifar".

    Raises:
        ValueError: if any argument is not a valid choice.
    """
    if name not in CORRUPTIONS:
        raise ValueError(
            f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    if (isinstance(severity, bool)
            or not isinstance(severity, (int, np.integer))
            or severity not in SEVERITIES):
        raise ValueError(
            f"severity must be one of {SEVERITIES}, got {severity!r}")
    if constants not in CONSTANTS:
        raise ValueError(
            f"constants must be one of {CONSTANTS}, got {constants!r}")


def corrupt(images: np.ndarray, name: str, severity: int,
            constants: str = "cifar", seed: int = 0,
            start_index: int = 0,
            frost_source: str = "auto") -> np.ndarray:
    """Applies one ImageNet-C corruption to a batch of images.

    Args:
        images: uint8 [N, H, W, C] batch, C in {1, 3}, H and W >= 16.
        name: one of CORRUPTIONS.
        severity: 1..5.
        constants: "cifar" (make_cifar_c.py, for ~32 px images) or
            "imagenet" (make_imagenet_c.py, for ~224 px images).
        seed: non-negative seed; equal seeds give equal outputs.
        start_index: position of images[0] in the whole dataset. Image i
            draws from a generator seeded by (seed, start_index + i), so a
            dataset corrupted in batches equals one corrupted at once.
        frost_source: "auto" (the ImageNet-C photographs when
            imagecorruptions-imaug is installed, else synthetic textures
            with a warning), "photos" or "synthetic"; see `frost.py`.

    Returns:
        uint8 array of the input's shape. Like the reference
        (`np.uint8(corruption(img))`), values are truncated, not rounded.

    Raises:
        ValueError: on a bad name, severity, constants, image batch or
            frost source.
    """
    validate(name, severity, constants)
    if frost_source not in frost_lib.SOURCES:
        raise ValueError(f"frost_source must be one of {frost_lib.SOURCES},"
                         f" got {frost_source!r}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            "images must be a uint8 [N, H, W, C] batch, got "
            f"{images.dtype} {images.shape}")
    if images.shape[-1] not in (1, 3) or min(images.shape[1:3]) < 16:
        raise ValueError(
            f"need C in {{1, 3}} and H, W >= 16, got shape {images.shape}")
    if len(images) == 0:
        return images.copy()
    params = corruption_tables.TABLES[constants][name][int(severity) - 1]
    rngs = [np.random.default_rng([seed, start_index + i])
            for i in range(images.shape[0])]
    if name == "frost":
        out = _frost(images, params, rngs, constants, seed, frost_source)
    else:
        out = _OPS[name](images, params, rngs)
    return np.clip(out, 0, 255).astype(np.uint8)
