"""Pixel-space views of models and data for the robustness suite.

The suite and the attacks see a model as `logits_fn(pixels)`: float32
pixels on the 0-255 scale at its input size, with the normalisation of its
eval pp string moved inside (`logits_fn_for`). Every image scored goes
through the pixel part of that pp string, so released data of another size
(CIFAR-10-C at 32 px, ImageNet-C / ImageNet-A at 224 px or any size) reach
the model exactly like its clean eval images. Deliberate choice for the
224 px ImageNet-C images: the eval crop applies again (augmix's Resize +
CenterCrop protocol; docs/reference/related_methods.md section 4.2), not
hendrycks' no-op crop.

Released corrupted sets replace the on-the-fly corruptions: the first
`num_examples` images of every (corruption, severity) block, which for
CIFAR-10-C and TFDS `cifar10_corrupted` (test-set order) are the same
images as the first clean CIFAR-10 test images. Blocks are loaded one at a
time as the suite asks for them, so ImageNet-sized sets never sit in
memory at once. ImageNet-A is scored on all its images with the 1000-way
logits restricted to its 200 classes.
"""

from collections import abc

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import preprocess
from noisy_student_tf.data import sources
from noisy_student_tf.robustness import datasets
from noisy_student_tf.robustness import metrics

TFDS_NAMES = ("cifar10_corrupted", "imagenet2012_corrupted", "imagenet_a")
# Ops that only read or write labels: irrelevant to pixels and logits.
_LABEL_OPS = ("keep", "onehot")
# Element-wise ops that run batched, inside the gradient path.
_MODEL_SIDE_OPS = ("normalize", "value_range")


# === Pixels and logits ===


def split_pp_string(pp_string):
    """Splits an eval pp string into pixel ops and model-side ops.

    Args:
      pp_string: e.g. `decode(channels=1)|pad_to_size(32)|
        normalize("fashion_mnist")|keep("image", "label")`.

    Returns:
      (pixel pp string, model-side pp string): everything before the first
      normalize / value_range, and that op with everything after it;
      label-only ops (keep, onehot) are dropped from both.

    Raises:
      ValueError: an op after normalize / value_range cannot run on a
        pixel batch inside the model (anything but normalize / value_range
        on "image").
    """
    specs = [s for s in preprocess.parse_pp_string(pp_string)
             if s.name not in _LABEL_OPS]
    first = next((i for i, s in enumerate(specs)
                  if s.name in _MODEL_SIDE_OPS), len(specs))
    tail = specs[first:]
    bad = [s for s in tail if s.name not in _MODEL_SIDE_OPS
           or s.kwargs.get("key", "image") != "image"
           or s.kwargs.get("outkey") not in (None, "image")]
    if bad:
        raise ValueError(
            f"eval pp {pp_string!r}: {bad[0]} comes after "
            f"{tail[0].name}, but only {' / '.join(_MODEL_SIDE_OPS)} on "
            "'image' can run batched inside the model for the pixel-space "
            "attacks; move it before the normalisation")
    return ("|".join(str(s) for s in specs[:first]),
            "|".join(str(s) for s in tail))


def logits_fn_for(model, eval_pp_string):
    """Pixel-space view of a model with its eval preprocessing.

    Args:
      model: a Keras classifier returning logits.
      eval_pp_string: the model's eval pp string.

    Returns:
      (pp_fn, logits_fn). `pp_fn(image)` maps one raw source image (uint8
      or encoded bytes) to uint8 [H, W, C] pixels at the model's input size
      (usable in tf.data.map). `logits_fn(pixels)` maps float32 [N, H, W,
      C] pixels on 0-255 to float32 logits: normalisation, then the model
      with training=False, so gradients flow back to the pixels.

    Raises:
      ValueError: see `split_pp_string`; `pp_fn` raises when the pixel ops
        do not give uint8 pixels of the model's input shape.
    """
    pixel_pp, model_pp = split_pp_string(eval_pp_string)
    pixel_fn = preprocess.get_preprocess_fn(pixel_pp)
    model_side_fn = preprocess.get_preprocess_fn(model_pp)
    expected = tuple(model.input_shape[1:])

    def pp_fn(image):
        pixels = pixel_fn({"image": image})["image"]
        shape = tuple(pixels.shape)
        if pixels.dtype != tf.uint8 or not pixels.shape.is_compatible_with(
                expected):
            raise ValueError(
                f"eval pp {pixel_pp!r} (before normalisation) gives "
                f"{pixels.dtype.name} {shape} pixels; the model expects "
                f"uint8 {expected}: end the pixel ops at the model size "
                "(e.g. center_crop / resize / pad_to_size)")
        return tf.ensure_shape(pixels, expected)

    def logits_fn(pixels):
        x = model_side_fn({"image": tf.cast(pixels, tf.float32)})["image"]
        return tf.cast(model(x, training=False), tf.float32)

    return pp_fn, logits_fn


# === Data ===


def load_pixels(dataset, pp_fn, limit=None, batch_size=256):
    """Pixels and labels of the first `limit` (image, label) pairs.

    Args:
      dataset: tf.data.Dataset of (raw image, label) pairs.
      pp_fn: image -> uint8 pixels at the model size
        (`logits_fn_for`).
      limit: keep only this many (None: all).
      batch_size: preprocessing batch size.

    Returns:
      (uint8 [N, H, W, C] pixels, int64 [N] labels).

    Raises:
      sources.DataError: the dataset is empty.
    """
    if limit:
        dataset = dataset.take(limit)
    dataset = dataset.map(
        lambda image, label: (pp_fn(image), tf.cast(label, tf.int64)),
        num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    images, labels = [], []
    for x, y in dataset.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise sources.DataError("the robustness eval data are empty")
    return np.concatenate(images), np.concatenate(labels).reshape(-1)


class _LazyBlocks(abc.Mapping):
    """A read-only mapping whose values are loaded when looked up."""

    def __init__(self, keys, load):
        self._keys = list(keys)
        self._load = load

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        return self._load(key)

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)


def released_corruptions(rcfg, pp_fn, num_examples, batch_size=256):
    """Released corrupted data named by a robustness config, or None.

    Args:
      rcfg: robustness settings; uses `cifar10_c_dir`, or `tfds_name`
        "cifar10_corrupted" / "imagenet2012_corrupted" with
        `tfds_data_dir`, and `corruptions`, `severities`.
      pp_fn: image -> model pixels.
      num_examples: images per (corruption, severity) block.
      batch_size: preprocessing batch size.

    Returns:
      None when no released corruptions are configured, else a lazy
      {corruption: {severity: (pixels, labels)}} for
      `run_robustness_suite(corrupted_data=...)`.

    Raises:
      ValueError: both `cifar10_c_dir` and a TFDS corrupted set, or an
        unknown `tfds_name`.
      FileNotFoundError: the data are missing (checked up front).
    """
    name = rcfg.get("tfds_name")
    if name is not None and name not in TFDS_NAMES:
        raise ValueError(f"unknown tfds_name {name!r}; valid: "
                         f"{', '.join(TFDS_NAMES)}")
    tfds_corrupted = name in ("cifar10_corrupted", "imagenet2012_corrupted")
    if rcfg.get("cifar10_c_dir") and tfds_corrupted:
        raise ValueError("give either cifar10_c_dir or a corrupted TFDS "
                         f"set, not both (tfds_name={name!r})")
    corruptions = list(rcfg.corruptions or ())
    severities = list(rcfg.severities)
    if not corruptions:
        return None
    if rcfg.get("cifar10_c_dir"):
        # Memory-mapped, and fails now on a missing file.
        arrays = datasets.load_cifar10_c(rcfg.cifar10_c_dir, corruptions,
                                         severities)

        def load(corruption, severity):
            images, labels = arrays[corruption][severity]
            ds = tf.data.Dataset.from_tensor_slices(
                (np.asarray(images[:num_examples]),
                 np.asarray(labels[:num_examples])))
            return load_pixels(ds, pp_fn, num_examples, batch_size)
    elif tfds_corrupted:
        data_dir = rcfg.get("tfds_data_dir")
        for corruption in corruptions:  # fail before any model work
            for severity in severities:
                datasets.load_tfds_robustness(datasets.tfds_corruption_name(
                    name, corruption, severity), data_dir)

        def load(corruption, severity):
            ds = datasets.load_tfds_robustness(
                datasets.tfds_corruption_name(name, corruption, severity),
                data_dir)
            return load_pixels(ds, pp_fn, num_examples, batch_size)
    else:
        return None
    return _LazyBlocks(corruptions, lambda c: _LazyBlocks(
        severities, lambda s: load(c, s)))


def imagenet_a_accuracy(logits_fn, pp_fn, data_dir=None, batch_size=256):
    """Top-1 on the prepared TFDS `imagenet_a` (all 7,500 images).

    TFDS labels ImageNet-A with ImageNet-1k indices, so the argmax over
    the 200 restricted logits is mapped back through the class mask.

    Args:
      logits_fn: pixels -> 1000-way logits.
      pp_fn: image -> model pixels.
      data_dir: TFDS data directory (None: the default).
      batch_size: evaluation batch size.

    Returns:
      {"top1": accuracy in [0, 1], "num_examples": N}.

    Raises:
      FileNotFoundError: imagenet_a is not prepared in data_dir.
      ValueError: the model does not have 1000 outputs.
    """
    ds = datasets.load_tfds_robustness("imagenet_a", data_dir)
    ds = ds.map(lambda image, label: (pp_fn(image), label),
                num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    to_1k = np.asarray(metrics.IMAGENET_A_CLASS_INDICES)
    predict = tf.function(
        lambda x: tf.argmax(metrics.imagenet_a_logits(
            logits_fn(tf.cast(x, tf.float32))), axis=-1),
        reduce_retracing=True, autograph=False)
    hits = total = 0
    for images, labels in ds.as_numpy_iterator():
        predictions = to_1k[predict(images).numpy()]
        hits += int(np.sum(predictions == labels.reshape(-1)))
        total += len(labels)
    return {"top1": hits / max(total, 1), "num_examples": total}
