"""Compares our corruptions with the `imagecorruptions-imaug` package.

The PyPI package (the `robustness` extra) implements the ImageNet-C
functions of hendrycks/robustness `make_imagenet_c.py` with the ImageNet
constants only. Each corruption is compared on a batch of images at each
severity:

* deterministic kinds (`EXACT`): pixel-wise mean absolute difference
  between our output and the package's (0 up to uint8 truncation);
* random kinds (`STATISTICAL`): the package draws from NumPy's global
  generator, so outputs are compared in distribution: per image, the mean
  absolute change from the clean image and the standard deviation of the
  change; the mean paired difference is compared with its standard
  error.

For frost the package's `randint(6)` photograph draw is made `randint(5)`
as in make_imagenet_c.py (`reference_corrupt`); it still upsamples the
photographs 1.1x (bicubic), which the reference does not.

elastic_transform is not compared: the package rewrote it (its own
size-independent constants), so hendrycks' function stays its reference
(see tests/robustness/test_corruption_oracle.py).
"""

import importlib.util
from typing import Iterable, Optional

import numpy as np

from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.robustness import corruptions
from noisy_student_tf.robustness import frost as frost_lib

EXACT = ("defocus_blur", "zoom_blur", "brightness", "contrast",
         "pixelate", "jpeg_compression")
STATISTICAL = ("gaussian_noise", "shot_noise", "impulse_noise",
               "glass_blur", "motion_blur", "snow", "frost", "fog")
NOT_COMPARED = ("elastic_transform",)
# Frost's change depends mostly on which photograph is drawn (their means
# range 124-207), so its comparison repeats the images to >= this many.
FROST_DRAWS = 200
# Kinds whose package function takes an explicit seed (they would
# otherwise draw from an unseeded generator).
_SEEDED = ("glass_blur", "impulse_noise")


def available() -> bool:
    """True if the `imagecorruptions` package can be imported."""
    return importlib.util.find_spec("imagecorruptions") is not None


def reference_corrupt(images: np.ndarray, name: str, severity: int,
                      seed: int = 0) -> np.ndarray:
    """The package's corruption of each image, reproducibly seeded.

    Args:
        images: uint8 [N, H, W, 3] batch, H and W >= 32.
        name: a corruption name.
        severity: 1..5.
        seed: seeds NumPy's global generator (and the package's explicit
            seeds), so equal seeds give equal outputs.

    Returns:
        uint8 [N, H, W, 3], as `imagecorruptions.corrupt` returns.

    Raises:
        ImportError: if the package is not installed.
    """
    import imagecorruptions  # pylint: disable=g-import-not-at-top
    np.random.seed(seed)
    randint = np.random.randint
    if name == "frost":
        np.random.randint = _five_photos(randint)
    try:
        out = []
        for i, image in enumerate(images):
            kwargs = {"seed": seed * 100003 + i} if name in _SEEDED else {}
            out.append(imagecorruptions.corrupt(image, severity, name,
                                                **kwargs))
    finally:
        np.random.randint = randint
    return np.stack(out)


def _five_photos(randint):
    """np.random.randint with the package's randint(6) made randint(5).

    make_imagenet_c.py draws the frost photograph with randint(5) (frost6
    is never used); the package draws from all six. Patching its one
    randint(6) call makes it the reference's draw; crops are unaffected.
    """
    def patched(*args, **kwargs):
        if args == (6,) and not kwargs:
            return randint(frost_lib.NUM_DRAWN)
        return randint(*args, **kwargs)
    return patched


def change_stats(corrupted: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per image: mean |change| and standard deviation of the change.

    Args:
        corrupted: [N, H, W, C] uint8.
        clean: [N, H, W, C] uint8.

    Returns:
        float64 [N, 2]: (mean absolute change, std of change), 0-255 scale.
    """
    diff = corrupted.astype(np.float64) - clean.astype(np.float64)
    flat = diff.reshape(len(diff), -1)
    return np.stack([np.abs(flat).mean(axis=1), flat.std(axis=1)], axis=1)


def z_scores(ours: np.ndarray, reference: np.ndarray,
             slack: float) -> np.ndarray:
    """|mean paired difference| of per-image stats in standard errors.

    Both sides corrupt the same clean images, so the statistics are paired
    per image: content (how much clipping, how many edges) cancels and
    only the corruption's randomness is left in the standard error.

    Args:
        ours: [N, K] per-image statistics of our outputs.
        reference: [N, K] the same statistics of the package's outputs on
            the same N images.
        slack: absolute difference (0-255 scale) forgiven before
            dividing, for rounding and deliberate small differences.

    Returns:
        [K] float64: max(0, |mean(ours - reference)| - slack) / SE, with
        SE = std(ours - reference) / sqrt(N) (floored at 1e-3).
    """
    diff = ours - reference
    se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
    gap = np.abs(diff.mean(axis=0)) - slack
    return np.maximum(gap, 0.0) / np.maximum(se, 1e-3)


def compare_one(images: np.ndarray, name: str, severity: int,
                seed: int = 0, frost_source: str = "auto",
                frost_draws: int = FROST_DRAWS) -> dict:
    """Our corruption vs the package's on one batch at one severity.

    Args:
        images: uint8 [N, H, W, 3] batch, H and W >= 32 (for frost,
            repeated to `frost_draws` images).
        name: a corruption in EXACT or STATISTICAL.
        severity: 1..5.
        seed: seed of both sides (combined with the severity).
        frost_source: passed to `corruptions.corrupt`.
        frost_draws: least number of frost draws per severity.

    Returns:
        {"kind", "ours_change", "reference_change", "ours_sd",
        "reference_sd", "mad", "z"}: mean changes and stds of change
        (0-255); for EXACT kinds the pixel-wise mean absolute difference
        (for STATISTICAL kinds, |ours_change - reference_change|); z: the
        mean change's paired difference in standard errors.

    Raises:
        ValueError: for a corruption that is not compared.
    """
    if name not in EXACT + STATISTICAL:
        raise ValueError(f"{name!r} is not compared with the package; "
                         f"compared: {', '.join(EXACT + STATISTICAL)}")
    if name == "frost":  # the photograph drawn dominates: more draws
        images = np.concatenate([images] * -(-frost_draws // len(images)))
    seed = seed * 10 + severity  # severities draw independently
    ours = corruptions.corrupt(images, name, severity, "imagenet", seed=seed,
                               frost_source=frost_source)
    ref = reference_corrupt(images, name, severity, seed=seed)
    per_ours = change_stats(ours, images)
    per_ref = change_stats(ref, images)
    s_ours, s_ref = per_ours.mean(axis=0), per_ref.mean(axis=0)
    if name in EXACT:
        mad = float(np.abs(ours.astype(np.float64) - ref).mean())
    else:
        mad = float(abs(s_ours[0] - s_ref[0]))
    return {"kind": "exact" if name in EXACT else "statistical",
            "ours_change": float(s_ours[0]),
            "reference_change": float(s_ref[0]),
            "ours_sd": float(s_ours[1]), "reference_sd": float(s_ref[1]),
            "mad": mad,
            "z": float(z_scores(per_ours, per_ref, 0.0)[0])}


def compare(images: np.ndarray, names: Optional[Iterable[str]] = None,
            seed: int = 0, frost_source: str = "auto",
            progress=None, frost_draws: int = FROST_DRAWS) -> dict:
    """`compare_one` for every compared corruption and severity.

    Args:
        images: uint8 [N, H, W, 3] batch, H and W >= 32.
        names: corruptions (default: EXACT + STATISTICAL).
        seed: seed of both sides.
        frost_source: passed to `corruptions.corrupt`.
        progress: optional callable run after each corruption.
        frost_draws: least number of frost draws per severity.

    Returns:
        {"frost": which frost was used, "num_images", "size",
        "results": {name: {severity: compare_one(...)}}}.

    Raises:
        ImportError: if the package is not installed.
        ValueError: on a bad name or image batch.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError("need a uint8 [N, H, W, 3] batch, got "
                         f"{images.dtype} {images.shape}")
    names = list(names or EXACT + STATISTICAL)
    unknown = sorted(set(names) - set(EXACT + STATISTICAL))
    if unknown:
        raise ValueError(f"not compared: {', '.join(unknown)}; compared: "
                         f"{', '.join(EXACT + STATISTICAL)}")
    if frost_draws < 1:
        raise ValueError(f"frost_draws must be >= 1, got {frost_draws}")
    if min(images.shape[1:3]) < 32:
        raise ValueError("imagecorruptions needs H, W >= 32, got "
                         f"{images.shape[1:3]}")
    results = {}
    for name in names:
        results[name] = {
            str(s): compare_one(images, name, s, seed, frost_source,
                                frost_draws)
            for s in corruptions.SEVERITIES}
        if progress is not None:
            progress()
    return {"frost": frost_lib.describe(frost_source),
            "num_images": int(len(images)),
            "size": list(images.shape[1:3]), "results": results}


def markdown_table(before: dict, after: dict) -> str:
    """Per corruption: mean over severities of `mad`, before vs after.

    The last column is the largest z over severities (random kinds).

    Args:
        before: a `compare` result (e.g. with synthetic frost).
        after: a `compare` result.

    Returns:
        A Markdown table with one row per corruption.
    """
    lines = ["| corruption | kind | change (ours / reference) | "
             f"difference, {before['frost']} | "
             f"difference, {after['frost']} | max z |",
             "|---|---|---|---|---|---|"]
    for name, by_sev in after["results"].items():
        old = before["results"].get(name, {})

        def mean(d, key):
            return np.mean([v[key] for v in d.values()]) if d else np.nan

        lines.append(
            f"| {name} | {next(iter(by_sev.values()))['kind']} | "
            f"{mean(by_sev, 'ours_change'):.2f} / "
            f"{mean(by_sev, 'reference_change'):.2f} | "
            f"{mean(old, 'mad'):.2f} | {mean(by_sev, 'mad'):.2f} | "
            + (f"{max(v['z'] for v in by_sev.values()):.1f} |"
               if name in STATISTICAL else "– |"))
    return "\n".join(lines)


def before_and_after(images: np.ndarray, seed: int = 0,
                     progress=None, frost_draws: int = FROST_DRAWS,
                     names: Optional[Iterable[str]] = None) -> dict:
    """The comparison with synthetic frost (before) and with `auto` frost.

    Only frost depends on the frost source, so "before" is "after" with
    its frost rows recomputed on the synthetic textures.

    Args:
        images: uint8 [N, H, W, 3] batch, H and W >= 32.
        seed: seed of both sides.
        progress: optional callable run after each corruption.
        frost_draws: least number of frost draws per severity.
        names: corruptions (default: EXACT + STATISTICAL).

    Returns:
        {"before": compare(...), "after": compare(...)}.
    """
    names = list(names or EXACT + STATISTICAL)
    after = compare(images, names, seed, "auto", progress, frost_draws)
    if "frost" not in names:
        return {"before": after, "after": after}
    synthetic = compare(images, ["frost"], seed, "synthetic", progress,
                        frost_draws)
    before = dict(after, frost=synthetic["frost"],
                  results=dict(after["results"], **synthetic["results"]))
    return {"before": before, "after": after}


def fashion_mnist_images(num_images: int, size: int,
                         data_dir: Optional[str] = None) -> np.ndarray:
    """The first Fashion-MNIST test images as size x size RGB uint8.

    Args:
        num_images: how many (<= 10,000).
        size: output side, >= 32 (bilinear upsampling from 28).
        data_dir: folder of the IDX files (default: the Debian package's).

    Returns:
        uint8 [num_images, size, size, 3], grey in every channel.

    Raises:
        ValueError: on a bad count or size.
    """
    from PIL import Image  # pylint: disable=g-import-not-at-top
    if not 1 <= num_images <= 10000 or size < 32:
        raise ValueError(f"need 1 <= num_images <= 10000 and size >= 32, "
                         f"got {num_images}, {size}")
    kwargs = {"data_dir": data_dir} if data_dir else {}
    x, _ = fashion_mnist.load_arrays("test", **kwargs)
    return np.stack([
        np.asarray(Image.fromarray(a[..., 0]).resize(
            (size, size), Image.BILINEAR).convert("RGB"))
        for a in x[:num_images]])
