"""Preprocessing ops: each runs eagerly and inside tf.data with hand values."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import ops
from noisy_student_tf.data import preprocess


def _spec(value, unknown_hw):
    value = tf.convert_to_tensor(value)
    shape = value.shape.as_list()
    if unknown_hw and len(shape) == 3:
        shape[:2] = [None, None]
    return tf.TensorSpec(shape, value.dtype)


def tfrun(pp, data, unknown_hw=False):
    """Runs a pp string eagerly and in `Dataset.map`; returns both outputs.

    With `unknown_hw` the dataset feeds images of unknown height and width
    (as decoded images are). Outputs are dicts of numpy arrays.
    """
    fn = preprocess.get_preprocess_fn(pp)
    eager = {k: np.asarray(v) for k, v in fn(dict(data)).items()}
    signature = {k: _spec(v, unknown_hw) for k, v in data.items()}
    ds = tf.data.Dataset.from_generator(
        lambda: iter([data]), output_signature=signature).map(fn)
    graph = {k: v.numpy() for k, v in next(iter(ds)).items()}
    return eager, graph


def _image(height=32, width=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


# Every registered op except randaug (tests/data/test_randaugment.py), with
# the output image shape for a 40x48 input.
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
    data = {"image": _image(40, 48, channels),
            "label": np.int64(3), "id": np.int64(7)}
    for out in tfrun(pp, data, unknown_hw):
        assert out["image"].dtype == np.uint8
        assert out["image"].shape == hw + (channels,)
        assert out["label"] == 3 and out["id"] == 7


@pytest.mark.parametrize("channels", [1, 3])
def test_decode_png_exact_jpeg_close_and_uint8_passthrough(channels):
    image = _image(20, 24, channels)
    png = tf.io.encode_png(image).numpy()
    for out in tfrun(f"decode(channels={channels})", {"image": png}, True):
        np.testing.assert_array_equal(out["image"], image)
    smooth = np.tile(np.arange(24, dtype=np.uint8)[None, :, None] * 8,
                     (20, 1, channels))
    jpeg = tf.io.encode_jpeg(smooth, quality=95).numpy()
    for out in tfrun(f"decode(channels={channels})", {"image": jpeg}):
        assert np.abs(out["image"].astype(int) - smooth).max() <= 8
    for out in tfrun("decode", {"image": image}):
        np.testing.assert_array_equal(out["image"], image)


def _truncated_png():
    png = tf.io.encode_png(_image(16, 16)).numpy()
    return png[:len(png) // 2]


@pytest.mark.parametrize("payload", [b"not an image", b"", "truncated"])
def test_decode_corrupt_image_raises_with_message(payload):
    data = _truncated_png() if payload == "truncated" else payload
    fn = preprocess.get_preprocess_fn("decode")
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt image"):
        fn({"image": tf.constant(data)})
    ds = tf.data.Dataset.from_tensors({"image": tf.constant(data)}).map(fn)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="corrupt image") as info:
        next(iter(ds))
    assert ops.is_corrupt_image_error(info.value)


def test_is_corrupt_image_error_knows_decoder_messages():
    assert ops.is_corrupt_image_error("jpeg::Uncompress failed. Invalid JPEG")
    assert ops.is_corrupt_image_error(RuntimeError("Invalid PNG data, size 9"))
    assert not ops.is_corrupt_image_error("Out of range: End of sequence")


def test_center_crop_window_matches_reference_arithmetic():
    image = _image(40, 48)
    # side = int(0.8 * 40) = 32, top = (40 - 32 + 1) // 2 = 4, left = 8; a
    # 32 -> 32 resize is the identity.
    for out in tfrun("center_crop(32, crop_pct=0.8)", {"image": image}):
        np.testing.assert_array_equal(out["image"], image[4:36, 8:40])
    # Default crop_pct = 32 / (32 + 32) = 0.5 of min(64, 64).
    image = _image(64, 64)
    for out in tfrun("center_crop(32)", {"image": image}, True):
        np.testing.assert_array_equal(out["image"], image[16:48, 16:48])


def test_inception_crop_falls_back_to_center_crop():
    # area_min = 1 only admits the whole (square) image, which the
    # reference treats as a failed sample and centre-crops instead.
    image = _image(64, 64)
    for out in tfrun("inception_crop(32, area_min=1.0)", {"image": image}):
        np.testing.assert_array_equal(out["image"], image[16:48, 16:48])


def test_inception_crop_varies_between_calls():
    fn = preprocess.get_preprocess_fn("inception_crop(16)")
    image = tf.constant(_image(64, 64))
    outs = {fn({"image": image})["image"].numpy().tobytes() for _ in range(6)}
    assert len(outs) > 1


def test_resize_rounds_and_keeps_flat_images_flat():
    flat = np.full((10, 14, 3), 201, np.uint8)
    for method in ("bicubic", "bicubic_tf1", "bilinear"):
        for out in tfrun(f"resize(23, method={method!r})", {"image": flat}):
            assert (out["image"] == 201).all()
    # Bicubic overshoot on a hard edge is clipped, not wrapped.
    edge = np.zeros((8, 8, 1), np.uint8)
    edge[:, 4:] = 255
    for out in tfrun("resize(32)", {"image": edge}):
        assert out["image"][:, :8].max() <= 1 and out["image"].max() == 255


def test_pad_to_size_centres_with_value_and_rejects_larger():
    image = _image(28, 28, 1)
    for out in tfrun("pad_to_size(32, value=9)", {"image": image}, True):
        np.testing.assert_array_equal(out["image"][2:30, 2:30], image)
        assert (out["image"][:2] == 9).all() and (out["image"][30:] == 9).all()
    fn = preprocess.get_preprocess_fn("pad_to_size(16)")
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger"):
        fn({"image": tf.constant(image)})


def test_flip_lr_returns_image_or_mirror_and_both_occur():
    image = _image(8, 8)
    fn = preprocess.get_preprocess_fn("flip_lr")
    seen = set()
    for _ in range(20):
        out = fn({"image": tf.constant(image)})["image"].numpy()
        assert (out == image).all() or (out == image[:, ::-1]).all()
        seen.add((out == image).all())
    assert seen == {True, False}


def test_pad_crop_is_a_window_of_the_reflect_padded_image():
    image = _image(32, 32)
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)], mode="reflect")
    windows = {padded[y:y + 32, x:x + 32].tobytes()
               for y in range(9) for x in range(9)}
    for out in tfrun("pad_crop(32, pad=4)", {"image": image}, True):
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


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize_presets_and_numeric(channels):
    image = np.full((4, 4, channels), 100, np.uint8)
    for out in tfrun("normalize('fashion_mnist')", {"image": image}):
        assert out["image"].dtype == np.float32
        np.testing.assert_allclose(
            out["image"], (100 - 0.2860 * 255) / (0.3530 * 255), rtol=1e-6)
    for out in tfrun("normalize(50, 25)", {"image": image}):
        np.testing.assert_allclose(out["image"], 2.0)
    if channels == 3:
        out, _ = tfrun("normalize('imagenet')", {"image": image})
        mean = np.array([0.485, 0.456, 0.406]) * 255
        std = np.array([0.229, 0.224, 0.225]) * 255
        np.testing.assert_allclose(out["image"][0, 0], (100 - mean) / std,
                                   rtol=1e-5)
    else:
        with pytest.raises(ValueError, match="3-value mean"):
            preprocess.get_preprocess_fn("normalize('svhn')")(
                {"image": tf.constant(image)})


def test_value_range_to_rgb_onehot_keep_and_outkey():
    image = np.array([[[0], [255]]], np.uint8)
    data = {"image": image, "label": np.int64(2), "id": np.int64(5)}
    pp = ("to_rgb|resize(2, method='nearest', outkey='small')|"
          "value_range(-1, 1)|onehot(4)|keep('image', 'labels', 'small')")
    for out in tfrun(pp, data):
        assert sorted(out) == ["image", "labels", "small"]
        np.testing.assert_allclose(out["image"][0, :, 0], [-1.0, 1.0])
        assert out["image"].shape == (1, 2, 3)
        assert out["small"].dtype == np.uint8 and out["small"].shape == (
            2, 2, 3)
        np.testing.assert_array_equal(out["labels"], [0, 0, 1, 0])
    rgb = _image(4, 4, 3)
    for out in tfrun("to_rgb", {"image": rgb}):
        np.testing.assert_array_equal(out["image"], rgb)


def test_keep_missing_key_is_an_error():
    fn = preprocess.get_preprocess_fn("keep('image', 'labels')")
    with pytest.raises(KeyError, match="labels"):
        fn({"image": tf.zeros([2, 2, 1], tf.uint8)})
