"""ImageNet-P-style perturbation sequences, generated on the fly.

The released ImageNet-P / CIFAR-10-P are fixed video files; to evaluate any
dataset we rebuild the sequences from the per-frame definitions in
hendrycks/robustness `ImageNet-P/create_p/make_cifar_p.py` ("cifar") and
`make_imagenet_p.py` ("imagenet"):

* gaussian_noise, shot_noise ("noise" kinds): frame 0 is the clean image,
  every later frame an independent noisy copy; flips are counted against
  frame 0.
* motion_blur, zoom_blur, snow, brightness, translate, rotate, tilt, scale:
  a parameter moves by a fixed step per frame; flips are counted against
  the previous frame.

Deliberate differences, one line each:
* `num_frames` is free (reference: 31, translate 16 / 41, motion blur 21);
  the reference per-frame step is kept and the ramp is centred on the
  reference range, so adjacent frames differ exactly as in the reference.
* geometric ops fill uncovered pixels with 0; ImageNet-P instead cropped
  224 px from a larger 256 px image, context we do not have.
* motion blur uses the NumPy line kernel of `filters.motion_blur`, not
  ImageMagick.
"""

import numpy as np

from noisy_student_tf.robustness import filters

PERTURBATIONS = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)
NOISE_PERTURBATIONS = ("gaussian_noise", "shot_noise")

# Per-frame constants. Ramps are "centre + step * (frame - middle)".
_CONSTANTS = {
    "cifar": {
        "gaussian_noise": {"sigma": 0.02},
        "shot_noise": {"rate": 700},
        # angle = (i - 20) * 9, i = 0..20.
        "motion_blur": {"radius": 6, "sigma": 1.8, "step": 9.0,
                        "centre": -90.0},
        "zoom_blur": {"step": 0.004},
        # angle = i * 4 - 150, i = 0..30.
        "snow": {"loc": 0.05, "scale": 0.3, "zoom": 2, "threshold": 0.5,
                 "radius": 10, "sigma": 2, "blend": 0.85, "step": 4.0,
                 "centre": -90.0},
        "brightness": {"step": 0.015, "centre": 0.0},
        "translate": {"step": 1},
        "rotate": {"step": 1.0, "centre": 0.0},
        "tilt": {"step": 0.75, "centre": 0.0},
        "scale": {"step": 0.02, "centre": 1.0},
    },
    "imagenet": {
        "gaussian_noise": {"sigma": 0.03},
        "shot_noise": {"rate": 300},
        # angle = (i - 30) * 4, i = 0..30.
        "motion_blur": {"radius": 10, "sigma": 3, "step": 4.0,
                        "centre": -60.0},
        "zoom_blur": {"step": 0.004},
        "snow": {"loc": 0.05, "scale": 0.3, "zoom": 3, "threshold": 0.5,
                 "radius": 14, "sigma": 4, "blend": 0.85, "step": 4.0,
                 "centre": -90.0},
        "brightness": {"step": 0.02, "centre": 0.0},
        "translate": {"step": 1},
        "rotate": {"step": 1.0, "centre": 0.0},
        "tilt": {"step": 1.0, "centre": 0.0},
        # scale = (i * 2.5 + 40) / 100, i = 0..30.
        "scale": {"step": 0.025, "centre": 0.775},
    },
}


def is_noise_perturbation(name: str) -> bool:
    """True for the kinds whose flips are counted against frame 0."""
    return name in NOISE_PERTURBATIONS


def _ramp(step: float, centre: float, num_frames: int) -> np.ndarray:
    return centre + step * (np.arange(num_frames) - (num_frames - 1) / 2)


def _noise_frames(x, name, p, num_frames, rng):
    frames = [x]
    for _ in range(num_frames - 1):
        if name == "gaussian_noise":
            z = x + p["sigma"] * rng.standard_normal(x.shape)
        else:
            z = rng.poisson(x * p["rate"]) / p["rate"]
        frames.append(np.clip(z, 0, 1))
    return np.stack(frames)


def _geometric(x, maps, order=1):
    return np.stack([filters.warp(x, np.linalg.inv(m), order=order)
                     for m in maps])


def _tilt_matrix(h, w, degrees):
    # make_*_p.py: project the image plane rotated by phi = theta about
    # the x and y axes, viewed from distance f.
    phi = theta = np.deg2rad(degrees)
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0],
                   [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])
    ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0],
                   [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1


def _frames(x, name, p, num_frames, rng):
    """Float [F, H, W, C] frames in [0, 1] for one [H, W, C] image."""
    h, w, _ = x.shape
    if name in NOISE_PERTURBATIONS:
        return _noise_frames(x, name, p, num_frames, rng)
    if name == "motion_blur":
        angles = _ramp(p["step"], p["centre"], num_frames)
        batch = np.repeat(x[None], num_frames, axis=0)
        return filters.motion_blur(batch, p["radius"], p["sigma"], angles)
    if name == "zoom_blur":
        # Running mean of ever stronger zooms, starting from the clean image.
        zooms = _geometric(x, [filters.centred_affine(h, w, scale=1 + p[
            "step"] * i) for i in range(num_frames)])
        return np.cumsum(zooms, axis=0) / np.arange(1, num_frames + 1)[
            :, None, None, None]
    if name == "snow":
        # One snow layer per sequence; only the fall direction changes.
        flakes = filters.snow_flakes([rng], h, w, p["loc"], p["scale"],
                                     p["zoom"], p["threshold"])
        angles = _ramp(p["step"], p["centre"], num_frames)
        flakes = filters.motion_blur(np.repeat(flakes, num_frames, axis=0),
                                     p["radius"], p["sigma"], angles)
        return filters.add_snow(np.repeat(x[None], num_frames, axis=0),
                                flakes, p["blend"])
    if name == "brightness":
        amounts = _ramp(p["step"], p["centre"], num_frames)
        return filters.brighten(x[None], amounts[:, None, None, None])
    if name == "translate":
        shifts = np.arange(num_frames) - num_frames // 2
        maps = [filters.centred_affine(h, w, translate=(s, 0))
                for s in shifts]
        return _geometric(x, maps, order=0)
    if name == "rotate":
        angles = _ramp(p["step"], p["centre"], num_frames)
        return _geometric(x, [filters.centred_affine(h, w, angle=a)
                              for a in angles])
    if name == "tilt":
        degrees = _ramp(p["step"], p["centre"], num_frames)
        return _geometric(x, [_tilt_matrix(h, w, d) for d in degrees])
    scales = _ramp(p["step"], p["centre"], num_frames)
    return _geometric(x, [filters.centred_affine(h, w, scale=s)
                          for s in scales])


def make_sequence(image: np.ndarray, name: str, num_frames: int = 10,
                  seed=0, constants: str = "cifar") -> np.ndarray:
    """Builds one perturbation sequence for one image.

    Args:
        image: uint8 [H, W, C] image, C in {1, 3}, H and W >= 16.
        name: one of PERTURBATIONS.
        num_frames: frames in the sequence, >= 2.
        seed: non-negative int or sequence of ints, as accepted by
            `np.random.default_rng` (noise draws and the snow layer).
        constants: "cifar" (make_cifar_p.py) or "imagenet"
            (make_imagenet_p.py) per-frame constants.

    Returns:
        uint8 [num_frames, H, W, C] frames.

    Raises:
        ValueError: on an unknown name or constants, a bad image or fewer
            than 2 frames.
    """
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; valid: "
                         f"{', '.join(PERTURBATIONS)}")
    if constants not in _CONSTANTS:
        raise ValueError(f"constants must be one of {tuple(_CONSTANTS)}, "
                         f"got {constants!r}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    image = np.asarray(image)
    if (image.dtype != np.uint8 or image.ndim != 3
            or image.shape[-1] not in (1, 3) or min(image.shape[:2]) < 16):
        raise ValueError("image must be uint8 [H, W, C], C in {1, 3}, "
                         f"H, W >= 16; got {image.dtype} {image.shape}")
    rng = np.random.default_rng(seed)
    x = image.astype(np.float32) / 255.0
    frames = _frames(x, name, _CONSTANTS[constants][name], num_frames, rng)
    frames = np.clip(frames, 0, 1) * 255
    # The reference truncates its float frames (np.uint8, ToPILImage) and
    # rounds the ones PIL / OpenCV / ImageMagick resample.
    if name not in NOISE_PERTURBATIONS + ("brightness", "snow", "zoom_blur"):
        frames = np.round(frames)
    return frames.astype(np.uint8)


def make_sequences(images: np.ndarray, name: str, num_frames: int = 10,
                   seed: int = 0, constants: str = "cifar",
                   start_index: int = 0) -> np.ndarray:
    """`make_sequence` over a batch; image i uses seed (seed, start + i).

    Args:
        images: uint8 [N, H, W, C] batch.
        name: one of PERTURBATIONS.
        num_frames: frames per sequence.
        seed: non-negative base seed.
        constants: "cifar" or "imagenet".
        start_index: position of images[0] in the whole dataset.

    Returns:
        uint8 [N, num_frames, H, W, C] sequences.
    """
    return np.stack([
        make_sequence(img, name, num_frames,
                      seed=[seed, start_index + i],
                      constants=constants)
        for i, img in enumerate(images)])
