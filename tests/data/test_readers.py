"""Readers of each source kind: tfds (mocked and offline-built), TFRecord
shards, pseudo-label shards, image folders; stable ids, per-host shards."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from noisy_student_tf.data import errors
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import features
from noisy_student_tf.data import pipeline
from noisy_student_tf.data import readers
from tests.data import records


def _config(**kwargs):
    return ml_collections.ConfigDict(kwargs)




@pytest.mark.parametrize("name, split, shape", [
    ("fashion_mnist", "train", (28, 28, 1)),
    ("svhn_cropped", "extra", (32, 32, 3)),
])
def test_tfds_source_with_mock_data(name, split, shape):
    with tfds.testing.mock_data(num_examples=6):
        config = _config(kind="tfds", name=name, split=split)
        rows = list(readers.read_kind(config).as_numpy_iterator())
    assert [r["id"] for r in rows] == list(range(6))
    for row in rows:
        assert row["image"].shape == shape
        assert row["image"].dtype == np.uint8
        assert row["label"].dtype == np.int64 and 0 <= row["label"] < 10


def test_unprepared_tfds_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(errors.DataError, match="not prepared.*build_tfds"):
        readers.tfds_source("fashion_mnist", "train",
                            data_dir=str(tmp_path))


def test_offline_tfds_builder_reads_60k_and_10k(tmp_path, fashion_mnist_dir):
    # ~10 s here (preparing is most of it), so it stays in the quick run.
    data_dir = str(tmp_path / "tfds")
    fashion_mnist.build_tfds(data_dir, source_dir=fashion_mnist_dir)
    # Plain tfds.load, as a user would; images are decoded below instead.
    loaded = tfds.load("fashion_mnist", data_dir=data_dir, download=False,
                       decoders={"image": tfds.decode.SkipDecoding()})
    for split, size in fashion_mnist.SIZES.items():
        batches = loaded[split].batch(10_000).as_numpy_iterator()
        labels = np.concatenate([b["label"] for b in batches])
        assert len(labels) == size
        np.testing.assert_array_equal(np.bincount(labels), [size // 10] * 10)
    # The same prepared data through our source.
    config = _config(kind="tfds", name="fashion_mnist", split="test",
                     data_dir=data_dir)
    first = next(readers.read_kind(config).as_numpy_iterator())
    assert first["image"].shape == (28, 28, 1) and first["id"] == 0


# === TFRecord shards ===


def test_tfrecord_round_trip_with_stable_ids(tmp_path):
    written = records.write_labeled_shards(tmp_path, [5, 3, 4])
    ds = readers.tfrecord_source(str(tmp_path / "train-*"), num_classes=10)
    got = {int(r["id"]): r for r in ds.as_numpy_iterator()}
    assert len(got) == 12
    for file_index, (_, images, labels) in enumerate(written):
        for i, (image, label) in enumerate(zip(images, labels)):
            record = got[file_index << 32 | i]
            assert record["image"] == image  # the encoded bytes, untouched
            assert record["label"] == label
    # Deterministic order across two reads.
    again = [int(r["id"]) for r in ds.as_numpy_iterator()]
    assert again == list(got)


def test_imagenet_one_based_labels_with_label_offset(tmp_path):
    written = records.write_labeled_shards(tmp_path, [6], label_offset=1)
    raw = next(iter(tf.data.TFRecordDataset(written[0][0])))
    example = tf.train.Example.FromString(raw.numpy())
    stored = example.features.feature["image/class/label"].int64_list.value
    assert list(stored) == [written[0][2][0] + 1]
    config = _config(kind="tfrecord", pattern=str(tmp_path / "train-*"),
                     label_offset=1, num_classes=10)
    got = records.collect(readers.read_kind(config))
    assert got["label"] == written[0][2]


@pytest.mark.parametrize("num_files, count", [(4, 2), (5, 2), (2, 3)])
def test_tfrecord_shards_cover_disjointly_with_global_ids(
        tmp_path, num_files, count):
    # >= count files: whole files per host; fewer: records per host.
    records.write_labeled_shards(tmp_path, [3] * num_files)
    pattern = str(tmp_path / "train-*")
    everything = sorted(records.collect(
        readers.tfrecord_source(pattern))["id"])
    parts = [records.collect(readers.tfrecord_source(
        pattern, shard=(k, count)))["id"] for k in range(count)]
    assert all(parts)
    assert sorted(np.concatenate(parts)) == everything  # disjoint + complete
    with pytest.raises(ValueError, match="shard index"):
        readers.tfrecord_source(pattern, shard=(count, count))



def test_pseudo_label_round_trip_and_shards(tmp_path):
    written = records.write_pseudo_label_shards(tmp_path, [4, 2, 3])
    pattern = str(tmp_path / "train-*")
    ds = readers.pseudo_label_source(pattern, num_classes=10)
    got = {int(r["id"]): r for r in ds.as_numpy_iterator()}
    for _, images, probs, ids in written:
        for image, p, record_id in zip(images, probs, ids):
            record = got[record_id]
            assert record["image"] == image
            np.testing.assert_array_equal(record["probabilities"], p)
            assert record["label"] == np.argmax(p)
            assert record["prob"] == np.float32(p.max())
    parts = [records.collect(readers.pseudo_label_source(
        pattern, 10, shard=(k, 2)))["id"] for k in range(2)]
    assert sorted(np.concatenate(parts)) == sorted(got)


def test_shards_of_the_original_code_read_with_id_minus_one(tmp_path):
    written = records.write_pseudo_label_shards(tmp_path, [3, 2],
                                                with_ids=False)
    for _, _, _, ids in written:
        assert ids == [-1] * len(ids)
    # filter_unlabel.py's exact keys, built by hand without our helper.
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[written[0][1][0]])),
        "probabilities": tf.train.Feature(float_list=tf.train.FloatList(
            value=[0.1] * 10)),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
        "prob": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1])),
    }))
    with tf.io.TFRecordWriter(str(tmp_path / "train-original")) as writer:
        writer.write(example.SerializeToString())
    got = list(readers.pseudo_label_source(
        str(tmp_path / "train-*"), 10).as_numpy_iterator())
    assert len(got) == 6
    assert all(record["id"] == -1 for record in got)
    original = [r for r in got if r["image"] == written[0][1][0]]
    assert len(original) == 2  # the helper's copy and the hand-built one


def test_bad_patterns_fail_at_construction(tmp_path):
    with pytest.raises(errors.DataError, match="No files match.*nothing-"):
        readers.tfrecord_source(str(tmp_path / "nothing-*"))
    with pytest.raises(errors.DataError, match="No files match"):
        readers.pseudo_label_source(str(tmp_path / "missing/train-*"), 10)
    with pytest.raises(errors.DataError, match="is a directory"):
        readers.list_files(str(tmp_path))


# === Image folders ===


def test_folder_source_labels_by_sorted_class_names(tmp_path):
    rows = records.write_folder(tmp_path, {"dog": 2, "ant": 3, "cat": 1})
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    ds = readers.folder_source(str(tmp_path), num_classes=3)
    got = list(ds.as_numpy_iterator())
    assert [r["label"] for r in got] == [0, 0, 0, 1, 2, 2]  # ant, cat, dog
    assert [r["id"] for r in got] == list(range(6))
    for record, (_, label, pixels) in zip(got, rows):
        assert record["label"] == label
        np.testing.assert_array_equal(
            tf.io.decode_png(record["image"]).numpy(), pixels)
    parts = [records.collect(readers.folder_source(
        str(tmp_path), shard=(k, 4)))["id"] for k in range(4)]
    assert sorted(np.concatenate(parts)) == list(range(6))


def test_folder_errors(tmp_path):
    with pytest.raises(errors.DataError, match="does not exist"):
        readers.folder_source(str(tmp_path / "missing"))
    with pytest.raises(errors.DataError, match="no class sub-folders"):
        readers.folder_source(str(tmp_path))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(errors.DataError, match="No images"):
        readers.folder_source(str(tmp_path))
    records.write_folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(errors.DataError, match="2 class folders.*=10"):
        readers.read_kind(_config(kind="folder", root=str(tmp_path),
                                  num_classes=10))


# === Batched parsing (labeling) ===


def _records(ds):
    return [(int(r["id"]), r["image"], int(r["label"]))
            for r in ds.as_numpy_iterator()]


@pytest.mark.parametrize("shard", [None, (1, 2), (0, 4)])
def test_batched_parse_yields_the_per_record_records(tmp_path, shard):
    # 12 records in batches of 5: the last batch is partial. Four shards
    # of three files shard record by record, fewer than four file-wise.
    records.write_labeled_shards(tmp_path, [5, 3, 4])
    pattern = str(tmp_path / "train-*")
    one_by_one = _records(readers.tfrecord_source(
        pattern, num_classes=10, shard=shard))
    batched = _records(readers.tfrecord_source(
        pattern, num_classes=10, shard=shard, parse_batch_size=5))
    assert batched == one_by_one and one_by_one


def test_batched_pseudo_label_parse_is_exact(tmp_path):
    records.write_pseudo_label_shards(tmp_path, [4, 3])
    pattern = str(tmp_path / "train-*")
    one_by_one = list(readers.pseudo_label_source(
        pattern, 10).as_numpy_iterator())
    batched = list(readers.pseudo_label_source(
        pattern, 10, parse_batch_size=4).as_numpy_iterator())
    assert len(batched) == len(one_by_one) == 7
    for got, want in zip(batched, one_by_one):
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_batched_parse_with_skip_corrupt_drops_only_the_bad_image(tmp_path):
    written = records.write_labeled_shards(tmp_path, [6, 5])
    path, images, labels = written[1]
    kept = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    kept[2] = features.labeled_example(images[2][:60], labels[2])
    with tf.io.TFRecordWriter(path) as writer:
        for serialized in kept:
            writer.write(serialized)
    pattern = str(tmp_path / "train-*")

    def labeled_ids(parse_batch_size):
        source = readers.tfrecord_source(
            pattern, num_classes=10, parse_batch_size=parse_batch_size)
        ds = pipeline.make_eval_dataset(source, "decode", 4,
                                        skip_corrupt=True)
        return [int(i) for batch in ds.as_numpy_iterator()
                for i in batch["id"]]

    one_by_one = labeled_ids(None)
    assert len(one_by_one) == 10 and (1 << 32 | 2) not in one_by_one
    assert labeled_ids(4) == one_by_one


def test_batched_parse_names_an_out_of_range_label(tmp_path):
    records.write_labeled_shards(tmp_path, [4, 4], labels={(1, 3): 12})
    ds = readers.tfrecord_source(str(tmp_path / "train-*"), num_classes=10,
                                 parse_batch_size=3)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"label outside \[0, 10\) in.*train-00001"):
        list(ds.as_numpy_iterator())
