"""RandAugment: the level table, per-op hand values, per-image draws."""

import math

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import preprocess
from noisy_student_tf.data import randaugment as ra


def _image(height=32, width=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def _both(fn, image):
    """fn(image) eagerly and inside Dataset.map with unknown H and W."""
    eager = np.asarray(fn(tf.constant(image)))
    spec = tf.TensorSpec([None, None, image.shape[-1]], tf.uint8)
    ds = tf.data.Dataset.from_generator(
        lambda: iter([image]), output_signature=spec).map(fn)
    return eager, next(iter(ds)).numpy()


# --- level -> argument table (spec §11) ---

@pytest.mark.parametrize("magnitude,expected", [
    (5, dict(Rotate=15.0, ShearX=0.15, Posterize=2, Solarize=128,
             SolarizeAdd=55, Color=1.0, Cutout=20, TranslateX=50.0)),
    (10, dict(Rotate=30.0, ShearX=0.3, Posterize=4, Solarize=256,
              SolarizeAdd=110, Color=1.9, Cutout=40, TranslateX=100.0)),
    (27, dict(Rotate=81.0, ShearY=0.81, Posterize=10, Solarize=691,
              SolarizeAdd=297, Sharpness=4.96, Cutout=108,
              TranslateY=270.0)),
])
def test_level_to_arg_matches_spec_table(magnitude, expected):
    table = ra.level_to_arg(magnitude)
    for name, value in expected.items():
        assert table[name] == pytest.approx((value,)), name
    assert table["AutoContrast"] == table["Equalize"] == table["Invert"] == ()


def test_level_to_arg_svhn_constants_and_int_truncation():
    table = ra.level_to_arg(5, cutout_const=4, translate_const=4)
    assert table["Cutout"] == (2,) and table["TranslateX"] == (2.0,)
    # int() truncates after (M / 10) * const, in Python floats.
    assert ra.level_to_arg(7)["SolarizeAdd"] == (77,)
    assert ra.level_to_arg(9)["Posterize"] == (3,)
    assert ra.level_to_arg(3, cutout_const=4)["Cutout"] == (1,)


def test_op_list_is_the_16_reference_ops():
    assert len(ra.RANDAUGMENT_OPS) == 16 and ra.RANDAUGMENT_OPS[-1] == "Cutout"
    assert set(ra.RANDAUGMENT_OPS) == set(ra.NAME_TO_FUNC)


# --- geometric ops ---

def test_rotate_90_is_counter_clockwise_and_30_moves_pixels_as_computed():
    image = _image(16, 16)
    for out in _both(lambda x: ra.rotate(x, 90.0), image):
        np.testing.assert_array_equal(out, np.rot90(image))
    for out in _both(lambda x: ra.rotate(x, -90.0), image):
        np.testing.assert_array_equal(out, np.rot90(image, -1))
    # M=10: 30 degrees. Output (y, x) samples input at the TF1 contrib
    # rotation of (x, y) about the centre, rounded to the nearest pixel.
    out = ra.rotate(tf.constant(image), 30.0).numpy()
    cos, sin = math.cos(math.pi / 6), math.sin(math.pi / 6)
    x_off = (15 - (cos * 15 - sin * 15)) / 2
    y_off = (15 - (sin * 15 + cos * 15)) / 2
    for y, x in [(8, 8), (3, 12), (12, 2)]:
        src_x = round(cos * x - sin * y + x_off)
        src_y = round(sin * x + cos * y + y_off)
        np.testing.assert_array_equal(out[y, x], image[src_y, src_x])
    assert (out[0, 0] == 128).all() and (out[15, 15] == 128).all()


@pytest.mark.parametrize("sign", [1, -1])
def test_translate_by_level_times_const_shifts_and_fills_128(sign):
    image = _image(8, 8, 1)
    (pixels,) = ra.level_to_arg(5, translate_const=4)["TranslateX"]
    shift = int(sign * pixels)
    for out in _both(lambda x: ra.translate_x(x, sign * pixels), image):
        if shift > 0:
            np.testing.assert_array_equal(out[:, :-shift], image[:, shift:])
            assert (out[:, -shift:] == 128).all()
        else:
            np.testing.assert_array_equal(out[:, -shift:], image[:, :shift])
            assert (out[:, :-shift] == 128).all()
    out = ra.translate_y(tf.constant(image), sign * pixels).numpy()
    np.testing.assert_array_equal(out, np.moveaxis(
        ra.translate_x(tf.constant(np.moveaxis(image, 0, 1)),
                       sign * pixels).numpy(), 0, 1))


def test_shear_uses_reference_matrix():
    image = _image(10, 10)
    (level,) = ra.level_to_arg(10)["ShearX"]
    out_x = ra.shear_x(tf.constant(image), level).numpy()
    out_y = ra.shear_y(tf.constant(image), level).numpy()
    for y in range(10):
        for x in range(10):
            # Nearest = round half away from zero; all values here are >= 0.
            src = math.floor(x + level * y + 0.5)
            want = image[y, src] if src < 10 else [128] * 3
            np.testing.assert_array_equal(out_x[y, x], want)
            src = math.floor(level * x + y + 0.5)
            want = image[src, x] if src < 10 else [128] * 3
            np.testing.assert_array_equal(out_y[y, x], want)


def test_cutout_pad_from_level_gives_patch_of_128():
    image = np.full((32, 32, 3), 9, np.uint8)
    (pad,) = ra.level_to_arg(5, cutout_const=4)["Cutout"]
    areas = set()
    for _ in range(40):
        out = ra.cutout(tf.constant(image), pad).numpy()
        filled = (out == 128).all(-1)
        assert set(np.unique(out)) <= {9, 128}
        rows, cols = np.nonzero(filled)
        areas.add(filled.sum())
        assert rows.max() - rows.min() < 2 * pad
        assert cols.max() - cols.min() < 2 * pad
    assert max(areas) == (2 * pad) ** 2


# --- colour ops ---

def test_solarize_threshold_and_no_op_from_m10():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    (threshold,) = ra.level_to_arg(5)["Solarize"]
    want = np.where(image < 128, image, 255 - image)
    for out in _both(lambda x: ra.solarize(x, threshold), image):
        np.testing.assert_array_equal(out, want)
    for magnitude in (10, 27):
        (threshold,) = ra.level_to_arg(magnitude)["Solarize"]
        out = ra.solarize(tf.constant(image), threshold).numpy()
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("magnitude,mask", [(5, 0xC0), (9, 0xE0), (22, 0xFF),
                                            (27, 0xFF)])
def test_posterize_bits_with_clamped_shift(magnitude, mask):
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    (bits,) = ra.level_to_arg(magnitude)["Posterize"]
    for out in _both(lambda x: ra.posterize(x, bits), image):
        np.testing.assert_array_equal(out, image & mask)


def test_solarize_add_adds_to_dark_pixels_and_clips():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    for magnitude in (5, 27):
        (addition,) = ra.level_to_arg(magnitude)["SolarizeAdd"]
        want = np.where(image < 128, np.minimum(image.astype(int) + addition,
                                                255), image)
        out = ra.solarize_add(tf.constant(image), addition).numpy()
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("op", [ra.color, ra.contrast, ra.brightness,
                                ra.sharpness])
def test_enhance_ops_identity_at_m5(op):
    (factor,) = ra.level_to_arg(5)[op.__name__.capitalize()]
    assert factor == 1.0
    image = _image()
    for out in _both(lambda x: op(x, factor), image):
        np.testing.assert_array_equal(out, image)


def test_enhance_factor_values():
    image = np.array([[[0, 100, 200]]], np.uint8)
    (factor,) = ra.level_to_arg(10)["Brightness"]  # 1.9
    out = ra.brightness(tf.constant(image), factor).numpy()
    np.testing.assert_array_equal(out, [[[0, 190, 255]]])
    # Reference Contrast blends with H*W/256 (here 1/256 -> 0), not with
    # the mean grey; at 32x32 the flat image is 4.
    np.testing.assert_array_equal(
        ra.contrast(tf.constant(image), 0.5).numpy(), [[[0, 50, 100]]])
    flat = ra.contrast(tf.constant(_image()), 0.0).numpy()
    assert (flat == 4).all()
    grey = np.repeat(_image(channels=1), 3, axis=-1)
    np.testing.assert_array_equal(ra.color(tf.constant(grey), 3.0), grey)
    single = _image(channels=1)
    np.testing.assert_array_equal(ra.color(tf.constant(single), 3.0), single)


def test_autocontrast_equalize_invert_hand_values():
    image = np.array([[[50, 7, 0]], [[100, 7, 255]]], np.uint8)
    out = ra.autocontrast(tf.constant(image)).numpy()
    np.testing.assert_array_equal(out[:, 0, 0], [0, 255])
    np.testing.assert_array_equal(out[:, 0, 1], [7, 7])  # constant channel
    two = np.array([10] * 8 + [200] * 8, np.uint8).reshape(4, 4, 1)
    # step = (16 - 8) // 255 = 0: unchanged, as PIL/reference.
    np.testing.assert_array_equal(ra.equalize(tf.constant(two)), two)
    ramp = np.repeat(np.arange(256, dtype=np.uint8), 4).reshape(32, 32, 1)
    # 4 pixels per value: step = (1024 - 4) // 255 = 4, lut[v] = 4v / 4.
    np.testing.assert_array_equal(ra.equalize(tf.constant(ramp)), ramp)
    np.testing.assert_array_equal(ra.invert(tf.constant(image)), 255 - image)


# --- the policy ---

@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_keeps_dtype_and_shape(channels):
    image = _image(24, 20, channels)
    for out in _both(lambda x: ra.distort_image_with_randaugment(x, 2, 15),
                     image):
        assert out.dtype == np.uint8 and out.shape == image.shape
    batch = ra.distort_batch_with_randaugment(
        tf.constant(np.stack([image] * 3)), 2, 15)
    assert batch.dtype == tf.uint8 and batch.shape == (3,) + image.shape


def test_every_image_draws_its_own_ops():
    image = _image(16, 16)
    fn = preprocess.get_preprocess_fn("randaug(1, 9, cutout_op=False)")
    ds = tf.data.Dataset.from_tensors({"image": image}).repeat(24).map(fn)
    outs = {x["image"].numpy().tobytes() for x in ds}
    # 15 ops, 24 draws: a shared draw would give one output.
    assert len(outs) >= 5
    batch = fn({"image": tf.constant(np.stack([image] * 24))})["image"]
    assert len({b.tobytes() for b in batch.numpy()}) >= 5


def test_randaug_rejects_non_uint8_and_bad_args():
    with pytest.raises(ValueError, match="uint8"):
        ra.distort_image_with_randaugment(tf.zeros([8, 8, 3]), 2, 10)
    with pytest.raises(ValueError, match="num_layers"):
        preprocess.get_preprocess_fn("randaug(-1)")
    with pytest.raises(ValueError, match="magnitude"):
        preprocess.get_preprocess_fn("randaug(2, -3)")


def test_exclude_leaves_only_the_other_ops():
    image = _image(16, 16, channels=1)
    keep_only_invert = tuple(n for n in ra.RANDAUGMENT_OPS if n != "Invert")
    fn = preprocess.get_preprocess_fn(
        f"randaug(1, 9, exclude={keep_only_invert!r})")
    for out in _both(lambda x: fn({"image": x})["image"], image):
        np.testing.assert_array_equal(out, 255 - image)
    with pytest.raises(ValueError, match=r"unknown RandAugment op\(s\) "
                       r"\['Invrt'\]"):
        preprocess.get_preprocess_fn('randaug(2, 9, exclude=("Invrt",))')
    with pytest.raises(ValueError, match="no RandAugment op"):
        preprocess.get_preprocess_fn(
            f"randaug(2, 9, exclude={ra.RANDAUGMENT_OPS!r})")


def test_fill_sets_the_value_of_uncovered_pixels():
    # Only TranslateX at M=10 with translate_const=4: a 4 px shift either
    # way, whose uncovered columns take the fill value.
    image = np.full((8, 8, 1), 200, np.uint8)
    others = tuple(n for n in ra.RANDAUGMENT_OPS if n != "TranslateX")
    for fill in (0, 128):
        fn = preprocess.get_preprocess_fn(
            f"randaug(1, 10, translate_const=4, fill={fill}, "
            f"exclude={others!r})")
        for out in _both(lambda x: fn({"image": x})["image"], image):
            filled = out[..., 0] == fill
            assert filled.sum() == 8 * 4, out[..., 0]
            assert (out[~filled] == 200).all()
    with pytest.raises(ValueError, match="fill"):
        preprocess.get_preprocess_fn("randaug(2, 9, fill=300)")
