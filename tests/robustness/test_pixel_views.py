"""Pixel views: a model as pixels -> logits, released data as pixels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.configs import fashion_mnist_demo
from noisy_student_tf.data import value_ops
from noisy_student_tf.robustness import datasets
from noisy_student_tf.robustness import metrics
from noisy_student_tf.robustness import model_suite
from noisy_student_tf.robustness import pixel_views

DEMO_EVAL_PP = fashion_mnist_demo.CLEAN + fashion_mnist_demo.LABELED_KEYS


def _small_model(size=32, channels=1, classes=10):
    return keras.Sequential([
        keras.layers.Input((size, size, channels)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes),
    ])


def test_split_of_the_demo_eval_pp():
    pixel, model_side = pixel_views.split_pp_string(DEMO_EVAL_PP)
    assert pixel == "decode(channels=1)|pad_to_size(32)"
    assert model_side == "normalize('fashion_mnist')"
    assert pixel_views.split_pp_string(
        "decode|center_crop(224)|value_range(-1, 1)|onehot(10)") == (
            "decode()|center_crop(224)", "value_range(-1, 1)")
    assert pixel_views.split_pp_string("decode|resize(32)") == (
        "decode()|resize(32)", "")
    for bad in ('decode|normalize("imagenet")|resize(32)',
                'decode|normalize("imagenet", key="other")'):
        with pytest.raises(ValueError, match="batched inside the model"):
            pixel_views.split_pp_string(bad)


def test_logits_fn_is_model_of_normalized_pixels_with_gradients():
    model = _small_model()
    pp_fn, logits_fn = pixel_views.logits_fn_for(model, DEMO_EVAL_PP)
    raw = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1),
                                            dtype=np.uint8)
    pixels = np.stack([pp_fn(image).numpy() for image in raw])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 32, 32, 1)
    np.testing.assert_array_equal(pixels[:, 2:30, 2:30], raw)
    x = tf.constant(pixels, tf.float32)
    normalize = value_ops.normalize("fashion_mnist")
    expected = model(np.stack([normalize({"image": p})["image"]
                               for p in pixels]), training=False)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_fn(x)
        loss = tf.reduce_sum(logits[:, 0])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    gradient = tape.gradient(loss, x)
    assert gradient is not None and float(tf.reduce_max(
        tf.abs(gradient))) > 0
    # Pixels of the wrong size for the model: a clear error.
    pp_fn, _ = pixel_views.logits_fn_for(_small_model(28), DEMO_EVAL_PP)
    with pytest.raises(ValueError, match="model expects"):
        pp_fn(raw[0])


def test_released_cifar10_c_blocks_go_through_the_pixel_pp(tmp_path):
    # Sparse files of the released shape; only the first images are set.
    labels = np.lib.format.open_memmap(tmp_path / "labels.npy", "w+",
                                       np.uint8, (50000,))
    labels[10000:10003] = [7, 8, 9]
    fog = np.lib.format.open_memmap(tmp_path / "fog.npy", "w+", np.uint8,
                                    (50000, 32, 32, 3))
    fog[10000:10003] = 200
    del labels, fog
    rcfg = model_suite.resolve_config(dict(
        cifar10_c_dir=str(tmp_path), corruptions=["fog"], severities=[2]))
    data = pixel_views.released_corruptions(
        rcfg, lambda image: image[:, :, :1], num_examples=3)
    images, block_labels = data["fog"][2]
    assert images.shape == (3, 32, 32, 1) and images.max() == 200
    np.testing.assert_array_equal(block_labels, [7, 8, 9])
    rcfg.tfds_name = "cifar10_corrupted"
    with pytest.raises(ValueError, match="not both"):
        pixel_views.released_corruptions(rcfg, None, 3)


def test_imagenet_a_maps_the_200_classes_back_to_imagenet(monkeypatch):
    # TFDS labels ImageNet-A with 1k indices; a model right on 2 of 3.
    k = [0, 5, 199]
    labels = [metrics.IMAGENET_A_CLASS_INDICES[i] for i in k]
    labels[2] = 1  # not an ImageNet-A class: never predicted
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = k
    monkeypatch.setattr(datasets, "load_tfds_robustness", lambda *a: (
        tf.data.Dataset.from_tensor_slices((images, np.int64(labels)))))

    def logits_fn(x):
        index = tf.gather(metrics.IMAGENET_A_CLASS_INDICES,
                          tf.cast(x[:, 0, 0, 0], tf.int32))
        return tf.one_hot(index, 1000)

    result = pixel_views.imagenet_a_accuracy(logits_fn, lambda x: x)
    assert result == {"top1": pytest.approx(2 / 3), "num_examples": 3}
