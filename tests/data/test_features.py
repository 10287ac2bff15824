"""TFRecord keys: exact reference names, round trips, records without id."""

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import features
from tests.data import records


def _feature_map(serialized):
    return tf.train.Example.FromString(serialized).features.feature


def _image():
    return records.png(records.random_image(np.random.RandomState(0)))


def test_keys_are_the_reference_names():
    # google-research/noisystudent (spec section 8); renaming any of these
    # breaks reading the original code's shards.
    assert features.IMAGE == "image/encoded"
    assert features.CLASS_LABEL == "image/class/label"
    assert (features.PROBABILITIES, features.LABEL, features.PROB,
            features.CLASSES) == ("probabilities", "label", "prob",
                                  "classes")


def test_labeled_example_round_trip_and_one_based_labels():
    image = _image()
    zero_based = features.labeled_example(image, 3)
    one_based = features.labeled_example(image, 3, label_offset=1)
    assert set(_feature_map(zero_based)) == {"image/encoded",
                                             "image/class/label"}
    stored = _feature_map(one_based)["image/class/label"].int64_list.value
    assert list(stored) == [4]  # ImageNet's imagenet_to_gcs.py layout
    parsed = features.parse_labeled(tf.constant(zero_based))
    assert parsed["image"].numpy() == image
    assert int(parsed["label"]) == 3
    parsed = features.parse_labeled(tf.constant(one_based), label_offset=1)
    assert int(parsed["label"]) == 3


def test_pseudo_label_example_keys_and_round_trip():
    image = _image()
    probs = np.array([0.1, 0.6, 0.3], np.float32)
    with_id = features.pseudo_label_example(image, probs, record_id=7 << 32)
    fmap = _feature_map(with_id)
    assert set(fmap) == {"image/encoded", "probabilities", "label", "prob",
                         "id"}
    assert list(fmap["label"].int64_list.value) == [1]  # argmax
    np.testing.assert_allclose(fmap["prob"].float_list.value, [0.6])
    parsed = features.parse_pseudo_label(tf.constant(with_id), 3)
    assert parsed["image"].numpy() == image
    np.testing.assert_array_equal(parsed["probabilities"], probs)
    assert int(parsed["label"]) == 1
    assert float(parsed["prob"]) == np.float32(0.6)
    assert int(parsed["id"]) == 7 << 32
    without_id = features.pseudo_label_example(image, probs)
    assert "id" not in _feature_map(without_id)
    assert int(features.parse_pseudo_label(
        tf.constant(without_id), 3)["id"]) == -1


def test_record_written_by_the_original_code_parses_with_id_minus_one():
    # Exactly the keys filter_unlabel.py writes, built by hand (no helper).
    probs = [0.05, 0.05, 0.9]
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[_image()])),
        "probabilities": tf.train.Feature(
            float_list=tf.train.FloatList(value=probs)),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
        "prob": tf.train.Feature(float_list=tf.train.FloatList(value=[0.9])),
    })).SerializeToString()
    parsed = features.parse_pseudo_label(tf.constant(example), 3)
    assert int(parsed["id"]) == -1
    assert int(parsed["label"]) == 2
    np.testing.assert_allclose(parsed["probabilities"], probs)


def test_prediction_example_keys_and_round_trip():
    probs = np.array([0.2, 0.1, 0.7], np.float32)
    serialized = features.prediction_example(probs, record_id=5)
    assert set(_feature_map(serialized)) == {"probabilities", "classes",
                                             "id"}
    parsed = features.parse_prediction(tf.constant(serialized), 3)
    np.testing.assert_array_equal(parsed["probabilities"], probs)
    assert int(parsed["label"]) == 2 and int(parsed["id"]) == 5
    no_id = features.prediction_example(probs)
    assert int(features.parse_prediction(tf.constant(no_id), 3)["id"]) == -1



def test_batched_prediction_examples_parse_like_the_python_ones():
    probs = np.array([[0.2, 0.1, 0.7], [0.5, 0.3, 0.2]], np.float32)
    ids = np.array([5, (3 << 32) + 1], np.int64)
    batched = tf.function(features.prediction_examples)(probs, ids).numpy()
    assert len(batched) == 2
    for serialized, p, i in zip(batched, probs, ids):
        assert _feature_map(serialized) == _feature_map(
            features.prediction_example(p, i))
        parsed = features.parse_prediction(tf.constant(serialized), 3)
        np.testing.assert_array_equal(parsed["probabilities"], p)
        assert int(parsed["label"]) == p.argmax() and int(parsed["id"]) == i

def test_parsers_work_inside_tf_data():
    image = _image()
    probs = np.full(10, 0.1, np.float32)
    ds = tf.data.Dataset.from_tensor_slices(
        [features.pseudo_label_example(image, probs, i) for i in range(3)])
    ids = [int(r["id"]) for r in ds.map(
        lambda s: features.parse_pseudo_label(s, 10))]
    assert ids == [0, 1, 2]
