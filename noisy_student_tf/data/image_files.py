"""Piles of image files: a directory walked recursively, or globs.

The paper's unlabeled data is a big pile of images without labels (JFT,
YFCC). A user's pile is usually a folder of JPEG/PNG files at any depth,
with other files mixed in. `files_source` turns such a pile into raw
records `{"image": encoded bytes, "label": -1, "id", "path"}`:

- `id` is the file's position in the sorted list of every image file of
  the pile, so it does not depend on which host (shard) reads the file and
  the filter stage can join predictions back to images;
- `path` lets predictions name their files;
- files that do not decode are dropped *inside* the source (decoded once
  and discarded), so every pass over the pile (labeling, filtering) sees the
  same records; `listed_count` gives the number of files before dropping,
  from which the labeling stage logs how many were skipped.

`holdout_split` holds out a per-class share of a labeled class-per-folder
tree when a user gives no eval folder.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import errors

# Formats TF's decoders read (tf.io.decode_image); matched case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def is_image_name(name, extensions=IMAGE_EXTENSIONS):
    """Whether a file name has an image extension (any case)."""
    return name.lower().endswith(extensions)


def _walk(directory, extensions):
    found = []
    for root, _, names in tf.io.gfile.walk(directory):
        found += [os.path.join(root, name) for name in names
                  if is_image_name(name, extensions)]
    return found


def list_image_files(spec, extensions=IMAGE_EXTENSIONS):
    """Sorted image files of a directory (recursive) or `;`-separated globs.

    Args:
      spec: a directory, a glob (`pile/*/*.jpg`; `**` recurses on local
        disks) or several of them separated by `;`. Directories (given or
        matched) are walked to any depth; files without an image extension
        are ignored.
      extensions: the image extensions (lower case) to list.

    Returns:
      The sorted, de-duplicated list of image file paths.

    Raises:
      errors.DataError: nothing given, or no image file found.
    """
    files = []
    parts = [part for part in str(spec or "").split(";") if part]
    if not parts:
        raise errors.DataError("no image directory or glob given")
    for part in parts:
        if tf.io.gfile.isdir(part):
            files += _walk(part, extensions)
            continue
        # Python's glob for local paths: it understands `**`.
        matches = (tf.io.gfile.glob(part) if "://" in part
                   else glob.glob(part, recursive=True))
        for path in matches:
            if tf.io.gfile.isdir(path):
                files += _walk(path, extensions)
            elif is_image_name(path, extensions):
                files.append(path)
    if not files:
        raise errors.DataError(
            f"no image files ({', '.join(extensions)}, any case) in "
            f"{spec!r}")
    return sorted(set(files))


def _shard_positions(count, shard):
    positions = np.arange(count, dtype=np.int64)
    if shard is None:
        return positions
    index, shards = shard
    if not 0 <= index < shards:
        raise ValueError(f"shard index {index} not in [0, {shards})")
    return positions[index::shards]


def files_source(spec, shard=None):
    """Raw records of an image pile; undecodable files are dropped.

    Args:
      spec: see `list_image_files`.
      shard: optional (index, count): every count-th file from index.

    Returns:
      A deterministic dataset of `{"image", "label", "id", "path"}`.
    """
    paths = np.asarray(list_image_files(spec))
    positions = _shard_positions(len(paths), shard)
    ds = tf.data.Dataset.from_tensor_slices(
        {"path": paths[positions], "id": positions})

    def read(record):
        data = tf.io.read_file(record["path"])
        # Decoded only to find files that do not decode. The bytes are
        # made to depend on the decoded size: a control dependency alone
        # let tf.data's graph optimisation drop the unused decode.
        decoded = tf.io.decode_image(data, channels=3,
                                     expand_animations=False)
        data = tf.where(tf.size(decoded) >= 0, data, "")
        return {"image": data, "label": tf.constant(-1, tf.int64),
                "id": record["id"], "path": record["path"]}

    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    # Counted, not logged one by one: the labeling stage reports how many
    # files were skipped (listed_count minus records labeled).
    return ds.ignore_errors(log_warning=False)


def listed_count(spec, shard=None):
    """Image files of a pile (shard) before undecodable ones are dropped."""
    return len(_shard_positions(len(list_image_files(spec)), shard))


def holdout_split(labels, fraction, seed=0):
    """Per class, holds out `fraction` of the images (at least one).

    Args:
      labels: int labels of a labeled source, in record order.
      fraction: share of each class held out, in (0, 1).
      seed: permutation seed (deterministic split).

    Returns:
      dict "labeled" / "validation" -> sorted int64 positions.

    Raises:
      errors.DataError: a bad fraction, or a class with fewer than 2
        images.
    """
    if not 0 < fraction < 1:
        raise errors.DataError(
            f"holdout_fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    parts = {"labeled": [], "validation": []}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        if len(members) < 2:
            raise errors.DataError(
                f"class {cls} has {len(members)} image(s): too few to hold "
                "out a validation split; give an eval folder instead")
        held = min(len(members) - 1,
                   max(1, int(round(fraction * len(members)))))
        parts["validation"].append(members[:held])
        parts["labeled"].append(members[held:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64)
            for k, v in parts.items()}
