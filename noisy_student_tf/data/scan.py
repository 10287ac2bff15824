"""Reads a source in nameable units and finds its first bad record.

The source is read in units that a message can name: one TFRecord file at
a time (so a truncated shard is blamed on its file), an image folder or
pile, or the whole in-memory / tfds dataset. Each unit gets a fast graph
pass in batches with the pipeline's own checks (parse, label range,
decode, the pp string); only a batch that fails is re-read record by
record, eagerly, to name the record and the problem. `select` and `limit`
are ignored: any bad record in the underlying files is worth reporting.
`diagnose` turns what this finds into the error a failed pipeline raises.
"""

import collections
import re

import ml_collections
import tensorflow as tf

from noisy_student_tf.data import decode_ops
from noisy_student_tf.data import errors
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import features
from noisy_student_tf.data import image_files
from noisy_student_tf.data import preprocess
from noisy_student_tf.data import readers

# Records per fast-pass batch: the most that are re-read eagerly.
_BATCH = 64

# A part of a source that messages name: `name` (file path or dataset),
# `raw()` (its raw elements in order; reading may fail), `parse(element,
# index)` (the record as the source yields it), `label_offset` (for the
# 1-based hint) and `per_record_path(index)` (image folders, else None).
_Unit = collections.namedtuple(
    "_Unit", "name raw parse label_offset per_record_path")


# === Units of each source kind ===


def _file_units(config):
    """One unit per TFRecord file, ids as `readers.tfrecord_source`."""
    files = readers.list_files(config.pattern)
    offset = config.get("label_offset", 0)
    pseudo = config.kind == "pseudo_labels"
    if pseudo and not config.get("num_classes"):
        raise ValueError("a pseudo_labels source needs num_classes")
    units = []
    for file_index, path in enumerate(files):
        def parse(serialized, index, file_index=file_index):
            if pseudo:
                # Pseudo-label records carry their id (-1 when absent).
                return features.parse_pseudo_label(
                    serialized, config.num_classes)
            record = features.parse_labeled(serialized, offset)
            record["id"] = tf.bitwise.left_shift(
                tf.constant(file_index, tf.int64), 32) + index
            return record

        units.append(_Unit(path, lambda p=path: tf.data.TFRecordDataset(p),
                           parse, 0 if pseudo else offset, None))
    return units


def _folder_units(config):
    paths, labels = readers.list_folder(config.root)

    def raw():
        return tf.data.Dataset.from_tensor_slices(
            {"path": paths, "label": tf.constant(labels, tf.int64)})

    def parse(element, index):
        return {"image": tf.io.read_file(element["path"]),
                "label": element["label"], "id": index}

    return [_Unit(config.root, raw, parse, 0, paths.__getitem__)]


def _files_units(config):
    """An image pile (its source drops undecodable files, not pp errors)."""
    paths = image_files.list_image_files(config.pattern)

    def raw():
        return tf.data.Dataset.from_tensor_slices({"path": paths})

    def parse(element, index):
        return {"image": tf.io.read_file(element["path"]),
                "label": tf.constant(-1, tf.int64), "id": index}

    return [_Unit(config.pattern, raw, parse, 0, paths.__getitem__)]


def _dataset_units(config):
    """In-memory and tfds sources: one unit, records as the source yields."""
    if config.kind == "fashion_mnist":
        data_dir = config.get("data_dir") or fashion_mnist.DEFAULT_DIR
        name = f"Fashion-MNIST {config.split} ({data_dir})"

        def raw():
            return readers.array_source(
                *fashion_mnist.load_arrays(config.split, data_dir))
    else:
        name = (f"tfds {config.name} split {config.split!r} "
                f"(data_dir={config.get('data_dir')})")

        def raw():
            return readers.tfds_source(
                config.name, config.split, data_dir=config.get("data_dir"),
                image_key=config.get("image_key", "image"),
                label_key=config.get("label_key", "label"))
    return [_Unit(name, raw, lambda record, index: record, 0, None)]


_UNITS = {"tfrecord": _file_units, "pseudo_labels": _file_units,
          "folder": _folder_units, "files": _files_units,
          "fashion_mnist": _dataset_units,
          "tfds": _dataset_units}


# === Checks ===


class _Checker:
    """The pipeline's checks, in graph form (fast) and one by one (eager)."""

    def __init__(self, num_classes, pp_string):
        self.num_classes = num_classes
        self.pp_fn = (preprocess.get_preprocess_fn(pp_string)
                      if pp_string else None)
        self.decode = decode_ops.decode(channels=3)
        # Graph decoding adds header/trailer checks eager decoding skips.
        self.graph_decode = tf.function(
            lambda image: self.decode({"image": image})["image"],
            autograph=False)
        self.graph_pp = None
        if self.pp_fn is not None:
            self.graph_pp = tf.function(self.pp_fn, reduce_retracing=True)

    def graph_check(self, record):
        """Fails like the pipeline would; returns a value using all work."""
        asserts = []
        if self.num_classes:
            label = record["label"]
            asserts.append(tf.debugging.Assert(
                (label >= 0) & (label < self.num_classes), [label]))
        with tf.control_dependencies(asserts):
            # The pp string decodes itself; decoding twice costs time.
            if self.pp_fn is not None:
                out = self.pp_fn(dict(record))
            else:
                out = self.decode({"image": record["image"]})
            return tf.add_n([tf.size(t, tf.int64)
                             for t in tf.nest.flatten(out)])

    def problem(self, record, label_offset):
        """What is wrong with one record (eagerly), or None."""
        label = int(record["label"])
        if self.num_classes and not 0 <= label < self.num_classes:
            text = f"label {label} outside [0, {self.num_classes})"
            if label == self.num_classes and label_offset == 0:
                text += ("; 1-based labels (ImageNet shards) need "
                         "label_offset=1")
            return text
        image = record["image"]
        try:
            self.decode({"image": image})
            self.graph_decode(image)
        except tf.errors.OpError as error:
            return errors.corrupt_image_problem(error)
        if self.graph_pp is not None:
            try:
                self.graph_pp(dict(record))
            except (tf.errors.OpError, KeyError, ValueError,
                    TypeError) as error:
                return ("preprocessing failed: "
                        f"{errors.informative_line(error)}")
        return None


# === Scanning ===


def _fast_pass(unit, checker, budget):
    """(records checked, whether a batch failed) over one unit."""
    ds = unit.raw()
    if budget is not None:
        ds = ds.take(budget)
    ds = ds.enumerate().map(
        lambda i, element: checker.graph_check(unit.parse(element, i)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    checked = 0
    try:
        for batch in ds.batch(_BATCH):
            checked += int(batch.shape[0])
    except tf.errors.OpError:
        # In-order delivery: the failing record is in the next batch.
        return checked, True
    return checked, False


def _describe(unit, index, record_id):
    if unit.per_record_path is not None:
        return f"{unit.per_record_path(index)} (id {index})"
    where = f"{unit.name} record {index}"
    if record_id is not None and record_id >= 0:
        where += f" (id {record_id})"
    return where


def _read_problem(error, index):
    """What reading record `index` of a unit raised, in words."""
    line = errors.informative_line(error)
    if isinstance(error, tf.errors.DataLossError):
        kind = "truncated" if "truncated" in line else "corrupt"
        at = re.search(r"record at (\d+)", line)
        detail = f"record at byte {at.group(1)} unreadable" if at else line
        return f"{kind} TFRecord shard ({index} records readable; {detail})"
    if errors.is_corrupt_image_error(error):
        return errors.corrupt_image_problem(error)
    return f"unreadable record ({line})"


def _examine(unit, checker, start, count):
    """Eagerly re-reads records [start, start + count); first problem."""
    iterator = iter(unit.raw().skip(start).take(count))
    for index in range(start, start + count):
        try:
            element = next(iterator)
        except StopIteration:
            return None
        except tf.errors.OpError as error:
            return (f"{_describe(unit, index, None)}: "
                    f"{_read_problem(error, index)}")
        try:
            record = unit.parse(element, tf.constant(index, tf.int64))
        except tf.errors.OpError as error:  # image file gone / bad Example
            what = ("cannot read" if unit.per_record_path is not None
                    else "unparseable record")
            return (f"{_describe(unit, index, None)}: {what} "
                    f"({errors.informative_line(error)})")
        problem = checker.problem(record, unit.label_offset)
        if problem:
            record_id = int(record["id"]) if "id" in record else None
            return f"{_describe(unit, index, record_id)}: {problem}"
    return None


def as_config(config):
    """A ConfigDict of a source config given as a ConfigDict or a dict."""
    if isinstance(config, dict):  # loop.py builds some sources as dicts
        return ml_collections.ConfigDict(config)
    return config


def find_bad_record(source_config, pp_string, max_records, prefer=""):
    """The first bad record of a source as one line, or None.

    Args:
      source_config: the source's ConfigDict or dict.
      pp_string: the pipeline's preprocessing, or None (decode only).
      max_records: stop after checking about this many records (None: all).
      prefer: text (an error's informative line); units whose name occurs
        in it are scanned first.
    """
    source_config = as_config(source_config)
    if source_config.get("kind") not in _UNITS:
        raise ValueError(f"Unknown source kind {source_config.get('kind')!r}"
                         f"; valid: {readers.KINDS}")
    units = _UNITS[source_config.kind](source_config)
    # Files the original message names (the label check does) go first.
    units.sort(key=lambda unit: unit.name not in prefer)
    checker = _Checker(source_config.get("num_classes"), pp_string)
    budget = max_records
    for unit in units:
        if budget is not None and budget <= 0:
            break
        checked, failed = _fast_pass(unit, checker, budget)
        if failed:
            found = _examine(unit, checker, checked, _BATCH)
            if found:
                return " ".join(found.split())
        if budget is not None:
            budget -= checked + (_BATCH if failed else 0)
    return None
