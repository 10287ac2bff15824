"""The decode op: exact PNG, close JPEG, corrupt images named as such."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import errors
from noisy_student_tf.data import preprocess
from tests.data import op_runs


@pytest.mark.parametrize("channels", [1, 3])
def test_decode_png_exact_jpeg_close_and_uint8_passthrough(channels):
    image = op_runs.image(20, 24, channels)
    png = tf.io.encode_png(image).numpy()
    pp = f"decode(channels={channels})"
    for out in op_runs.tfrun(pp, {"image": png}, True):
        np.testing.assert_array_equal(out["image"], image)
    smooth = np.tile(np.arange(24, dtype=np.uint8)[None, :, None] * 8,
                     (20, 1, channels))
    jpeg = tf.io.encode_jpeg(smooth, quality=95).numpy()
    for out in op_runs.tfrun(pp, {"image": jpeg}):
        assert np.abs(out["image"].astype(int) - smooth).max() <= 8
    for out in op_runs.tfrun("decode", {"image": image}):
        np.testing.assert_array_equal(out["image"], image)


def _truncated_png():
    png = tf.io.encode_png(op_runs.image(16, 16)).numpy()
    return png[:len(png) // 2]


@pytest.mark.parametrize("payload", [
    b"not an image", b"", "truncated",
    # Not UTF-8: once a UnicodeDecodeError from TensorFlow's error text.
    b"\xff\xfe\x80\x81 garbage \x99"])
def test_decode_corrupt_image_raises_with_message(payload):
    data = _truncated_png() if payload == "truncated" else payload
    fn = preprocess.get_preprocess_fn("decode")
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt image"):
        fn({"image": tf.constant(data)})
    ds = tf.data.Dataset.from_tensors({"image": tf.constant(data)}).map(fn)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="corrupt image") as info:
        next(iter(ds))
    assert errors.is_corrupt_image_error(info.value)


def test_is_corrupt_image_error_knows_decoder_messages():
    assert errors.is_corrupt_image_error(
        "jpeg::Uncompress failed. Invalid JPEG")
    assert errors.is_corrupt_image_error(
        RuntimeError("Invalid PNG data, size 9"))
    assert not errors.is_corrupt_image_error("Out of range: End of sequence")
