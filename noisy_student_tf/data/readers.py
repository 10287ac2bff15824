"""One reader per source kind: tfds, TFRecord globs, folders, arrays.

Every reader yields raw records, no preprocessing: `{"image": uint8 HxWxC
or encoded bytes, "label": int64, "id": int64}` (pseudo-label shards add
"probabilities" and "prob"). `id` is stable across runs: the array index
for in-memory data, `file_index << 32 | record_index` for TFRecord files,
so the labeling and filter stages can join predictions back to images.
Piles of unlabeled image files are read by `image_files.files_source`.

Readers are deterministic in order (no shuffling here); shuffling belongs
to the training pipeline. `shard=(index, count)` splits files across hosts
when there are enough files, records otherwise.

Every parallel map here passes `deterministic=True` explicitly: an explicit
argument wins over `tf.data.Options.deterministic`, which the training
pipeline turns off, and the record-wise shards taken after a reader (here
and in `pipeline`) are only disjoint if its order is fixed.

`read_kind` picks the reader a source config names; `sources.make_source`
adds `select` and `limit` on top.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from noisy_student_tf.data import errors
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import features
from noisy_student_tf.data import image_files

KINDS = ("fashion_mnist", "tfds", "tfrecord", "folder", "files",
         "pseudo_labels")


def list_files(pattern):
    """Sorted files for a glob (or `;`-separated globs); errors if none."""
    files = []
    for part in str(pattern).split(";"):
        if not part:
            continue
        if tf.io.gfile.isdir(part):
            raise errors.DataError(
                f"{part} is a directory; give a glob such as "
                f"{os.path.join(part, 'train-*')}")
        files.extend(tf.io.gfile.glob(part))
    if not files:
        raise errors.DataError(f"No files match {pattern!r}")
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
    """Asserts labels in [0, num_classes); `where` names the file(s).

    Works on one record or a batch (then `where` holds each record's file
    and the message names the first bad one).
    """
    if num_classes is None:
        return record
    label = record["label"]
    ok = tf.logical_and(label >= 0, label < num_classes)
    if label.shape.rank:
        where = tf.boolean_mask(where, ~ok)[:1]
        label = tf.boolean_mask(label, ~ok)[:1]
    tf.debugging.Assert(
        tf.reduce_all(ok),
        [f"label outside [0, {num_classes}) in", where, "label:", label],
        name="label_range")
    return record


def _parse(ds, parse, batch_size):
    """`ds.map(parse)`, or with one parse op per `batch_size` records.

    Batched, `parse` gets a batch of elements (a leading dimension on each
    part) and returns a batch of records, which are then unbatched: the
    same records in the same order, with one `tf.io.parse_example` per
    batch instead of a `parse_single_example` and a map call per record.

    A record that fails to parse or to check fails its whole batch (the
    same kind of error; `diagnose` names the record). Use batches where
    such an error stops the run, not under an `ignore_errors` meant to
    drop single records: labeling qualifies, since with `skip_corrupt` it
    counts each shard by reading every record first. Corrupt images are
    unaffected: they fail when decoded, per image, in the pp map.
    """
    if not batch_size:
        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
    ds = ds.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=True)
    return ds.unbatch()


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


def tfrecord_source(pattern, label_offset=0, num_classes=None, shard=None,
                    parse_batch_size=None):
    """ImageNet-style shards (`image/encoded`, `image/class/label`).

    Args:
      pattern: glob or `;`-separated globs.
      label_offset: subtracted from stored labels (1 for ImageNet shards
        written by `imagenet_to_gcs.py`, whose labels are 1-based).
      num_classes: when given, a label outside [0, num_classes) stops the
        pipeline with an error naming the file.
      shard: optional (index, count).
      parse_batch_size: parse this many records at a time (see `_parse`
        for what a bad record then does); None: one by one.
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

    ds = _parse(ds, parse, parse_batch_size)
    if record_shard:
        ds = ds.shard(record_shard[1], record_shard[0])
    return ds


def pseudo_label_source(pattern, num_classes, shard=None,
                        parse_batch_size=None):
    """Filtered pseudo-label shards (noisystudent `filter_unlabel.py` keys).

    `parse_batch_size` as in `tfrecord_source`.
    """
    files, record_shard = shard_files(list_files(pattern), shard)
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=min(16, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _parse(ds, lambda s: features.parse_pseudo_label(s, num_classes),
                parse_batch_size)
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
      errors.DataError: missing root, no class folders, a class count that
        disagrees with `num_classes`, or no images at all.
    """
    if not tf.io.gfile.isdir(root):
        raise errors.DataError(f"Image folder {root!r} does not exist")
    classes = sorted(
        d.rstrip("/") for d in tf.io.gfile.listdir(root)
        if tf.io.gfile.isdir(os.path.join(root, d)))
    if not classes:
        raise errors.DataError(f"{root!r} has no class sub-folders")
    if num_classes is not None and len(classes) != num_classes:
        raise errors.DataError(
            f"{root!r} has {len(classes)} class folders, the config says "
            f"num_classes={num_classes}")
    paths, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(tf.io.gfile.listdir(os.path.join(root, name))):
            if file.lower().endswith(image_files.IMAGE_EXTENSIONS):
                paths.append(os.path.join(root, name, file.rstrip("/")))
                labels.append(label)
    if not paths:
        raise errors.DataError(
            f"No images ({', '.join(image_files.IMAGE_EXTENSIONS)}) under "
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
        raise errors.DataError(
            f"images must be [N, H, W, C], got shape {images.shape}")
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
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several unrelated types.
        raise errors.DataError(f"tfds dataset {name!r}: {error}") from error
    # as_dataset's own check rather than builder.is_prepared(): the answer
    # is the same, and tfds.testing.mock_data (which fakes as_dataset only)
    # can then exercise this function.
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as error:  # tfds: "could not find data in ..."
        raise errors.DataError(
            f"tfds dataset {name!r} is not prepared in data_dir={data_dir!r}"
            " and cannot be downloaded here; prepare it first (for "
            "fashion_mnist: noisy_student_tf.data.fashion_mnist.build_tfds)"
        ) from error
    except (ValueError, KeyError) as error:  # unknown split, bad slice
        raise errors.DataError(
            f"tfds dataset {name!r} split {split!r}: {error}") from error
    ds = ds.enumerate()
    if shard:
        ds = ds.shard(shard[1], shard[0])
    return ds.map(lambda i, ex: {"image": ex[image_key],
                                 "label": tf.cast(ex[label_key], tf.int64),
                                 "id": i})



def read_kind(config, shard=None, parse_batch_size=None):
    """The raw records of the source kind a config names (no select/limit).

    Args:
      config: ConfigDict with `kind` (one of KINDS) and its fields (see
        `sources.make_source`).
      shard: optional (index, count).
      parse_batch_size: TFRecord kinds parse this many records at a time
        (see `tfrecord_source`); other kinds ignore it.

    Returns:
      A deterministic `tf.data.Dataset` of raw record dicts.
    """
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
                               num_classes=num_classes, shard=shard,
                               parse_batch_size=parse_batch_size)
    if kind == "folder":
        return folder_source(config.root, num_classes=num_classes,
                             shard=shard)
    if kind == "files":
        return image_files.files_source(config.pattern, shard=shard)
    if kind == "pseudo_labels":
        return pseudo_label_source(config.pattern, num_classes, shard=shard,
                                   parse_batch_size=parse_batch_size)
    raise ValueError(f"Unknown source kind {kind!r}; valid: {KINDS}")
