"""Robustness metrics: mCE, CIFAR-10-C error, flip probability, ImageNet-A.

Definitions follow docs/reference/related_methods.md section 4:
* mCE = 100 x mean over the 15 ImageNet-C corruptions of
  CE_c = sum_s E_sc / sum_s E^AlexNet_sc (google-research/augmix
  `imagenet.py::compute_mce`); errors are fractions in [0, 1].
* CIFAR-10-C "mean corruption error" = 100 x mean error, no baseline
  (augmix `cifar.py::test_c`).
* flip probability as hendrycks/robustness `ImageNet-P/test.py::flip_prob`.
* ImageNet-A top-1 on the 1000-way logits restricted to its 200 classes.
"""

from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from noisy_student_tf.robustness.corruptions import CORRUPTIONS

# AlexNet top-1 error per ImageNet-C corruption and severity 1..5. Row means
# equal augmix `imagenet.py` ALEXNET_ERR ("taken from hendrycks/robustness");
# per-severity values as in the spec (a timm-fork table).
ALEXNET_ERRORS = {
    "gaussian_noise": (.69528, .82542, .93554, .98138, .99452),
    "shot_noise": (.71224, .85108, .93574, .98182, .99146),
    "impulse_noise": (.78374, .89808, .94870, .98720, .99548),
    "defocus_blur": (.65624, .73202, .85036, .91364, .94714),
    "glass_blur": (.64308, .75054, .88806, .91622, .93344),
    "motion_blur": (.58430, .70048, .82108, .89750, .92638),
    "zoom_blur": (.70008, .76992, .80784, .84198, .87198),
    "snow": (.71726, .88392, .86468, .91870, .94952),
    "frost": (.61390, .79734, .88790, .89942, .93430),
    "fog": (.67474, .76050, .84378, .87260, .94500),
    "brightness": (.45140, .48502, .54048, .62166, .72440),
    "contrast": (.64548, .76150, .88874, .97760, .99270),
    "elastic_transform": (.52596, .70116, .55686, .64076, .80554),
    "pixelate": (.52218, .54620, .73728, .87092, .91262),
    "jpeg_compression": (.51002, .54718, .57294, .65458, .74778),
}

# Clean top-1 error of torchvision's AlexNet (AlexNet_Weights.IMAGENET1K_V1,
# acc@1 56.522 on the torchvision model page), the network the hendrycks
# test scripts load; the ImageNet-C paper rounds it to 43.5.
ALEXNET_CLEAN_ERROR = 1.0 - 0.56522

# ImageNet-1k indices of the 200 ImageNet-A classes: `indices_in_1k` of
# hendrycks/natural-adv-examples `eval.py` (the keys of `thousand_k_to_200`
# whose value is not -1), in order, so position k is ImageNet-A label k.
IMAGENET_A_CLASS_INDICES = (
    6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76,
    79, 89, 90, 94, 96, 97, 99, 105, 107, 108, 110, 113, 124, 125, 130, 132,
    143, 144, 150, 151, 207, 234, 235, 254, 277, 283, 287, 291, 295, 298,
    301, 306, 307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324,
    326, 327, 330, 334, 335, 336, 347, 361, 363, 372, 378, 386, 397, 400,
    401, 402, 404, 407, 411, 416, 417, 420, 425, 428, 430, 437, 438, 445,
    456, 457, 461, 462, 470, 472, 483, 486, 488, 492, 496, 514, 516, 528,
    530, 539, 542, 543, 549, 552, 557, 561, 562, 569, 572, 573, 575, 579,
    589, 606, 607, 609, 614, 626, 627, 640, 641, 642, 643, 658, 668, 677,
    682, 684, 687, 701, 704, 719, 736, 746, 749, 752, 758, 763, 765, 768,
    773, 774, 776, 779, 780, 786, 792, 797, 802, 803, 804, 813, 815, 820,
    823, 831, 833, 835, 839, 845, 847, 850, 859, 862, 870, 879, 880, 888,
    890, 897, 900, 907, 913, 924, 932, 933, 934, 937, 943, 945, 947, 951,
    954, 956, 957, 959, 971, 972, 980, 981, 984, 986, 987, 988,
)


def top1_error(logits_or_predictions: np.ndarray,
               labels: np.ndarray) -> float:
    """Fraction of wrong top-1 predictions.

    Args:
        logits_or_predictions: [N, K] logits or [N] class ids.
        labels: [N] integer labels.

    Returns:
        Error in [0, 1].
    """
    preds = np.asarray(logits_or_predictions)
    if preds.ndim == 2:
        preds = preds.argmax(axis=-1)
    return float(np.mean(preds != np.asarray(labels).reshape(-1)))


def corruption_errors(
        accuracies: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """Turns per-severity accuracies into per-severity errors.

    Args:
        accuracies: corruption name -> 5 accuracies (fractions, severity
            1..5).

    Returns:
        corruption name -> 5 errors, 1 - accuracy.

    Raises:
        ValueError: if an entry does not hold exactly 5 values.
    """
    out = {}
    for name, accs in accuracies.items():
        accs = [float(a) for a in accs]
        if len(accs) != 5:
            raise ValueError(f"{name}: need 5 severities, got {len(accs)}")
        out[name] = [1.0 - a for a in accs]
    return out


def _checked_errors(errors: Mapping[str, Sequence[float]]) -> dict:
    missing = [c for c in CORRUPTIONS if c not in errors]
    if missing:
        raise ValueError(f"mCE needs all 15 corruptions; missing: "
                         f"{', '.join(missing)}")
    out = {}
    for c in CORRUPTIONS:
        values = np.asarray(errors[c], np.float64)
        if values.shape != (5,):
            raise ValueError(f"{c}: need 5 severities, got {values.shape}")
        out[c] = values
    return out


def mce(errors: Mapping[str, Sequence[float]]) -> float:
    """ImageNet-C mean corruption error, normalised by AlexNet, in percent.

    Only the 15 benchmark corruptions count; extra keys (the held-out
    speckle_noise, gaussian_blur, spatter, saturate) are ignored.

    Args:
        errors: corruption name -> 5 top-1 errors (fractions).

    Returns:
        100 x mean_c (sum_s E_sc / sum_s E^AlexNet_sc). AlexNet scores 100.

    Raises:
        ValueError: if a corruption is missing or has != 5 values.
    """
    errs = _checked_errors(errors)
    ces = [errs[c].sum() / np.sum(ALEXNET_ERRORS[c]) for c in CORRUPTIONS]
    return float(100.0 * np.mean(ces))


def relative_mce(errors: Mapping[str, Sequence[float]], clean_error: float,
                 alexnet_clean_error: float = ALEXNET_CLEAN_ERROR) -> float:
    """Relative mCE: corruption errors minus clean error, vs AlexNet's.

    Args:
        errors: corruption name -> 5 top-1 errors (fractions).
        clean_error: the model's clean top-1 error (fraction).
        alexnet_clean_error: AlexNet's clean top-1 error.

    Returns:
        100 x mean_c [sum_s (E_sc - E_clean)] /
        [sum_s (E^AlexNet_sc - E^AlexNet_clean)].

    Raises:
        ValueError: if a corruption is missing or has != 5 values.
    """
    errs = _checked_errors(errors)
    rel = [(errs[c] - clean_error).sum()
           / (np.asarray(ALEXNET_ERRORS[c]) - alexnet_clean_error).sum()
           for c in CORRUPTIONS]
    return float(100.0 * np.mean(rel))


def unnormalized_mean_error(errors: Mapping[str, Sequence[float]]) -> float:
    """CIFAR-10-C "mean corruption error": 100 x mean error, no baseline.

    Equals 100 - 100 x mean accuracy with severities pooled per corruption
    (the 5 severity blocks are equally large), over whatever corruptions
    are given.

    Args:
        errors: corruption name -> per-severity errors (fractions).

    Returns:
        The mean error in percent.

    Raises:
        ValueError: if `errors` is empty.
    """
    if not errors:
        raise ValueError("no corruption errors given")
    return float(100.0 * np.mean([np.mean(v) for v in errors.values()]))


def flip_probability(predictions: np.ndarray, is_noise: bool,
                     difficulty: int = 1) -> float:
    """Probability that the top-1 prediction flips along a sequence.

    As ImageNet-P/test.py `flip_prob`: noise sequences compare frames 1..
    with frame 0; other sequences compare each frame with the previous one,
    on `difficulty` interleaved sub-sequences of stride `difficulty`.

    Args:
        predictions: [num_sequences, num_frames] top-1 class ids.
        is_noise: True for the noise perturbations.
        difficulty: frame stride for non-noise perturbations (1, 2 or 3);
            ignored for noise, as in the reference.

    Returns:
        Mean over sequences of the per-sequence flip frequency.

    Raises:
        ValueError: if predictions is not 2-D with at least 2 frames, or
            difficulty < 1.
    """
    preds = np.asarray(predictions)
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    if preds.ndim != 2 or preds.shape[1] < 2:
        raise ValueError("predictions must be [num_sequences, num_frames>=2]"
                         f", got shape {preds.shape}")
    if is_noise:
        return float(np.mean(preds[:, 1:] != preds[:, :1]))
    flips = [preds[:, i::difficulty][:, 1:] != preds[:, i::difficulty][:, :-1]
             for i in range(difficulty)]
    # Per sequence, all comparisons are pooled before averaging.
    return float(np.mean(np.concatenate(flips, axis=1)))


def mean_flip_rate(flip_probabilities: Mapping[str, float],
                   normalizers: Optional[Mapping[str, float]] = None
                   ) -> float:
    """Mean flip rate over perturbations, in percent.

    The AlexNet flip probabilities that define ImageNet-P's mFR are not in
    hendrycks/robustness (only in a spreadsheet, issue #49), so by default
    this is the unnormalised 100 x mean FP; pass `normalizers` (e.g. an
    in-project baseline's FPs) for FR_p = FP_p / FP^base_p.

    Args:
        flip_probabilities: perturbation name -> flip probability.
        normalizers: optional name -> baseline flip probability.

    Returns:
        100 x mean_p FP_p, or 100 x mean_p FP_p / normalizers[p].

    Raises:
        ValueError: if nothing is given or a normaliser is missing.
    """
    if not flip_probabilities:
        raise ValueError("no flip probabilities given")
    if normalizers is None:
        return float(100.0 * np.mean(list(flip_probabilities.values())))
    missing = [p for p in flip_probabilities if p not in normalizers]
    if missing:
        raise ValueError(f"no normaliser for: {', '.join(missing)}")
    return float(100.0 * np.mean(
        [fp / normalizers[p] for p, fp in flip_probabilities.items()]))


def imagenet_a_logits(logits_1000):
    """Restricts 1000-way ImageNet logits to the 200 ImageNet-A classes.

    Args:
        logits_1000: [..., 1000] NumPy array or tensor.

    Returns:
        [..., 200] logits; argmax k is ImageNet-A label k.

    Raises:
        ValueError: if the last axis is not 1000.
    """
    if logits_1000.shape[-1] != 1000:
        raise ValueError(
            f"expected 1000 logits, got shape {tuple(logits_1000.shape)}")
    if isinstance(logits_1000, np.ndarray):
        return logits_1000[..., list(IMAGENET_A_CLASS_INDICES)]
    return tf.gather(logits_1000, IMAGENET_A_CLASS_INDICES, axis=-1)
