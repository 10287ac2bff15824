"""TFRecord keys and record (de)serialisation: the only place keys live.

Keys match google-research/noisystudent so shards written by the original
code can be reused, and ours can be read by it:

- labeled (ImageNet `imagenet_to_gcs.py` layout): `image/encoded` (JPEG/PNG
  bytes), `image/class/label` (int64, 1-based in ImageNet shards).
- pseudo-labeled (filtered / balanced, `filter_unlabel.py`): `image/encoded`,
  `probabilities` float[C], `label` int64 (0-based argmax), `prob` float
  (top-1 confidence).
- prediction dumps (`predict_label.py`): `probabilities` float[C], `classes`
  int64; no image, joined to the unlabeled source by record order.

We add one optional key, `id` (int64), to pseudo-label and prediction records:
it lets the filter stage check that predictions and images are joined
correctly and lets users trace each pseudo label back to its source image.
Readers of the original ignore unknown keys.
"""

import numpy as np
import tensorflow as tf

IMAGE = "image/encoded"
CLASS_LABEL = "image/class/label"
PROBABILITIES = "probabilities"
LABEL = "label"
PROB = "prob"
CLASSES = "classes"
ID = "id"


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(
        value=np.atleast_1d(values).astype(np.int64).tolist()))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(
        value=np.atleast_1d(values).astype(np.float32).tolist()))


def labeled_example(encoded_image, label, label_offset=0):
    """A labeled record; `label_offset=1` writes ImageNet's 1-based labels."""
    return tf.train.Example(features=tf.train.Features(feature={
        IMAGE: _bytes(encoded_image),
        CLASS_LABEL: _int64(int(label) + label_offset),
    })).SerializeToString()


def pseudo_label_example(encoded_image, probabilities, record_id=None):
    """A filtered pseudo-label record (noisystudent `filter_unlabel.py`)."""
    probabilities = np.asarray(probabilities, np.float32)
    feature = {
        IMAGE: _bytes(encoded_image),
        PROBABILITIES: _floats(probabilities),
        LABEL: _int64(int(np.argmax(probabilities))),
        PROB: _floats(float(np.max(probabilities))),
    }
    if record_id is not None:
        feature[ID] = _int64(record_id)
    # Map entries sorted by key: otherwise their order follows the
    # process's hash seed, and the filter's shards would differ in bytes
    # between runs, hosts and engines (local vs Beam workers).
    return tf.train.Example(
        features=tf.train.Features(feature=feature)).SerializeToString(
            deterministic=True)


def prediction_example(probabilities, record_id=None):
    """A prediction-dump record (noisystudent `predict_label.py`)."""
    probabilities = np.asarray(probabilities, np.float32)
    feature = {
        PROBABILITIES: _floats(probabilities),
        CLASSES: _int64(int(np.argmax(probabilities))),
    }
    if record_id is not None:
        feature[ID] = _int64(record_id)
    return tf.train.Example(
        features=tf.train.Features(feature=feature)).SerializeToString(
            deterministic=True)


def _encode(message_type, fields, values, sizes):
    return tf.io.encode_proto(sizes=sizes, values=values,
                              field_names=fields, message_type=message_type)


def _feature_column(values, list_type, kind):
    """[B, n] values -> [B] serialized `tf.train.Feature`s of one list."""
    batch, n = tf.shape(values)[0], tf.shape(values)[1]
    lists = _encode(list_type, ["value"], [values], tf.fill([batch, 1], n))
    return _encode("tensorflow.Feature", [kind], [lists[:, None]],
                   tf.ones([batch, 1], tf.int32))


def prediction_examples(probabilities, record_ids):
    """Batched `prediction_example` as TF ops (usable inside tf.function).

    Labeling writes one record per image; building each proto in Python
    cost ~80 us a record, a sixth of B0's 32x32 inference time on 2 CPU
    cores. These records parse identically (same keys, types, values);
    only the order of map entries in the bytes may differ.

    Args:
      probabilities: float32 [B, C].
      record_ids: int64 [B].

    Returns:
      string [B]: serialized `tf.train.Example`s.
    """
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    classes = tf.argmax(probabilities, -1, output_type=tf.int64)
    record_ids = tf.cast(record_ids, tf.int64)
    columns = (
        (ID, _feature_column(record_ids[:, None], "tensorflow.Int64List",
                             "int64_list")),
        (CLASSES, _feature_column(classes[:, None], "tensorflow.Int64List",
                                  "int64_list")),
        (PROBABILITIES, _feature_column(
            probabilities, "tensorflow.FloatList", "float_list")),
    )
    batch = tf.shape(probabilities)[0]
    entries = tf.stack([
        _encode("tensorflow.Features.FeatureEntry", ["key", "value"],
                [tf.fill([batch, 1], key), column[:, None]],
                tf.ones([batch, 2], tf.int32))
        for key, column in columns], axis=1)
    features_proto = _encode("tensorflow.Features", ["feature"], [entries],
                             tf.fill([batch, 1], len(columns)))
    return _encode("tensorflow.Example", ["features"],
                   [features_proto[:, None]], tf.ones([batch, 1], tf.int32))


def labeled_spec():
    # Unlabeled shards (JFT-style) may lack a label: it reads as -1, which
    # the label-range check of a labeled source then rejects by file name.
    return {
        IMAGE: tf.io.FixedLenFeature([], tf.string),
        CLASS_LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def pseudo_label_spec(num_classes):
    return {
        IMAGE: tf.io.FixedLenFeature([], tf.string),
        PROBABILITIES: tf.io.FixedLenFeature([num_classes], tf.float32),
        LABEL: tf.io.FixedLenFeature([], tf.int64),
        PROB: tf.io.FixedLenFeature([], tf.float32),
        ID: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def prediction_spec(num_classes):
    return {
        PROBABILITIES: tf.io.FixedLenFeature([num_classes], tf.float32),
        CLASSES: tf.io.FixedLenFeature([], tf.int64),
        ID: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def _labeled_record(parsed, label_offset):
    label = parsed[CLASS_LABEL]
    return {"image": parsed[IMAGE],
            "label": tf.where(label >= 0, label - label_offset, label)}


def _pseudo_label_record(parsed):
    return {
        "image": parsed[IMAGE],
        "label": parsed[LABEL],
        "probabilities": parsed[PROBABILITIES],
        "prob": parsed[PROB],
        "id": parsed[ID],
    }


def parse_labeled(serialized, label_offset=0):
    """Record -> {"image": bytes, "label": int64 (0-based)}.

    A string [B] of records parses to the same entries with a leading
    batch dimension (`tf.io.parse_example`): one op for the whole batch.
    """
    serialized = tf.convert_to_tensor(serialized, tf.string)
    parse = (tf.io.parse_single_example if serialized.shape.rank == 0
             else tf.io.parse_example)
    return _labeled_record(parse(serialized, labeled_spec()), label_offset)


def parse_pseudo_label(serialized, num_classes):
    """Record -> {"image", "label", "probabilities", "prob", "id"}.

    Batched like `parse_labeled` for a string [B] of records.
    """
    serialized = tf.convert_to_tensor(serialized, tf.string)
    parse = (tf.io.parse_single_example if serialized.shape.rank == 0
             else tf.io.parse_example)
    return _pseudo_label_record(
        parse(serialized, pseudo_label_spec(num_classes)))


def parse_prediction(serialized, num_classes):
    """Record -> {"probabilities", "label" (the argmax class), "id"}."""
    parsed = tf.io.parse_single_example(
        serialized, prediction_spec(num_classes))
    return {"probabilities": parsed[PROBABILITIES],
            "label": parsed[CLASSES], "id": parsed[ID]}
