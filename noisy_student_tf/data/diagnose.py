"""Turns a failed input pipeline into one line naming the bad record.

tf.data errors name neither the file nor the record: a corrupt image in
shard 731 surfaces as "assertion failed: [corrupt image: ...]" from
`IteratorGetNext`, a cut-off shard as "truncated record at 9857". When
iterating a training, eval or labeling pipeline fails, the caller hands the
error and the source config to `explain_data_error`, which re-reads the
source and returns a `sources.DataError` with one line such as

    /data/train-00001-of-01024 record 17 (id 4294967313): corrupt image
    (Invalid PNG data, size 50); skip_corrupt=True drops such records

The source is read in units that a message can name: one TFRecord file at
a time (so a truncated shard is blamed on its file), an image folder, or
the whole in-memory / tfds dataset. Each unit gets a fast graph pass in
batches with the pipeline's own checks (parse, label range, decode, the pp
string); only a batch that fails is re-read record by record, eagerly, to
name the record and the problem. `select` and `limit` are ignored: any bad
record in the underlying files is worth reporting.
"""

import collections
import re

import ml_collections
import tensorflow as tf

from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import features
from noisy_student_tf.data import ops
from noisy_student_tf.data import preprocess
from noisy_student_tf.data import sources

# Records per fast-pass batch: the most that are re-read eagerly.
_BATCH = 64
_SKIP_HINT = "; skip_corrupt=True drops such records"
# Markers of tf.data failures (the iterator op shows up in the message of
# an error raised inside a tf.function train or predict step, too).
_INPUT_MARKERS = ("IteratorGetNext", "label outside [0,", "truncated record",
                  "corrupted record")

# A part of a source that messages name: `name` (file path or dataset),
# `raw()` (its raw elements in order; reading may fail), `parse(element,
# index)` (the record as the source yields it), `label_offset` (for the
# 1-based hint) and `per_record_path(index)` (image folders, else None).
_Unit = collections.namedtuple(
    "_Unit", "name raw parse label_offset per_record_path")


def informative_line(error):
    """The line of a TF error that says what went wrong, without noise."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keys = ("assertion failed", ops.CORRUPT_IMAGE, "truncated record",
            "corrupted record")
    line = next((text for text in lines if any(k in text for k in keys)),
                None)
    if line is None:
        line = next((text for text in lines if not text.startswith(
            ("Graph execution error", "Detected at node", "<stack", "[["))),
            lines[0] if lines else type(error).__name__)
    line = re.sub(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]", "", line)
    # "Error in user-defined function passed to X transformation with
    # iterator: Iterator::Root::...: <the real message>".
    line = re.sub(r"^.*Iterator::\S+: ", "", line)
    line = re.sub(r"\s*name:\s*$", "", line.strip())
    return " ".join(line.split()).rstrip(" '\"") or type(error).__name__


def is_input_error(error):
    """Whether a TF error most likely came from reading input data.

    Callers use it to decide if a failure is worth `explain_data_error`'s
    re-scan (a model bug raising InvalidArgumentError is not).
    """
    if isinstance(error, tf.errors.DataLossError):
        return True
    if not isinstance(error, tf.errors.OpError):
        return False
    return ops.is_corrupt_image_error(error) or any(
        marker in (error.message or "") for marker in _INPUT_MARKERS)


# === Units of each source kind ===


def _file_units(config):
    """One unit per TFRecord file, ids as `sources.tfrecord_source`."""
    files = sources.list_files(config.pattern)
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
    paths, labels = sources.list_folder(config.root)

    def raw():
        return tf.data.Dataset.from_tensor_slices(
            {"path": paths, "label": tf.constant(labels, tf.int64)})

    def parse(element, index):
        return {"image": tf.io.read_file(element["path"]),
                "label": element["label"], "id": index}

    return [_Unit(config.root, raw, parse, 0, paths.__getitem__)]


def _files_units(config):
    """An image pile (its source drops undecodable files, not pp errors)."""
    from noisy_student_tf.data import image_files

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
            return sources.array_source(
                *fashion_mnist.load_arrays(config.split, data_dir))
    else:
        name = (f"tfds {config.name} split {config.split!r} "
                f"(data_dir={config.get('data_dir')})")

        def raw():
            return sources.tfds_source(
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
        self.decode = ops.decode(channels=3)
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
            return _corrupt_image(error)
        if self.graph_pp is not None:
            try:
                self.graph_pp(dict(record))
            except (tf.errors.OpError, KeyError, ValueError,
                    TypeError) as error:
                return f"preprocessing failed: {informative_line(error)}"
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


def _corrupt_image(error):
    """ "corrupt image (<decoder's reason>); <hint>" from a decode error."""
    detail = re.sub(r"^(assertion failed: )?\[?corrupt image: ?", "",
                    informative_line(error)).strip("[] ")
    return f"corrupt image ({detail}){_SKIP_HINT}"


def _read_problem(error, index):
    """What reading record `index` of a unit raised, in words."""
    line = informative_line(error)
    if isinstance(error, tf.errors.DataLossError):
        kind = "truncated" if "truncated" in line else "corrupt"
        at = re.search(r"record at (\d+)", line)
        detail = f"record at byte {at.group(1)} unreadable" if at else line
        return f"{kind} TFRecord shard ({index} records readable; {detail})"
    if ops.is_corrupt_image_error(error):
        return _corrupt_image(error)
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
                    f"({informative_line(error)})")
        problem = checker.problem(record, unit.label_offset)
        if problem:
            record_id = int(record["id"]) if "id" in record else None
            return f"{_describe(unit, index, record_id)}: {problem}"
    return None


def _as_config(config):
    if isinstance(config, dict):  # loop.py builds some sources as dicts
        return ml_collections.ConfigDict(config)
    return config


def _locate(source_config, pp_string, max_records, prefer=""):
    source_config = _as_config(source_config)
    if source_config.get("kind") not in _UNITS:
        raise ValueError(f"Unknown source kind {source_config.get('kind')!r}"
                         f"; valid: {sources.KINDS}")
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


def locate_bad_record(source_config, pp_string=None, max_records=None):
    """Finds the first bad record of a source, reading it unit by unit.

    Args:
      source_config: the source's ConfigDict or dict (see
        `sources.make_source`); its `num_classes` enables the label-range
        check.
      pp_string: the pipeline's preprocessing; when given every record is
        also run through it, so failures of later ops are found too.
      max_records: stop after checking about this many records (None: all).

    Returns:
      One line "<file> record <i> (id <id>): <problem>" (for image folders
      "<image path> (id <i>): <problem>"), or None when nothing is wrong
      in the records checked.

    Raises:
      sources.DataError: the source's files are gone (empty glob, missing
        folder).
      ValueError: unknown source kind or a bad pp string.
    """
    return _locate(source_config, pp_string, max_records)


def _source_name(config):
    kind = config.get("kind")
    for key in ("pattern", "root", "name"):
        if config.get(key):
            return f"{kind} source {config.get(key)}"
    return f"{kind} source {config.get('split', '')}".strip()


def explain_data_error(error, source_config, pp_string=None,
                       max_records=None):
    """A one-line `sources.DataError` for a failed input pipeline.

    Re-scans the source (see `locate_bad_record`) to name the file, record
    index, record id and the problem; when nothing is found (or scanning
    itself fails) falls back to the original message's informative line
    and the source's pattern. Never raises.

    Args:
      error: what iterating the pipeline raised (usually
        `tf.errors.InvalidArgumentError` or `tf.errors.DataLossError`).
      source_config: the ConfigDict (or dict) the pipeline's source was
        made from.
      pp_string: the pipeline's preprocessing string.
      max_records: bound on the records re-checked (None: all).

    Returns:
      A `sources.DataError` to raise `from error`.
    """
    return explain_pipeline_error(error, [(source_config, pp_string)],
                                  max_records)


def explain_pipeline_error(error, inputs, max_records=None):
    """`explain_data_error` for a pipeline that reads several sources.

    Args:
      error: what iterating the pipeline raised.
      inputs: (source_config, pp_string) pairs, searched in order; e.g.
        the labeled and unlabeled streams of a mixed dataset, plus the
        unlabeled source with the teacher's pp string in online mode.
      max_records: bound on the records re-checked per input.

    Returns:
      A one-line `sources.DataError` to raise `from error`.
    """
    line = informative_line(error)
    scan_notes = []
    for source_config, pp_string in inputs:
        try:
            found = _locate(source_config, pp_string, max_records,
                            prefer=line)
        except Exception as scan_error:  # noqa: BLE001 -- keep the original
            found = None
            scan_notes.append(
                f"re-scan failed: {informative_line(scan_error)}")
        if found:
            return sources.DataError(found)
    if ops.is_corrupt_image_error(error):
        line = _corrupt_image(error)
    names = " or ".join(_source_name(_as_config(config))
                        for config, _ in inputs)
    note = f" ({'; '.join(scan_notes)})" if scan_notes else ""
    return sources.DataError(f"reading {names} failed: {line}{note}")
