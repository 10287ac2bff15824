"""Tiny real inputs for the data tests: TFRecord shards and image folders.

Images are random 32x32 PNGs (PNG round-trips exactly, so tests compare
bytes and pixels); labels cycle through the classes so every shard holds
every class. Helpers return what they wrote, for exact comparisons.
"""

import os

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import features

NUM_CLASSES = 10


def random_image(rng, size=32, channels=3):
    return rng.randint(0, 256, (size, size, channels), dtype=np.uint8)


def png(image):
    return tf.io.encode_png(image).numpy()


def write_labeled_shards(directory, counts, *, prefix="train",
                         label_offset=0, seed=0, labels=None):
    """Writes `len(counts)` labeled shards `prefix-%05d-of-%05d`.

    Args:
      directory: output directory (created).
      counts: records per shard.
      prefix: file name prefix.
      label_offset: stored label = label + offset (1 for ImageNet shards).
      seed: image seed.
      labels: optional {(file_index, record_index): label} overrides, e.g.
        an out-of-range label.

    Returns:
      List of (path, [encoded images], [0-based labels]) per shard.
    """
    os.makedirs(directory, exist_ok=True)
    rng = np.random.RandomState(seed)
    labels = labels or {}
    written = []
    for file_index, count in enumerate(counts):
        path = os.path.join(
            directory, f"{prefix}-{file_index:05d}-of-{len(counts):05d}")
        images, file_labels = [], []
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(count):
                image = png(random_image(rng))
                label = labels.get((file_index, i),
                                   (file_index * 7 + i) % NUM_CLASSES)
                writer.write(features.labeled_example(
                    image, label, label_offset=label_offset))
                images.append(image)
                file_labels.append(label)
        written.append((path, images, file_labels))
    return written


def write_pseudo_label_shards(directory, counts, *, seed=0,
                              with_ids=True):
    """Writes filtered pseudo-label shards; returns per-shard contents.

    Returns:
      List of (path, [encoded images], [probabilities], [ids]).
    """
    os.makedirs(directory, exist_ok=True)
    rng = np.random.RandomState(seed)
    written = []
    for file_index, count in enumerate(counts):
        path = os.path.join(
            directory, f"train-0-{file_index:05d}-of-{len(counts):05d}")
        images, probs, ids = [], [], []
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(count):
                image = png(random_image(rng))
                p = rng.dirichlet(np.ones(NUM_CLASSES)).astype(np.float32)
                record_id = 1000 * file_index + i
                writer.write(features.pseudo_label_example(
                    image, p, record_id if with_ids else None))
                images.append(image)
                probs.append(p)
                ids.append(record_id if with_ids else -1)
        written.append((path, images, probs, ids))
    return written


def write_folder(root, per_class, *, seed=0):
    """Class-per-folder images; returns [(path, label, pixels)] sorted."""
    rng = np.random.RandomState(seed)
    rows = []
    for label, name in enumerate(sorted(per_class)):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class[name]):
            pixels = random_image(rng)
            path = os.path.join(root, name, f"img_{i:03d}.png")
            with open(path, "wb") as handle:
                handle.write(png(pixels))
            rows.append((path, label, pixels))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def truncate(path, num_bytes=40):
    """Cuts the last bytes off a file (a shard copy that died midway)."""
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:-num_bytes])


def collect(dataset, keys=("id", "label")):
    """All records of a (raw, unbatched) dataset as numpy lists per key."""
    out = {key: [] for key in keys}
    for record in dataset.as_numpy_iterator():
        for key in keys:
            out[key].append(record[key])
    return out
