"""mCE on the AlexNet table, CIFAR-10-C error, flip rates, ImageNet-A."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.robustness import metrics

# Row means of the spec table (= augmix imagenet.py ALEXNET_ERR).
SPEC_MEANS = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468,
    "impulse_noise": 0.922640, "defocus_blur": 0.819880,
    "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204,
    "elastic_transform": 0.646056, "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}


def _alexnet(scale=1.0):
    return {c: [scale * e for e in v]
            for c, v in metrics.ALEXNET_ERRORS.items()}


def test_alexnet_table_row_means_match_the_spec():
    assert set(metrics.ALEXNET_ERRORS) == set(SPEC_MEANS)
    for name, mean in SPEC_MEANS.items():
        assert len(metrics.ALEXNET_ERRORS[name]) == 5
        assert np.mean(metrics.ALEXNET_ERRORS[name]) == pytest.approx(
            mean, abs=1e-9)


def test_mce_of_alexnet_is_100_and_half_is_50():
    assert metrics.mce(_alexnet()) == pytest.approx(100.0)
    assert metrics.mce(_alexnet(0.5)) == pytest.approx(50.0)
    errors = _alexnet()
    errors["fog"] = [0.0] * 5  # CE_fog = 0 -> 100 * 14 / 15
    assert metrics.mce(errors) == pytest.approx(100.0 * 14 / 15)


def test_mce_counts_only_the_15_and_needs_all_of_them():
    errors = _alexnet()
    errors["speckle_noise"] = [1.0] * 5  # held out, ignored
    assert metrics.mce(errors) == pytest.approx(100.0)
    del errors["frost"]
    with pytest.raises(ValueError, match="frost"):
        metrics.mce(errors)
    errors = _alexnet()
    errors["fog"] = [0.5] * 4
    with pytest.raises(ValueError, match="fog"):
        metrics.mce(errors)


def test_relative_mce():
    clean = metrics.ALEXNET_CLEAN_ERROR
    assert clean == pytest.approx(0.43478)
    assert metrics.relative_mce(_alexnet(), clean) == pytest.approx(100.0)
    # Half of AlexNet's degradation on top of a 0.1 clean error -> 50.
    half = {c: [0.1 + 0.5 * (e - clean) for e in v]
            for c, v in metrics.ALEXNET_ERRORS.items()}
    assert metrics.relative_mce(half, 0.1) == pytest.approx(50.0)


def test_unnormalized_mean_error_and_corruption_errors():
    errors = {"a": [0.1, 0.2, 0.3, 0.4, 0.5], "b": [0.5] * 5}
    assert metrics.unnormalized_mean_error(errors) == pytest.approx(40.0)
    with pytest.raises(ValueError):
        metrics.unnormalized_mean_error({})
    errs = metrics.corruption_errors({"a": [1.0, 0.75, 0.5, 0.25, 0.0]})
    assert errs == {"a": [0.0, 0.25, 0.5, 0.75, 1.0]}
    with pytest.raises(ValueError, match="5 severities"):
        metrics.corruption_errors({"a": [1.0]})


def test_top1_error():
    logits = np.array([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert metrics.top1_error(logits, [1, 1, 1]) == pytest.approx(1 / 3)
    assert metrics.top1_error(np.array([0, 1]), [0, 0]) == 0.5


def test_flip_probability_noise_compares_with_the_first_frame():
    preds = np.array([[1, 1, 2, 1],    # flips vs frame 0: 0, 1, 0 -> 1/3
                      [3, 3, 3, 3]])   # 0
    assert metrics.flip_probability(preds, True) == pytest.approx(1 / 6)
    # Noise ignores the previous frame: 2 -> 2 still counts as a flip.
    assert metrics.flip_probability([[1, 2, 2, 2]], True) == 1.0


def test_flip_probability_others_compare_with_the_previous_frame():
    preds = np.array([[1, 1, 2, 1],    # (1,1) (1,2) (2,1): 2/3
                      [3, 3, 3, 3]])   # 0
    assert metrics.flip_probability(preds, False) == pytest.approx(1 / 3)
    assert metrics.flip_probability([[1, 2, 2, 2]], False) == pytest.approx(
        1 / 3)
    # difficulty 2: sub-sequences 1,1,1 and 2,2,2 never flip.
    alternating = [[1, 2, 1, 2, 1, 2]]
    assert metrics.flip_probability(alternating, False) == 1.0
    assert metrics.flip_probability(alternating, False, difficulty=2) == 0.0
    with pytest.raises(ValueError):
        metrics.flip_probability([1, 2, 3], False)


def test_mean_flip_rate():
    fps = {"rotate": 0.1, "scale": 0.3}
    assert metrics.mean_flip_rate(fps) == pytest.approx(20.0)
    base = {"rotate": 0.2, "scale": 0.3}
    assert metrics.mean_flip_rate(fps, base) == pytest.approx(75.0)
    with pytest.raises(ValueError, match="scale"):
        metrics.mean_flip_rate(fps, {"rotate": 0.2})


def test_imagenet_a_class_indices():
    idx = metrics.IMAGENET_A_CLASS_INDICES
    assert len(idx) == 200
    assert list(idx) == sorted(set(idx))
    assert 0 <= idx[0] and idx[-1] < 1000
    # Spot checks against thousand_k_to_200 in natural-adv-examples eval.py.
    for k1000, k200 in [(6, 0), (207, 38), (400, 75), (701, 135),
                        (988, 199)]:
        assert idx.index(k1000) == k200


def test_imagenet_a_logits_numpy_and_tensor():
    logits = np.zeros((2, 1000), np.float32)
    logits[0, 6] = 5.0
    logits[1, 988] = 5.0
    logits[1, 0] = 9.0  # outside the 200 classes: masked away
    out = metrics.imagenet_a_logits(logits)
    assert out.shape == (2, 200)
    np.testing.assert_array_equal(out.argmax(-1), [0, 199])
    out_tf = metrics.imagenet_a_logits(tf.constant(logits))
    np.testing.assert_array_equal(out_tf.numpy(), out)
    with pytest.raises(ValueError, match="1000"):
        metrics.imagenet_a_logits(np.zeros((1, 200)))
