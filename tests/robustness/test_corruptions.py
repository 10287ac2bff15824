"""Corruptions, perturbation sequences and their filters."""

import numpy as np
import pytest
from scipy import ndimage

from noisy_student_tf.robustness import corruption_tables
from noisy_student_tf.robustness import corruptions
from noisy_student_tf.robustness import filters
from noisy_student_tf.robustness import frost
from noisy_student_tf.robustness import perturbations


def _images(n=4, channels=3, size=32, seed=0):
    """Smooth random images spanning most of the 0-255 range."""
    rng = np.random.default_rng(seed)
    x = filters.gaussian_hw(rng.random((n, size, size, channels)), 1.5)
    x = (x - x.min()) / (x.max() - x.min())
    return (20 + 215 * x).astype(np.uint8)


def _distance(a, b):
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_every_severity_keeps_shape_and_dtype(name, channels):
    x = _images(channels=channels)
    for severity in corruptions.SEVERITIES:
        out = corruptions.corrupt(x, name, severity)
        assert out.shape == x.shape and out.dtype == np.uint8


# Elastic transform is exempt: its reference constants are not monotone in
# pixel distance (severity 1 has the largest affine jitter, 0.08 x 32 px,
# vs 0.03 x 32 px plus a small elastic field at severity 5).
@pytest.mark.parametrize(
    "name", [c for c in corruptions.CORRUPTIONS if c != "elastic_transform"])
def test_severity_5_is_further_from_clean_than_severity_1(name):
    x = _images(n=8)
    d1 = _distance(corruptions.corrupt(x, name, 1), x)
    d5 = _distance(corruptions.corrupt(x, name, 5), x)
    assert d5 > d1


@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_imagenet_constants_keep_shape(name):
    x = _images(n=2)
    out = corruptions.corrupt(x, name, 3, constants="imagenet")
    assert out.shape == x.shape and out.dtype == np.uint8


def test_deterministic_for_a_seed_and_independent_of_batching():
    x = _images(n=6)
    for name in ("gaussian_noise", "snow", "glass_blur", "elastic_transform"):
        a = corruptions.corrupt(x, name, 3, seed=7)
        np.testing.assert_array_equal(a, corruptions.corrupt(x, name, 3,
                                                             seed=7))
        halves = np.concatenate([
            corruptions.corrupt(x[:2], name, 3, seed=7),
            corruptions.corrupt(x[2:], name, 3, seed=7, start_index=2)])
        np.testing.assert_array_equal(a, halves)
        assert not np.array_equal(a, corruptions.corrupt(x, name, 3, seed=8))


def test_bad_arguments_name_the_valid_choices():
    x = _images(n=1)
    with pytest.raises(ValueError, match="gaussian_noise, shot_noise"):
        corruptions.corrupt(x, "speckle_noise", 1)
    for severity in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match=r"\(1, 2, 3, 4, 5\)"):
            corruptions.corrupt(x, "fog", severity)
    with pytest.raises(ValueError, match="imagenet"):
        corruptions.corrupt(x, "fog", 1, constants="tiny")
    with pytest.raises(ValueError, match="uint8"):
        corruptions.corrupt(x.astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match="C in"):
        corruptions.corrupt(np.zeros((1, 32, 32, 4), np.uint8), "fog", 1)
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    assert corruptions.corrupt(empty, "fog", 1).shape == empty.shape


def test_constant_tables_are_the_references():
    for table in corruption_tables.TABLES.values():
        assert set(table) == set(corruptions.CORRUPTIONS)
        assert all(len(v) == 5 for v in table.values())
    cifar, imagenet = corruption_tables.CIFAR, corruption_tables.IMAGENET
    assert cifar["gaussian_noise"] == (0.04, 0.06, .08, .09, .10)
    assert imagenet["gaussian_noise"] == (.08, .12, 0.18, 0.26, 0.38)
    assert cifar["jpeg_compression"] == (80, 65, 58, 50, 40)
    assert imagenet["elastic_transform"][0] == (488, 244 * 0.7, 244 * 0.1)
    assert cifar["elastic_transform"][4] == (3.2, 32 * 0.03, 32 * 0.03)
    # np.arange(1, 1.06, 0.01) overshoots to include 1.06; the reference
    # evaluated the same expression, so 7 zooms it is.
    np.testing.assert_allclose(cifar["zoom_blur"][0],
                               [1, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06])


# make_cifar_c.py's constants, typed in from the file (hendrycks/robustness,
# ImageNet-C/create_c/make_cifar_c.py); zoom_blur as arange(1, end, 0.01).
_MAKE_CIFAR_C = {
    "gaussian_noise": [0.04, 0.06, .08, .09, .10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [.01, .02, .03, .05, .07],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2),
                     (1.5, 0.1)],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                   (0.4, 1, 2)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    "fog": [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "brightness": [.05, .1, .15, .2, .3],
    "contrast": [.75, .5, .4, .3, 0.15],
    "elastic_transform": [(0, 0, 2.56), (1.6, 6.4, 2.24),
                          (2.56, 1.92, 1.92), (3.2, 1.28, 1.6),
                          (3.2, 0.96, 0.96)],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "jpeg_compression": [80, 65, 58, 50, 40],
}
_MAKE_CIFAR_C_ZOOM_ENDS = (1.06, 1.11, 1.16, 1.21, 1.26)


@pytest.mark.parametrize("name", sorted(_MAKE_CIFAR_C))
def test_cifar_constants_are_make_cifar_c_hand_values(name):
    np.testing.assert_allclose(corruption_tables.CIFAR[name],
                               _MAKE_CIFAR_C[name], rtol=1e-12)


def test_cifar_zoom_blur_constants_are_make_cifar_c_hand_values():
    zooms = corruption_tables.CIFAR["zoom_blur"]
    for got, end in zip(zooms, _MAKE_CIFAR_C_ZOOM_ENDS):
        # The reference's own expression; float steps make some include
        # the end point (1.06: 7 zooms, 1.11: 12).
        np.testing.assert_array_equal(got, np.arange(1, end, 0.01))
    assert [len(z) for z in zooms] == [7, 12, 16, 21, 26]


def test_frost_falls_back_to_synthetic_textures_with_one_warning(
        monkeypatch):
    monkeypatch.setattr(frost, "load_photos", lambda: None)
    monkeypatch.setattr(frost, "_warned", False)
    x = _images(n=2)
    with pytest.warns(RuntimeWarning, match="synthetic frost") as record:
        auto = corruptions.corrupt(x, "frost", 3)
        corruptions.corrupt(x, "frost", 3)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    np.testing.assert_array_equal(
        auto, corruptions.corrupt(x, "frost", 3, frost_source="synthetic"))
    assert frost.describe() == "synthetic textures"
    with pytest.raises(ValueError, match="imagecorruptions-imaug"):
        corruptions.corrupt(x, "frost", 3, frost_source="photos")
    with pytest.raises(ValueError, match="frost_source must be one of"):
        corruptions.corrupt(x, "fog", 3, frost_source="real")


def test_contrast_and_brightness_formulas():
    x = np.zeros((1, 16, 16, 3), np.uint8)
    x[:, :8] = 51   # 0.2
    x[:, 8:] = 153  # 0.6; mean 0.4
    out = corruptions.corrupt(x, "contrast", 5)  # c = 0.15
    # (0.2 - 0.4) * 0.15 + 0.4 = 0.37 -> 94.35; 0.43 -> 109.65 (truncated).
    assert set(np.unique(out[:, :8])) == {94}
    assert set(np.unique(out[:, 8:])) == {109}
    grey = np.full((1, 16, 16, 1), 102, np.uint8)  # V = 0.4
    out = corruptions.corrupt(grey, "brightness", 5)  # V + 0.3 = 0.7
    assert set(np.unique(out)) == {178}  # 0.7 * 255 = 178.5, truncated


def test_noise_statistics():
    x = np.full((4, 32, 32, 3), 128, np.uint8)
    noisy = corruptions.corrupt(x, "gaussian_noise", 5).astype(np.float64)
    assert abs(noisy.std() - 0.10 * 255) < 1.0
    flipped = corruptions.corrupt(x, "impulse_noise", 5)
    assert abs(np.mean(flipped != 128) - 0.07) < 0.01
    assert set(np.unique(flipped)) == {0, 128, 255}


def test_disk_and_motion_blur_kernels():
    np.testing.assert_allclose(filters.disk_kernel(3, 0.1).sum(), 1.0,
                               rtol=1e-6)
    delta = np.zeros((1, 17, 17, 1), np.float32)
    delta[0, 8, 8, 0] = 1.0
    out = filters.motion_blur(delta, radius=2, sigma=1.0, angles=np.zeros(1))
    # Angle 0: pixel (r, c) averages columns c..c+4 of row r with weights
    # exp(-i^2 / 2), so the delta spreads to columns 8, 7, ..., 4.
    weights = np.exp(-np.arange(5) ** 2 / 2.0)
    np.testing.assert_allclose(out[0, 8, 8:3:-1, 0], weights / weights.sum(),
                               rtol=1e-6)
    assert out.sum() == pytest.approx(1.0)


def test_frost_texture_is_deterministic():
    a = filters.frost_textures(np.random.default_rng(3), 2, 32, 40, 3.0)
    b = filters.frost_textures(np.random.default_rng(3), 2, 32, 40, 3.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 32, 40, 3) and 0 <= a.min() and a.max() <= 255


@pytest.mark.parametrize("zoom", [1.0, 1.06, 1.25, 2.25, 4.5])
def test_clipped_zoom_matches_scipy_zoom(zoom):
    # The reference: crop ceil(h / zoom), scipy zoom order 1, trim to h.
    x = np.random.default_rng(5).random((2, 32, 32, 3)).astype(np.float32)
    ch = int(np.ceil(32 / zoom))
    top = (32 - ch) // 2
    ref = ndimage.zoom(x[:, top:top + ch, top:top + ch], (1, zoom, zoom, 1),
                       order=1)
    trim = (ref.shape[1] - 32) // 2
    np.testing.assert_allclose(filters.clipped_zoom(x, zoom),
                               ref[:, trim:trim + 32, trim:trim + 32],
                               atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", perturbations.PERTURBATIONS)
def test_perturbation_sequences(name, channels):
    image = _images(n=1, channels=channels)[0]
    seq = perturbations.make_sequence(image, name, num_frames=6, seed=1)
    assert seq.shape == (6,) + image.shape and seq.dtype == np.uint8
    np.testing.assert_array_equal(
        seq, perturbations.make_sequence(image, name, num_frames=6, seed=1))
    if perturbations.is_noise_perturbation(name):
        np.testing.assert_array_equal(seq[0], image)  # clean reference
        assert not np.array_equal(seq[1], seq[2])


def test_translate_moves_one_pixel_per_frame():
    image = _images(n=1)[0]
    seq = perturbations.make_sequence(image, "translate", num_frames=4)
    np.testing.assert_array_equal(seq[2], image)  # shift 0 at F // 2
    np.testing.assert_array_equal(seq[3][:, 1:], image[:, :-1])
    assert not seq[3][:, 0].any()  # uncovered column is zero


def test_brightness_sequence_brightens():
    image = _images(n=1)[0]
    seq = perturbations.make_sequence(image, "brightness", num_frames=5)
    means = seq.reshape(5, -1).mean(axis=1)
    assert np.all(np.diff(means) > 0)


def test_make_sequences_and_errors():
    images = _images(n=3)
    seqs = perturbations.make_sequences(images, "gaussian_noise",
                                        num_frames=3, seed=2)
    assert seqs.shape == (3, 3, 32, 32, 3)
    np.testing.assert_array_equal(
        seqs[2], perturbations.make_sequence(images[2], "gaussian_noise",
                                             num_frames=3, seed=[2, 2]))
    with pytest.raises(ValueError, match="translate"):
        perturbations.make_sequence(images[0], "shear")
    with pytest.raises(ValueError, match="num_frames"):
        perturbations.make_sequence(images[0], "rotate", num_frames=1)
