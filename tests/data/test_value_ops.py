"""Value, channel and key ops: eagerly and inside tf.data, hand values."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import preprocess
from tests.data import op_runs


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize_presets_and_numeric(channels):
    image = np.full((4, 4, channels), 100, np.uint8)
    for out in op_runs.tfrun("normalize('fashion_mnist')", {"image": image}):
        assert out["image"].dtype == np.float32
        np.testing.assert_allclose(
            out["image"], (100 - 0.2860 * 255) / (0.3530 * 255), rtol=1e-6)
    for out in op_runs.tfrun("normalize(50, 25)", {"image": image}):
        np.testing.assert_allclose(out["image"], 2.0)
    if channels == 3:
        out, _ = op_runs.tfrun("normalize('imagenet')", {"image": image})
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
    for out in op_runs.tfrun(pp, data):
        assert sorted(out) == ["image", "labels", "small"]
        np.testing.assert_allclose(out["image"][0, :, 0], [-1.0, 1.0])
        assert out["image"].shape == (1, 2, 3)
        assert out["small"].dtype == np.uint8 and out["small"].shape == (
            2, 2, 3)
        np.testing.assert_array_equal(out["labels"], [0, 0, 1, 0])
    rgb = op_runs.image(4, 4, 3)
    for out in op_runs.tfrun("to_rgb", {"image": rgb}):
        np.testing.assert_array_equal(out["image"], rgb)


def test_keep_missing_key_is_an_error():
    fn = preprocess.get_preprocess_fn("keep('image', 'labels')")
    with pytest.raises(KeyError, match="labels"):
        fn({"image": tf.zeros([2, 2, 1], tf.uint8)})
