"""Loaders for released robustness benchmarks, when a user has them.

Two sources, neither downloaded here:

* The released CIFAR-10-C / CIFAR-100-C `.npy` files (Zenodo 2535967 /
  3555552, from `make_cifar_c.py`): `<corruption>.npy` holds 50000 uint8
  32x32x3 images, severities 1..5 in blocks of 10000 in test-set order, and
  `labels.npy` the matching 50000 labels.
* TFDS builders already prepared under a data_dir: `cifar10_corrupted`
  (the same Zenodo release, configs `<name>_<severity>`, split "test"),
  `imagenet2012_corrupted` (TFDS corrupts ImageNet validation itself when
  preparing; split "validation") and `imagenet_a` (split "test"; score it
  with `metrics.imagenet_a_logits`). `download=False`: a missing dataset is
  an error naming it, never a silent multi-GB download.

On-the-fly corruptions (`corruptions.corrupt`) are the fallback when no
release is available.
"""

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from noisy_student_tf.robustness.corruptions import CORRUPTIONS
from noisy_student_tf.robustness.corruptions import SEVERITIES

CIFAR_C_BLOCK = 10000  # test images per severity in CIFAR-10/100-C

# cifar10_corrupted names two corruptions differently from ImageNet-C.
_TFDS_CIFAR_NAMES = {"glass_blur": "frosted_glass_blur",
                     "elastic_transform": "elastic"}
_DEFAULT_SPLITS = {"cifar10_corrupted": "test",
                   "imagenet2012_corrupted": "validation",
                   "imagenet_a": "test"}


def load_cifar10_c(directory: str,
                   corruptions: Sequence[str] = CORRUPTIONS,
                   severities: Sequence[int] = SEVERITIES) -> dict:
    """Reads the released CIFAR-10-C (or CIFAR-100-C) `.npy` layout.

    Files are memory-mapped, so only the blocks used are read.

    Args:
        directory: folder holding `<corruption>.npy` and `labels.npy`.
        corruptions: corruption names (file stems) to load.
        severities: severities 1..5 to keep.

    Returns:
        {corruption: {severity: (images uint8 [10000, 32, 32, 3],
        labels int64 [10000])}}.

    Raises:
        FileNotFoundError: if a needed file is missing.
        ValueError: on a bad severity or an unexpected array length.
    """
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be in {SEVERITIES}, got {bad}")
    labels_path = os.path.join(directory, "labels.npy")
    if not os.path.exists(labels_path):
        raise FileNotFoundError(
            f"{labels_path} not found: expected the CIFAR-10-C release "
            "(<corruption>.npy + labels.npy, Zenodo 2535967)")
    labels = np.load(labels_path).astype(np.int64)
    out = {}
    for name in corruptions:
        path = os.path.join(directory, f"{name}.npy")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found")
        images = np.load(path, mmap_mode="r")
        if len(images) != len(SEVERITIES) * CIFAR_C_BLOCK or len(
                labels) != len(images):
            raise ValueError(
                f"{path}: expected {len(SEVERITIES) * CIFAR_C_BLOCK} images "
                f"and labels, got {len(images)} and {len(labels)}")
        out[name] = {}
        for s in severities:
            block = slice((s - 1) * CIFAR_C_BLOCK, s * CIFAR_C_BLOCK)
            out[name][s] = (images[block], labels[block])
    return out


def tfds_corruption_name(dataset: str, corruption: str,
                         severity: int) -> str:
    """TFDS builder name, e.g. "cifar10_corrupted/frosted_glass_blur_3".

    Args:
        dataset: "cifar10_corrupted" or "imagenet2012_corrupted".
        corruption: an ImageNet-C corruption name.
        severity: 1..5.

    Returns:
        "<dataset>/<config>_<severity>".
    """
    if dataset == "cifar10_corrupted":
        corruption = _TFDS_CIFAR_NAMES.get(corruption, corruption)
    return f"{dataset}/{corruption}_{severity}"


def load_tfds_robustness(name: str, data_dir: Optional[str] = None,
                         split: Optional[str] = None,
                         batch_size: Optional[int] = None) -> tf.data.Dataset:
    """Opens an already prepared TFDS robustness dataset.

    Args:
        name: builder name with config, e.g. `tfds_corruption_name(...)` or
            "imagenet_a".
        data_dir: TFDS data directory (None: the TFDS default).
        split: split; default "test" ("validation" for
            imagenet2012_corrupted).
        batch_size: batch the (image uint8, label) pairs if given.

    Returns:
        A tf.data.Dataset of (image, label) pairs, unshuffled.

    Raises:
        FileNotFoundError: naming the dataset if it is not prepared in
            data_dir.
    """
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in "
            f"{data_dir or 'the default TFDS data_dir'}; prepare it first "
            f"(tfds build {name.split('/')[0]} --data_dir=...) or pass the "
            "right data_dir. Downloads are disabled here on purpose.")
    base = name.split("/")[0]
    ds = builder.as_dataset(split=split or _DEFAULT_SPLITS.get(base, "test"),
                            as_supervised=True, shuffle_files=False)
    return ds.batch(batch_size) if batch_size else ds
