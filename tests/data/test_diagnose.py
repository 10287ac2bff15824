"""Bad input: each failure becomes one clear line naming the file/record;
`skip_corrupt` drops bad records and keeps the rest."""

import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import diagnose
from noisy_student_tf.data import features
from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from tests.data import records

PP = 'decode|keep("image", "label", "id")'


def _config(**kwargs):
    return ml_collections.ConfigDict(kwargs)


def _tfrecord_config(directory, **kwargs):
    return _config(kind="tfrecord", pattern=os.path.join(directory, "*"),
                   num_classes=10, **kwargs)


def _iterate_error(dataset, steps=None):
    """The error iterating `dataset` raises (fails the test if none)."""
    with pytest.raises(tf.errors.OpError) as info:
        for step, _ in enumerate(dataset):
            if steps is not None and step >= steps:
                break
    return info.value


def _explain(error, config, pp=PP):
    assert diagnose.is_input_error(error)
    explained = diagnose.explain_data_error(error, config, pp)
    assert isinstance(explained, sources.DataError)
    message = str(explained)
    assert "\n" not in message
    return message


def _replace_record(path, index, new_serialized):
    """Rewrites one record of a shard (valid framing, bad content)."""
    kept = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    kept[index] = new_serialized
    with tf.io.TFRecordWriter(path) as writer:
        for serialized in kept:
            writer.write(serialized)


@pytest.fixture
def corrupt_shards(tmp_path):
    """3 shards of 20; record 13 of the second one has a cut-off PNG."""
    written = records.write_labeled_shards(tmp_path, [20, 20, 20])
    path, images, labels = written[1]
    _replace_record(path, 13, features.labeled_example(images[13][:60],
                                                       labels[13]))
    return tmp_path, path


def test_missing_path_and_empty_glob_fail_at_construction(tmp_path):
    pattern = str(tmp_path / "nowhere" / "train-*")
    with pytest.raises(sources.DataError, match="No files match") as info:
        sources.make_source(_config(kind="tfrecord", pattern=pattern))
    assert pattern in str(info.value)
    with pytest.raises(sources.DataError, match="does not exist"):
        sources.make_source(_config(kind="folder", root=pattern))


def test_corrupt_image_names_file_record_and_id(corrupt_shards):
    directory, path = corrupt_shards
    config = _tfrecord_config(directory)
    for dataset in (
            pipeline.make_eval_dataset(sources.make_source(config), PP, 8),
            pipeline.make_train_dataset(sources.make_source(config), PP, 8,
                                        repeat=False)):
        error = _iterate_error(dataset)
        message = _explain(error, config)
        assert message.startswith(f"{path} record 13 (id {1 << 32 | 13}): "
                                  "corrupt image")
        assert "skip_corrupt=True" in message


def test_locate_bad_record_respects_max_records(corrupt_shards):
    directory, path = corrupt_shards
    config = _tfrecord_config(directory)
    assert diagnose.locate_bad_record(config, max_records=20) is None
    found = diagnose.locate_bad_record(config, max_records=40)
    assert found.startswith(f"{path} record 13")


def test_truncated_shard_names_the_shard(tmp_path):
    written = records.write_labeled_shards(tmp_path, [10, 10, 10])
    records.truncate(written[2][0])
    config = _tfrecord_config(tmp_path)
    error = _iterate_error(pipeline.make_eval_dataset(
        sources.make_source(config), PP, 4))
    assert isinstance(error, tf.errors.DataLossError)
    message = _explain(error, config)
    assert message.startswith(f"{written[2][0]} record 9: truncated "
                              "TFRecord shard (9 records readable")


def test_label_out_of_range_names_the_file(tmp_path):
    written = records.write_labeled_shards(tmp_path, [8, 8],
                                           labels={(1, 5): 12})
    config = _tfrecord_config(tmp_path)
    error = _iterate_error(pipeline.make_eval_dataset(
        sources.make_source(config), PP, 4))
    assert written[1][0] in error.message  # the source's own check
    message = _explain(error, config)
    assert message == (f"{written[1][0]} record 5 (id {1 << 32 | 5}): "
                       "label 12 outside [0, 10)")


def test_one_based_labels_read_without_offset_get_a_hint(tmp_path):
    records.write_labeled_shards(tmp_path, [10], label_offset=1)
    config = _tfrecord_config(tmp_path)
    found = diagnose.locate_bad_record(config)
    # Label 9 is stored as 10: the first record outside [0, 10).
    assert "label 10 outside [0, 10); 1-based labels" in found
    assert "label_offset=1" in found
    config.label_offset = 1
    assert diagnose.locate_bad_record(config) is None


@pytest.mark.parametrize("make", ["train", "eval"])
def test_skip_corrupt_drops_only_the_bad_record(corrupt_shards, make):
    directory, _ = corrupt_shards
    source = sources.make_source(_tfrecord_config(directory))
    if make == "train":
        dataset = pipeline.make_train_dataset(source, PP, 1, repeat=False,
                                              skip_corrupt=True)
    else:
        dataset = pipeline.make_eval_dataset(source, PP, 7,
                                             skip_corrupt=True)
    ids = sorted(i for batch in dataset for i in batch["id"].numpy())
    expected = sorted(f << 32 | i for f in range(3) for i in range(20)
                      if (f, i) != (1, 13))
    assert ids == expected


def test_mixed_pipeline_error_is_explained_by_the_unlabeled_source(tmp_path):
    records.write_labeled_shards(tmp_path / "labeled", [8])
    written = records.write_pseudo_label_shards(tmp_path / "unl", [6, 6])
    path, images, probs, ids = written[0]
    _replace_record(path, 4, features.pseudo_label_example(
        b"not an image", probs[4], ids[4]))
    # As loop.py passes it: a plain dict.
    unlabeled = dict(kind="pseudo_labels", num_classes=10,
                     pattern=str(tmp_path / "unl" / "train-*"))
    labeled = _tfrecord_config(tmp_path / "labeled")
    unlabeled_pp = 'decode|keep("image", "probabilities")'
    dataset = pipeline.make_mixed_dataset(
        sources.make_source(labeled),
        sources.make_source(_config(**unlabeled)), labeled_pp=PP,
        unlabeled_pp=unlabeled_pp, batch_size=2, unlabel_ratio=1,
        deterministic=True)
    error = _iterate_error(dataset, steps=20)
    assert diagnose.is_input_error(error)
    # The clean labeled source is searched first, then the unlabeled one.
    message = str(diagnose.explain_pipeline_error(
        error, [(labeled, PP), (unlabeled, unlabeled_pp)]))
    # Pseudo-label records carry their id from the unlabeled pool.
    assert message.startswith(f"{path} record 4 (id {ids[4]}): corrupt "
                              "image (Unknown image file format")


def test_corrupt_image_in_a_folder_names_the_image(tmp_path):
    rows = records.write_folder(tmp_path, {"a": 2, "b": 3})
    bad = rows[3][0]
    with open(bad, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n broken")
    config = _config(kind="folder", root=str(tmp_path), num_classes=2)
    error = _iterate_error(pipeline.make_eval_dataset(
        sources.make_source(config), PP, 2))
    assert _explain(error, config).startswith(
        f"{bad} (id 3): corrupt image")


def test_pp_failure_is_reported_with_the_record(tmp_path):
    # A 16x16 image among 32x32 ones: pad_crop(32) cannot crop it.
    rng = np.random.RandomState(0)
    with tf.io.TFRecordWriter(str(tmp_path / "train-0")) as writer:
        for side in (32, 32, 16, 32):
            image = rng.randint(0, 256, (side, side, 3), dtype=np.uint8)
            writer.write(features.labeled_example(records.png(image), 1))
    config = _tfrecord_config(tmp_path)
    pp = 'decode|pad_crop(32)|keep("image", "label")'
    error = _iterate_error(pipeline.make_eval_dataset(
        sources.make_source(config), pp, 2))
    message = _explain(error, config, pp)
    assert message.startswith(f"{tmp_path / 'train-0'} record 2 (id 2): "
                              "preprocessing failed: ")
    assert diagnose.locate_bad_record(config) is None  # decodes fine


def test_fallback_keeps_the_informative_line(tmp_path):
    records.write_labeled_shards(tmp_path, [4])
    config = _tfrecord_config(tmp_path)
    # An input error the clean source cannot reproduce (e.g. a file fixed
    # or replaced since): the original line and the pattern are kept.
    error = _iterate_error(tf.data.Dataset.from_tensors(
        tf.constant(b"junk")).map(lambda s: tf.io.decode_png(s)))
    message = _explain(error, config)
    assert message.startswith(f"reading tfrecord source {config.pattern} "
                              "failed: ")
    assert "failed: corrupt image (Unknown image file format" in message
    assert message.endswith("skip_corrupt=True drops such records")
    # The source vanished after the failure: still one line, no raise.
    os.remove(os.path.join(tmp_path, os.listdir(tmp_path)[0]))
    message = str(diagnose.explain_data_error(error, config, PP))
    assert "re-scan failed: No files match" in message
    assert "\n" not in message


def test_is_input_error_rejects_model_errors():
    assert not diagnose.is_input_error(ValueError("bad config"))
    try:
        tf.reshape(tf.zeros([6]), [4])
    except tf.errors.InvalidArgumentError as error:
        assert not diagnose.is_input_error(error)


def test_fashion_mnist_source_scans_clean(fashion_mnist_dir):
    config = _config(kind="fashion_mnist", split="test",
                     data_dir=fashion_mnist_dir, num_classes=10)
    assert diagnose.locate_bad_record(
        config, 'decode|keep("image")', max_records=500) is None
    config.num_classes = 5  # labels 5..9 now out of range
    assert diagnose.locate_bad_record(config, max_records=500) == (
        f"Fashion-MNIST test ({fashion_mnist_dir}) record 0 (id 0): "
        "label 9 outside [0, 5)")


def test_error_inside_a_distributed_train_step(corrupt_shards):
    # How the trainer sees it: next(iterator) inside a tf.function.
    directory, path = corrupt_shards
    config = _tfrecord_config(directory)
    strategy = tf.distribute.get_strategy()
    dataset = strategy.distribute_datasets_from_function(
        lambda context: pipeline.make_train_dataset(
            sources.make_source(config), PP, 4, input_context=context))
    iterator = iter(dataset)

    @tf.function
    def step(iterator):
        batch = next(iterator)
        return tf.reduce_sum(tf.cast(batch["image"], tf.float32))

    error = _iterate_error(iter(lambda: step(iterator), None), steps=30)
    assert f"{path} record 13 (id {1 << 32 | 13})" in _explain(error, config)
