"""Sources from configs: Fashion-MNIST arrays, per-class splits, `select`
and `limit` (also on sharded TFRecords), counts."""

import ml_collections
import numpy as np
import pytest

from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import sources
from tests.data import records


def _config(**kwargs):
    return ml_collections.ConfigDict(kwargs)


# === Fashion-MNIST (Debian IDX files) ===


@pytest.mark.parametrize("split, size, first", [
    ("train", 60_000, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]),
    ("test", 10_000, [9, 2, 1, 1, 6]),
])
def test_fashion_mnist_arrays(fashion_mnist_dir, split, size, first):
    images, labels = fashion_mnist.load_arrays(split, fashion_mnist_dir)
    assert images.shape == (size, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels[:len(first)], first)
    # Balanced classes: 6,000 per class in train, 1,000 in test.
    np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                  [size // 10] * 10)
    assert 0 < images.mean() < 255


def test_fashion_mnist_source_records(fashion_mnist_dir):
    config = _config(kind="fashion_mnist", split="test",
                     data_dir=fashion_mnist_dir)
    first = list(sources.make_source(config).take(5).as_numpy_iterator())
    assert [r["label"] for r in first] == [9, 2, 1, 1, 6]
    assert [r["id"] for r in first] == [0, 1, 2, 3, 4]
    assert first[0]["image"].shape == (28, 28, 1)
    assert sources.count_records(config) == 10_000


def test_per_class_split_is_exact_disjoint_and_seeded(fashion_mnist_dir):
    _, labels = fashion_mnist.load_arrays("train", fashion_mnist_dir)
    parts = sources.select_per_class(labels, 400, seed=0)
    labeled, unlabeled = parts["labeled"], parts["unlabeled"]
    assert len(labeled) == 4_000 and len(unlabeled) == 56_000
    assert len(parts["validation"]) == 0
    np.testing.assert_array_equal(np.bincount(labels[labeled]), [400] * 10)
    assert not np.intersect1d(labeled, unlabeled).size
    np.testing.assert_array_equal(np.union1d(labeled, unlabeled),
                                  np.arange(60_000))
    again = sources.select_per_class(labels, 400, seed=0)
    np.testing.assert_array_equal(again["labeled"], labeled)
    other = sources.select_per_class(labels, 400, seed=1)
    assert not np.array_equal(other["labeled"], labeled)


def test_validation_split_is_disjoint_from_both(fashion_mnist_dir):
    _, labels = fashion_mnist.load_arrays("train", fashion_mnist_dir)
    parts = sources.select_per_class(labels, 400, seed=3,
                                     validation_per_class=100)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == {"labeled": 4_000, "validation": 1_000,
                     "unlabeled": 55_000}
    np.testing.assert_array_equal(
        np.bincount(labels[parts["validation"]]), [100] * 10)
    joined = np.concatenate(list(parts.values()))
    np.testing.assert_array_equal(np.sort(joined), np.arange(60_000))
    with pytest.raises(sources.DataError, match="fewer than"):
        sources.select_per_class(labels, 6_000, seed=0,
                                 validation_per_class=1)


def test_make_source_select_and_limit(fashion_mnist_dir):
    select = dict(per_class=400, seed=0, part="labeled")
    config = _config(kind="fashion_mnist", split="train",
                     data_dir=fashion_mnist_dir, select=select)
    assert sources.count_records(config) == 4_000
    ids = np.concatenate([b["id"] for b in sources.make_source(config).batch(
        4_000).as_numpy_iterator()])
    _, labels = fashion_mnist.load_arrays("train", fashion_mnist_dir)
    expected = sources.select_per_class(labels, 400, seed=0)["labeled"]
    np.testing.assert_array_equal(ids, expected)  # ids are positions
    limited = _config(kind="fashion_mnist", split="train",
                      data_dir=fashion_mnist_dir, limit=7)
    assert sources.count_records(limited) == 7

    with pytest.raises(ValueError, match="Unknown source kind"):
        sources.make_source(_config(kind="csv"))


def test_select_on_sharded_tfrecords_matches_unsharded(tmp_path):
    records.write_labeled_shards(tmp_path, [20, 20, 20, 20])
    config = _config(kind="tfrecord", pattern=str(tmp_path / "train-*"),
                     num_classes=10,
                     select=dict(per_class=2, seed=0, part="labeled"))
    whole = records.collect(sources.make_source(config))
    assert sorted(np.bincount(whole["label"])) == [2] * 10
    parts = [records.collect(sources.make_source(config, shard=(k, 2)))["id"]
             for k in range(2)]
    assert sorted(np.concatenate(parts)) == sorted(whole["id"])
