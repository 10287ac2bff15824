"""Sources as configs describe them: a kind, then `select` and `limit`.

`make_source(config)` reads the source kind a config names (see `readers`
and `image_files`) and keeps one part of a per-class split (`select`) or
the first records (`limit`); `count_records` and `listed_count` say how
many records that yields. Records are raw (no preprocessing) and in a
fixed order; see `readers` for their fields and stable ids.

Every function here raises `DataError` (defined in `errors`) for bad
input; `sources.DataError` is the name callers catch, since these are the
data layer's public entry points.
"""

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import diagnose
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import image_files
from noisy_student_tf.data import readers
from noisy_student_tf.data.errors import DataError


def select_per_class(labels, per_class, seed, validation_per_class=0):
    """Splits positions into labeled / validation / unlabeled parts.

    Each class is permuted with `seed`; its first `per_class` members are
    labeled, the next `validation_per_class` form a held-out validation
    split (for checkpoint selection, never the test set) and the rest is the
    unlabeled pool. Deterministic for a seed.

    Returns:
      dict part -> sorted int64 positions.

    Raises:
      DataError: a class has fewer examples than requested.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    parts = {"labeled": [], "validation": [], "unlabeled": []}
    need = per_class + validation_per_class
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        if len(members) < need:
            raise DataError(f"class {cls} has {len(members)} examples, "
                            f"fewer than the {need} asked for")
        parts["labeled"].append(members[:per_class])
        parts["validation"].append(members[per_class:need])
        parts["unlabeled"].append(members[need:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64)
            for k, v in parts.items()}


def _selected_positions(labels, select, part):
    if select.get("holdout_fraction"):
        if part not in ("labeled", "validation"):
            raise ValueError(f"a holdout split has parts labeled and "
                             f"validation, not {part!r}")
        return image_files.holdout_split(
            labels, select.holdout_fraction, select.get("seed", 0))[part]
    return select_per_class(
        labels, select.per_class, select.get("seed", 0),
        select.get("validation_per_class", 0))[part]


def _source_labels_and_ids(config):
    """(labels, ids) of a whole source in order, images skipped."""
    if config.kind == "folder":
        # The folder listing has the labels: no file needs reading.
        _, labels = readers.list_folder(config.root,
                                        config.get("num_classes"))
        return (np.asarray(labels, np.int64),
                np.arange(len(labels), dtype=np.int64))
    ds = readers.read_kind(config)
    ds = ds.map(lambda r: (r["label"], r["id"]),
                num_parallel_calls=tf.data.AUTOTUNE)
    labels, ids = [], []
    for label, record_id in ds.batch(4096).as_numpy_iterator():
        labels.append(label)
        ids.append(record_id)
    if not labels:
        raise DataError(f"source {config.to_dict()} is empty")
    return np.concatenate(labels), np.concatenate(ids)


def make_source(config, shard=None, parse_batch_size=None):
    """Builds the source a config describes.

    Args:
      config: ConfigDict with `kind` (one of `readers.KINDS`) and its
        fields: fashion_mnist: split, data_dir; tfds: name, split, data_dir,
        image_key, label_key; tfrecord: pattern, label_offset; folder: root;
        files: pattern (a directory or `;`-separated globs of an unlabeled
        pile, see image_files); pseudo_labels: pattern. Optional
        `num_classes` (label range check), `select` = {per_class, seed,
        part, validation_per_class} to keep one part of a per-class split
        (e.g. 400 labels per class) or {holdout_fraction, seed, part} to
        hold out a share of each class (part labeled or validation),
        and `limit` to keep only the first N records.
      shard: optional (index, count) for parallel labeling.
      parse_batch_size: TFRecord kinds parse this many records at a time
        (labeling; see `readers.tfrecord_source`); None: one by one.

    Returns:
      A deterministic `tf.data.Dataset` of raw record dicts.
    """
    limit = config.get("limit")
    if not limit:
        return _make_selected(config, shard, parse_batch_size)
    # `limit` keeps the first N records of the whole source (quick runs,
    # tests), then shards them record by record.
    ds = _make_selected(config, None, parse_batch_size).take(limit)
    return ds.shard(shard[1], shard[0]) if shard else ds


def _make_selected(config, shard, parse_batch_size):
    select = config.get("select")
    if not select:
        return readers.read_kind(config, shard, parse_batch_size)
    part = select.get("part", "labeled")
    if part not in ("labeled", "validation", "unlabeled"):
        raise ValueError(f"select.part must be labeled, validation or "
                         f"unlabeled, got {part!r}")
    if config.kind == "fashion_mnist":
        images, labels = fashion_mnist.load_arrays(
            config.split, config.get("data_dir") or fashion_mnist.DEFAULT_DIR)
        positions = select_per_class(
            labels, select.per_class, select.get("seed", 0),
            select.get("validation_per_class", 0))[part]
        return readers.array_source(images[positions], labels[positions],
                                    ids=positions, shard=shard)
    labels, ids = _source_labels_and_ids(config)
    positions = _selected_positions(labels, select, part)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(ids[positions]),
            tf.ones(len(positions), tf.int64)), default_value=0)
    ds = readers.read_kind(config, shard, parse_batch_size)
    return ds.filter(lambda r: table.lookup(r["id"]) > 0)


def listed_count(config, shard=None):
    """Records of a pile (shard) before undecodable files are dropped.

    Returns None for every other source, and for a pile under `select` or
    `limit` (its listing then says nothing about what is read).
    """
    if config.kind != "files" or config.get("select") or \
            config.get("limit"):
        return None
    return image_files.listed_count(config.pattern, shard)


def count_records(config):
    """Number of records a source config yields (cheap when known)."""
    select = config.get("select")
    if config.kind == "fashion_mnist" and not config.get("limit"):
        _, labels = fashion_mnist.load_arrays(
            config.split, config.get("data_dir") or fashion_mnist.DEFAULT_DIR)
        if not select:
            return len(labels)
        return len(select_per_class(
            labels, select.per_class, select.get("seed", 0),
            select.get("validation_per_class", 0))[
                select.get("part", "labeled")])
    ds = make_source(config)
    cardinality = int(ds.cardinality().numpy())
    if cardinality >= 0:
        return cardinality
    count = 0
    try:
        for ids in ds.map(lambda r: r["id"]).batch(4096).as_numpy_iterator():
            count += len(ids)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        # Counting is the first full read (labels are range-checked, shards
        # read to the end): name the bad file and record, as training does.
        if not diagnose.is_input_error(error):
            raise
        raise diagnose.explain_data_error(error, config) from error
    return count
