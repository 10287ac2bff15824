"""Data sources: tfds, TFRecord globs, image folders and piles, Fashion-MNIST.

Every source yields raw records, no preprocessing: `{"image": uint8 HxWxC
or encoded bytes, "label": int64, "id": int64}` (pseudo-label sources add
"probabilities" and "prob"). `id` is stable across runs: the array index for
in-memory sources, `file_index << 32 | record_index` for file sources, so
the labeling and filter stages can join predictions back to images.

Sources are deterministic in order (no shuffling here); shuffling belongs
to the training pipeline. `shard=(index, count)` splits files across hosts
when there are enough files, records otherwise.

Every parallel map here passes `deterministic=True` explicitly: an explicit
argument wins over `tf.data.Options.deterministic`, which the training
pipeline turns off, and the record-wise shards taken after a source (here
and in `pipeline`) are only disjoint if its order is fixed.
"""

import os

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import features
from noisy_student_tf.data import image_files

IMAGE_EXTENSIONS = image_files.IMAGE_EXTENSIONS
KINDS = ("fashion_mnist", "tfds", "tfrecord", "folder", "files",
         "pseudo_labels")


class DataError(ValueError):
    """Bad input data: missing path, empty glob, corrupt or invalid record."""


def list_files(pattern):
    """Sorted files for a glob (or `;`-separated globs); errors if none."""
    files = []
    for part in str(pattern).split(";"):
        if not part:
            continue
        if tf.io.gfile.isdir(part):
            raise DataError(f"{part} is a directory; give a glob such as "
                            f"{os.path.join(part, 'train-*')}")
        files.extend(tf.io.gfile.glob(part))
    if not files:
        raise DataError(f"No files match {pattern!r}")
    return sorted(set(files))


def shard_files(files, shard):
    """Files of shard `(index, count)`; None when records must be sharded."""
    if shard is None:
        return files, None
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} not in [0, {count})")
    if len(files) >= count:
        return files[index::count], None
    return files, shard


def _check_label(record, num_classes, where):
    if num_classes is None:
        return record
    label = record["label"]
    tf.debugging.Assert(
        tf.logical_and(label >= 0, label < num_classes),
        [f"label outside [0, {num_classes}) in", where, "label:", label],
        name="label_range")
    return record


def _records_with_ids(files, file_indices, make_dataset):
    """Interleaves per-file datasets deterministically, adding stable ids.

    `file_indices` are the files' positions in the full sorted list, so a
    record's id does not depend on which host (shard) reads its file.
    """
    def per_file(file_index, path):
        ds = make_dataset(path).enumerate()
        return ds.map(lambda i, r: (
            tf.bitwise.left_shift(file_index, 32) + i, r, path))

    file_ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(file_indices, tf.int64), tf.constant(files)))
    return file_ds.interleave(
        per_file, cycle_length=min(16, len(files)), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def tfrecord_source(pattern, label_offset=0, num_classes=None, shard=None):
    """ImageNet-style shards (`image/encoded`, `image/class/label`).

    Args:
      pattern: glob or `;`-separated globs.
      label_offset: subtracted from stored labels (1 for ImageNet shards
        written by `imagenet_to_gcs.py`, whose labels are 1-based).
      num_classes: when given, a label outside [0, num_classes) stops the
        pipeline with an error naming the file.
      shard: optional (index, count).
    """
    all_files = list_files(pattern)
    files, record_shard = shard_files(all_files, shard)
    position = {path: i for i, path in enumerate(all_files)}
    ds = _records_with_ids(files, [position[path] for path in files],
                           tf.data.TFRecordDataset)

    def parse(record_id, serialized, path):
        record = features.parse_labeled(serialized, label_offset)
        record["id"] = record_id
        return _check_label(record, num_classes, path)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    if record_shard:
        ds = ds.shard(record_shard[1], record_shard[0])
    return ds


def pseudo_label_source(pattern, num_classes, shard=None):
    """Filtered pseudo-label shards (noisystudent `filter_unlabel.py` keys)."""
    files, record_shard = shard_files(list_files(pattern), shard)
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=min(16, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda s: features.parse_pseudo_label(s, num_classes),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if record_shard:
        ds = ds.shard(record_shard[1], record_shard[0])
    return ds


def list_folder(root, num_classes=None):
    """Image paths and labels of a class-per-sub-folder tree.

    Args:
      root: directory with one sub-folder per class; sorted folder names
        map to labels 0..K-1.
      num_classes: when given, the number of class folders must match.

    Returns:
      (paths, labels): lists in sorted order; a record's id is its index.

    Raises:
      DataError: missing root, no class folders, a class count that
        disagrees with `num_classes`, or no images at all.
    """
    if not tf.io.gfile.isdir(root):
        raise DataError(f"Image folder {root!r} does not exist")
    classes = sorted(
        d.rstrip("/") for d in tf.io.gfile.listdir(root)
        if tf.io.gfile.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError(f"{root!r} has no class sub-folders")
    if num_classes is not None and len(classes) != num_classes:
        raise DataError(f"{root!r} has {len(classes)} class folders, the "
                        f"config says num_classes={num_classes}")
    paths, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(tf.io.gfile.listdir(os.path.join(root, name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(root, name, file.rstrip("/")))
                labels.append(label)
    if not paths:
        raise DataError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under "
                        f"{root!r}")
    return paths, labels


def folder_source(root, num_classes=None, shard=None):
    """One sub-folder per class (sorted names -> 0..K-1), encoded images."""
    paths, labels = list_folder(root, num_classes)
    ids = np.arange(len(paths), dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(
        {"path": paths, "label": np.asarray(labels, np.int64), "id": ids})
    if shard:
        ds = ds.shard(shard[1], shard[0])
    return ds.map(
        lambda r: {"image": tf.io.read_file(r["path"]), "label": r["label"],
                   "id": r["id"]},
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def array_source(images, labels, ids=None, shard=None):
    """In-memory uint8 images [N, H, W, C] and int labels."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise DataError(f"images must be [N, H, W, C], got shape "
                        f"{images.shape}")
    if ids is None:
        ids = np.arange(len(images), dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.asarray(labels, np.int64),
         "id": np.asarray(ids, np.int64)})
    if shard:
        ds = ds.shard(shard[1], shard[0])
    return ds


def tfds_source(name, split, data_dir=None, image_key="image",
                label_key="label", shard=None):
    """A prepared tfds dataset, never downloaded (no network here)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several unrelated types.
        raise DataError(f"tfds dataset {name!r}: {error}") from error
    # as_dataset's own check rather than builder.is_prepared(): the answer
    # is the same, and tfds.testing.mock_data (which fakes as_dataset only)
    # can then exercise this function.
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as error:  # tfds: "could not find data in ..."
        raise DataError(
            f"tfds dataset {name!r} is not prepared in data_dir={data_dir!r}"
            " and cannot be downloaded here; prepare it first (for "
            "fashion_mnist: noisy_student_tf.data.fashion_mnist.build_tfds)"
        ) from error
    except (ValueError, KeyError) as error:  # unknown split, bad slice
        raise DataError(
            f"tfds dataset {name!r} split {split!r}: {error}") from error
    ds = ds.enumerate()
    if shard:
        ds = ds.shard(shard[1], shard[0])
    return ds.map(lambda i, ex: {"image": ex[image_key],
                                 "label": tf.cast(ex[label_key], tf.int64),
                                 "id": i})


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
        _, labels = list_folder(config.root, config.get("num_classes"))
        return (np.asarray(labels, np.int64),
                np.arange(len(labels), dtype=np.int64))
    ds = _make_unselected(config, shard=None)
    ds = ds.map(lambda r: (r["label"], r["id"]),
                num_parallel_calls=tf.data.AUTOTUNE)
    labels, ids = [], []
    for label, record_id in ds.batch(4096).as_numpy_iterator():
        labels.append(label)
        ids.append(record_id)
    if not labels:
        raise DataError(f"source {config.to_dict()} is empty")
    return np.concatenate(labels), np.concatenate(ids)


def _make_unselected(config, shard):
    kind = config.kind
    num_classes = config.get("num_classes")
    if kind == "fashion_mnist":
        images, labels = fashion_mnist.load_arrays(
            config.split, config.get("data_dir") or fashion_mnist.DEFAULT_DIR)
        return array_source(images, labels, shard=shard)
    if kind == "tfds":
        return tfds_source(config.name, config.split,
                           data_dir=config.get("data_dir"),
                           image_key=config.get("image_key", "image"),
                           label_key=config.get("label_key", "label"),
                           shard=shard)
    if kind == "tfrecord":
        return tfrecord_source(config.pattern,
                               label_offset=config.get("label_offset", 0),
                               num_classes=num_classes, shard=shard)
    if kind == "folder":
        return folder_source(config.root, num_classes=num_classes,
                             shard=shard)
    if kind == "files":
        return image_files.files_source(config.pattern, shard=shard)
    if kind == "pseudo_labels":
        return pseudo_label_source(config.pattern, num_classes, shard=shard)
    raise ValueError(f"Unknown source kind {kind!r}; valid: {KINDS}")


def make_source(config, shard=None):
    """Builds the source a config describes.

    Args:
      config: ConfigDict with `kind` (one of KINDS) and its fields:
        fashion_mnist: split, data_dir; tfds: name, split, data_dir,
        image_key, label_key; tfrecord: pattern, label_offset; folder: root;
        files: pattern (a directory or `;`-separated globs of an unlabeled
        pile, see image_files); pseudo_labels: pattern. Optional
        `num_classes` (label range check), `select` = {per_class, seed,
        part, validation_per_class} to keep one part of a per-class split
        (e.g. 400 labels per class) or {holdout_fraction, seed, part} to
        hold out a share of each class (part labeled or validation),
        and `limit` to keep only the first N records.
      shard: optional (index, count) for parallel labeling.

    Returns:
      A deterministic `tf.data.Dataset` of raw record dicts.
    """
    limit = config.get("limit")
    if not limit:
        return _make_selected(config, shard)
    # `limit` keeps the first N records of the whole source (quick runs,
    # tests), then shards them record by record.
    ds = _make_selected(config, None).take(limit)
    return ds.shard(shard[1], shard[0]) if shard else ds


def _make_selected(config, shard):
    select = config.get("select")
    if not select:
        return _make_unselected(config, shard)
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
        return array_source(images[positions], labels[positions],
                            ids=positions, shard=shard)
    labels, ids = _source_labels_and_ids(config)
    positions = _selected_positions(labels, select, part)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(ids[positions]),
            tf.ones(len(positions), tf.int64)), default_value=0)
    ds = _make_unselected(config, shard)
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
        from noisy_student_tf.data import diagnose  # imports this module

        if not diagnose.is_input_error(error):
            raise
        raise diagnose.explain_data_error(error, config) from error
    return count
