"""Geometry ops: each runs eagerly and inside tf.data with hand values."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import preprocess
from tests.data import op_runs


# Every registered op with uint8 output, decode included (randaug:
# test_randaugment.py), with the output image shape for a 40x48 input.
_SHAPE_CASES = [
    ("decode", (40, 48)),
    ("inception_crop(32)", (32, 32)),
    ("center_crop(32)", (32, 32)),
    ("center_crop((24, 32), crop_pct=0.9)", (24, 32)),
    ("resize(16)", (16, 16)),
    ("resize((16, 20), method='bilinear')", (16, 20)),
    ("resize(16, method='bicubic_tf1')", (16, 16)),
    ("pad_to_size(64)", (64, 64)),
    ("flip_lr", (40, 48)),
    ("pad_crop(32)", (32, 32)),
    ("cutout(16)", (40, 48)),
]


@pytest.mark.parametrize("unknown_hw", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("pp,hw", _SHAPE_CASES)
def test_image_ops_keep_uint8_channels_and_other_keys(
        pp, hw, channels, unknown_hw):
    data = {"image": op_runs.image(40, 48, channels),
            "label": np.int64(3), "id": np.int64(7)}
    for out in op_runs.tfrun(pp, data, unknown_hw):
        assert out["image"].dtype == np.uint8
        assert out["image"].shape == hw + (channels,)
        assert out["label"] == 3 and out["id"] == 7



def test_center_crop_window_matches_reference_arithmetic():
    image = op_runs.image(40, 48)
    # side = int(0.8 * 40) = 32, top = (40 - 32 + 1) // 2 = 4, left = 8; a
    # 32 -> 32 resize is the identity.
    pp = "center_crop(32, crop_pct=0.8)"
    for out in op_runs.tfrun(pp, {"image": image}):
        np.testing.assert_array_equal(out["image"], image[4:36, 8:40])
    # Default crop_pct = 32 / (32 + 32) = 0.5 of min(64, 64).
    image = op_runs.image(64, 64)
    for out in op_runs.tfrun("center_crop(32)", {"image": image}, True):
        np.testing.assert_array_equal(out["image"], image[16:48, 16:48])


def test_inception_crop_falls_back_to_center_crop():
    # area_min = 1 only admits the whole (square) image, which the
    # reference treats as a failed sample and centre-crops instead.
    image = op_runs.image(64, 64)
    pp = "inception_crop(32, area_min=1.0)"
    for out in op_runs.tfrun(pp, {"image": image}):
        np.testing.assert_array_equal(out["image"], image[16:48, 16:48])


def test_inception_crop_varies_between_calls():
    fn = preprocess.get_preprocess_fn("inception_crop(16)")
    image = tf.constant(op_runs.image(64, 64))
    outs = {fn({"image": image})["image"].numpy().tobytes() for _ in range(6)}
    assert len(outs) > 1


def test_resize_rounds_and_keeps_flat_images_flat():
    flat = np.full((10, 14, 3), 201, np.uint8)
    for method in ("bicubic", "bicubic_tf1", "bilinear"):
        pp = f"resize(23, method={method!r})"
        for out in op_runs.tfrun(pp, {"image": flat}):
            assert (out["image"] == 201).all()
    # Bicubic overshoot on a hard edge is clipped, not wrapped.
    edge = np.zeros((8, 8, 1), np.uint8)
    edge[:, 4:] = 255
    for out in op_runs.tfrun("resize(32)", {"image": edge}):
        assert out["image"][:, :8].max() <= 1 and out["image"].max() == 255


def test_pad_to_size_centres_with_value_and_rejects_larger():
    image = op_runs.image(28, 28, 1)
    pp = "pad_to_size(32, value=9)"
    for out in op_runs.tfrun(pp, {"image": image}, True):
        np.testing.assert_array_equal(out["image"][2:30, 2:30], image)
        assert (out["image"][:2] == 9).all() and (out["image"][30:] == 9).all()
    fn = preprocess.get_preprocess_fn("pad_to_size(16)")
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger"):
        fn({"image": tf.constant(image)})


def test_flip_lr_returns_image_or_mirror_and_both_occur():
    image = op_runs.image(8, 8)
    fn = preprocess.get_preprocess_fn("flip_lr")
    seen = set()
    for _ in range(20):
        out = fn({"image": tf.constant(image)})["image"].numpy()
        assert (out == image).all() or (out == image[:, ::-1]).all()
        seen.add((out == image).all())
    assert seen == {True, False}


def test_pad_crop_is_a_window_of_the_reflect_padded_image():
    image = op_runs.image(32, 32)
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)], mode="reflect")
    windows = {padded[y:y + 32, x:x + 32].tobytes()
               for y in range(9) for x in range(9)}
    for out in op_runs.tfrun("pad_crop(32, pad=4)", {"image": image}, True):
        assert out["image"].tobytes() in windows


def test_cutout_fills_one_clipped_square_with_128():
    image = np.full((32, 32, 3), 7, np.uint8)
    fn = preprocess.get_preprocess_fn("cutout(16)")
    sizes = []
    for _ in range(30):
        out = fn({"image": tf.constant(image)})["image"].numpy()
        rows, cols = np.nonzero((out == 128).all(-1))
        assert set(np.unique(out)) <= {7, 128}
        assert (out == 128).any(-1).sum() == len(rows)  # all channels
        height = rows.max() - rows.min() + 1
        width = cols.max() - cols.min() + 1
        assert len(rows) == height * width  # one solid rectangle
        sizes.append((height, width))
    assert max(sizes) == (16, 16) and min(sizes) < (16, 16)
