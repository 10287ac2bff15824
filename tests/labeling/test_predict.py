"""Pseudo-labeling: sharded output, resumable, every example exactly once."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import models
from noisy_student_tf.data import features
from noisy_student_tf.data import sources
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import tfrecord_io
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import losses
from tests import testing
from tests.data import records

PP = testing.PP
RGB_PP = 'decode|normalize("svhn")'


def tiny_teacher(path):
    model = models.create_model(
        "efficientnet_b0", num_classes=10, input_shape=(32, 32, 1),
        **testing.TINY_MODEL["overrides"])
    checkpoints.save_model_atomic(model, str(path))
    return model


def tiny_teacher_rgb(path):
    model = models.create_model(
        "efficientnet_b0", num_classes=10, input_shape=(32, 32, 3),
        **testing.TINY_MODEL["overrides"])
    checkpoints.save_model_atomic(model, str(path))


def source(limit=None):
    config = dict(kind="fashion_mnist", split="test")
    if limit:
        config["limit"] = limit
    return ml_collections.ConfigDict(config)


def read_ids(directory, count):
    ids = []
    for index in range(count):
        ds = predict.prediction_dataset(directory, index, count, 10)
        ids += [int(r["id"]) for r in ds.as_numpy_iterator()]
    return ids


def test_shards_hold_teacher_probabilities_and_ids(tmp_path):
    model = tiny_teacher(tmp_path / "teacher.keras")
    out = str(tmp_path / "labels")
    summary = predict.generate_pseudo_labels(
        str(tmp_path / "teacher.keras"), source(100), PP, out, num_shards=3,
        batch_size=32, has_true_labels=True, progress=False)
    assert summary["num_records"] == 100 and summary["shards_labeled"] == 3
    assert 0.0 <= summary["accuracy_vs_true_labels"] <= 1.0
    assert sorted(read_ids(out, 3)) == list(range(100))
    # Probabilities are the clean (inference-mode) teacher's softmax.
    from noisy_student_tf.data import fashion_mnist, preprocess
    images, _ = fashion_mnist.load_arrays("test")
    pp = preprocess.get_preprocess_fn(PP)
    batch = np.stack([pp({"image": tf.constant(images[i])})["image"]
                      for i in (0, 3, 6)])
    expected = tf.nn.softmax(model(batch, training=False)).numpy()
    first = list(predict.prediction_dataset(out, 0, 3, 10)
                 .take(3).as_numpy_iterator())
    assert [int(r["id"]) for r in first] == [0, 3, 6]
    np.testing.assert_allclose([r["probabilities"] for r in first], expected,
                               atol=1e-5)
    # A rerun skips complete shards.
    again = predict.generate_pseudo_labels(
        str(tmp_path / "teacher.keras"), source(100), PP, out, num_shards=3,
        progress=False)
    assert again["shards_labeled"] == 0 and again["shards_skipped"] == 3


def test_shard_input_is_the_teachers_view_of_that_shards_records():
    from noisy_student_tf.data import fashion_mnist, preprocess
    batches, expected = predict.open_shard_input(source(100), PP, 1, 3, 16)
    batches = list(batches)
    assert expected is None  # only needed under skip_corrupt
    assert [int(b["id"].shape[0]) for b in batches] == [16, 16, 1]
    ids = np.concatenate([b["id"] for b in batches])
    np.testing.assert_array_equal(ids, np.arange(1, 100, 3))
    images, labels = fashion_mnist.load_arrays("test")
    np.testing.assert_array_equal(
        np.concatenate([b["label"] for b in batches]), labels[ids])
    pp = preprocess.get_preprocess_fn(PP)
    np.testing.assert_allclose(
        batches[0]["image"][2],
        pp({"image": tf.constant(images[ids[2]])})["image"], atol=1e-6)


def test_only_requested_shards_are_labeled(tmp_path):
    tiny_teacher(tmp_path / "teacher.keras")
    out = str(tmp_path / "labels")
    predict.generate_pseudo_labels(
        str(tmp_path / "teacher.keras"), source(40), PP, out, num_shards=4,
        shard_indices=[1, 3], progress=False)
    done = [tfrecord_io.shard_complete(out, tfrecord_io.PREDICTIONS, i, 4)
            for i in range(4)]
    assert done == [False, True, False, True]


KILLABLE = textwrap.dedent("""
    import sys
    import ml_collections
    from noisy_student_tf.labeling import predict
    from tests import testing
    predict.generate_pseudo_labels(
        sys.argv[1], ml_collections.ConfigDict(dict(
            kind="fashion_mnist", split="test", limit=4000)),
        testing.PP, sys.argv[2], num_shards=16, batch_size=50,
        progress=False)
""")


def test_killed_labeling_rerun_labels_every_example_exactly_once(tmp_path):
    tiny_teacher(tmp_path / "teacher.keras")
    script = tmp_path / "label.py"
    script.write_text(KILLABLE)
    out = tmp_path / "labels"
    args = [sys.executable, str(script), str(tmp_path / "teacher.keras"),
            str(out)]
    env = dict(os.environ, PYTHONPATH=testing.REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(args, cwd=testing.REPO, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    info = out / "info"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = len(list(info.glob("*.json"))) if info.exists() else 0
        if done >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    complete = len(list(info.glob("*.json")))
    assert 0 < complete < 16, "kill must land mid-way"
    rerun = subprocess.run(args, cwd=testing.REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ids = read_ids(str(out), 16)
    assert len(ids) == 4000 and sorted(ids) == list(range(4000))
    leftovers = [p for p in os.listdir(out) if ".tmp-" in p]
    assert leftovers == []


def test_labels_store_the_plain_softmax_and_the_student_tempers_once():
    # Reference semantics (noisystudent predict_label.py + main.py): the
    # stored probabilities are softmax(logits); a student temperature T
    # turns them into softmax(logits / T) at training time, once.
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.4, 0.1]], np.float32)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x)(inputs))
    out = predict.make_predict_fn(model)(tf.constant(logits),
                                         tf.constant([0, 1], tf.int64))
    stored = np.stack([features.parse_prediction(s, 3)["probabilities"]
                       for s in out["serialized"].numpy()])
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(stored, e / e.sum(-1, keepdims=True),
                               rtol=1e-5)
    # Hand values: softmax([2, 0, -1] / 2) = [0.6285, 0.2312, 0.1402].
    tempered = losses.targets_from_probabilities(
        stored, "soft", temperature=2.0).numpy()
    np.testing.assert_allclose(tempered[0], [0.6285, 0.2312, 0.1402],
                               atol=1e-4)



def _corrupt_tfrecord_source(directory):
    """3 PNG shards of 12; record 5 of the second one is cut off."""
    written = records.write_labeled_shards(directory, [12, 12, 12])
    path, images, labels = written[1]
    kept = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    kept[5] = features.labeled_example(images[5][:60], labels[5])
    with tf.io.TFRecordWriter(path) as writer:
        for serialized in kept:
            writer.write(serialized)
    return path, ml_collections.ConfigDict(dict(
        kind="tfrecord", pattern=os.path.join(directory, "train-*")))


def test_corrupt_image_is_named_and_only_finished_shards_are_kept(
        tmp_path):
    # Shard 1's input is opened while shard 0 is labeled: its error must
    # still surface as the named line, after shard 0 was committed.
    path, config = _corrupt_tfrecord_source(tmp_path / "src")
    tiny_teacher_rgb(tmp_path / "teacher.keras")
    out = tmp_path / "labels"
    with pytest.raises(sources.DataError,
                       match=f"{path} record 5 .*corrupt image"):
        predict.generate_pseudo_labels(
            str(tmp_path / "teacher.keras"), config, RGB_PP, str(out),
            num_shards=3, batch_size=4, progress=False)
    done = [tfrecord_io.shard_complete(str(out), tfrecord_io.PREDICTIONS, i,
                                       3) for i in range(3)]
    assert done == [True, False, False]
    assert [p for p in os.listdir(out) if ".tmp-" in p] == []


def test_skip_corrupt_labels_the_rest_once_and_counts_the_drop(tmp_path):
    _, config = _corrupt_tfrecord_source(tmp_path / "src")
    tiny_teacher_rgb(tmp_path / "teacher.keras")
    out = str(tmp_path / "labels")
    summary = predict.generate_pseudo_labels(
        str(tmp_path / "teacher.keras"), config, RGB_PP, out, num_shards=3,
        batch_size=4, skip_corrupt=True, progress=False)
    assert summary["num_records"] == 35
    assert summary["skipped_corrupt"] == 1
    assert [tfrecord_io.read_info(out, tfrecord_io.PREDICTIONS, i, 3)[
        "skipped_corrupt"] for i in range(3)] == [0, 1, 0]
    expected = sorted(f << 32 | i for f in range(3) for i in range(12)
                      if (f, i) != (1, 5))
    assert sorted(read_ids(out, 3)) == expected
