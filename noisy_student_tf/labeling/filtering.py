"""Filtering and class balancing of pseudo labels (noisystudent
`filter_unlabel.py` semantics, restructured into resumable passes).

Pass 1 (`confidence_histogram`): per predicted class, a histogram of top-1
confidence over 101 bins 0.00 ... 1.00, one stats file per prediction
shard, summed. `select_thresholds`: per class, walk the bins from 1.00
down, accumulating counts, until `num_image` images are reached or the
threshold hits `min_threshold`. Pass 2 (`write_filtered_shard`): keep an
image when threshold <= prob <= max_prob, with `num_image / total` copies:
the integer part plus one more with probability of the fraction, so
over-full classes are subsampled and sparse ones duplicated (`upsample=False`
caps copies at 1). Output records carry `image/encoded`, `probabilities`,
`label`, `prob` (+ `id`), readable by the original code.

The reference draws the "one more" coin from a sequential RNG, so its
result depends on how records are split over workers and in what order
they come. Here the coin is a hash of (seed, record id) (`record_uniform`)
and each chunk's shuffle is seeded by (seed, shard): every engine (this
loop, or Beam workers, `beam_filter.py`) keeps and duplicates exactly the
same records, however the work is split.
"""

import math
import os

import numpy as np
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.data import features
from noisy_student_tf.data import sources
from noisy_student_tf.labeling import plots as plots_lib
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import tfrecord_io

NUM_BINS = 101
CHUNK = 10_000  # the reference shuffles and writes in chunks of 10,000.


def _stats_path(filter_dir, index, count):
    return os.path.join(filter_dir, "stats",
                        f"histogram-{index:05d}-of-{count:05d}.json")


def _bins(confidence):
    # floor(p * 100) with a guard for float32 error at bin edges (float32
    # 0.9 is 0.89999998, and 100x that must land in bin 90).
    return np.clip(np.floor(np.asarray(confidence) * 100 + 1e-4), 0,
                   NUM_BINS - 1).astype(np.int64)


def shard_histogram(labels_dir, filter_dir, index, count, num_classes):
    """Pass 1 for one prediction shard; cached in `filter_dir/stats`."""
    path = _stats_path(filter_dir, index, count)
    if tf.io.gfile.exists(path):
        return np.asarray(io_utils.read_json(path)["histogram"], np.int64)
    histogram = np.zeros((num_classes, NUM_BINS), np.int64)
    ds = predict.prediction_dataset(labels_dir, index, count, num_classes)
    for batch in ds.batch(4096).as_numpy_iterator():
        probabilities = batch["probabilities"]
        classes = probabilities.argmax(-1)
        np.add.at(histogram, (classes, _bins(probabilities.max(-1))), 1)
    tf.io.gfile.makedirs(os.path.dirname(path))
    io_utils.atomic_write_json(path, {"histogram": histogram.tolist()})
    return histogram


def confidence_histogram(labels_dir, filter_dir, num_shards, num_classes):
    """Sum of every shard's histogram: int64 [num_classes, 101]."""
    return sum(shard_histogram(labels_dir, filter_dir, i, num_shards,
                               num_classes) for i in range(num_shards))


def select_thresholds(histogram, num_image, min_threshold=0.3, max_prob=2.0,
                      use_top=True, use_all=False):
    """Per class (threshold, total images at or above it).

    With `use_top`, stop at the highest bin where the running total reaches
    `num_image`; otherwise (or if never reached) stop at `min_threshold`.
    `use_all` always walks down to `min_threshold`: every image above it is
    kept once (filter_unlabel.py `get_threshold` skips the `use_top` stop
    when `use_all` is set).
    """
    min_bin = int(math.ceil(min_threshold * 100 - 1e-6))
    thresholds = []
    for counts in histogram:
        total, chosen = 0, min_bin
        for b in range(NUM_BINS - 1, -1, -1):
            if b / 100 >= max_prob or b < min_bin:
                continue
            total += int(counts[b])
            if use_top and not use_all and total >= num_image:
                chosen = b
                break
            if b == min_bin:
                break
        thresholds.append((chosen / 100, total))
    return thresholds


def record_uniform(seed, record_ids):
    """Uniform [0, 1) draws that depend only on (seed, record id).

    SplitMix64 (Steele et al., 2014) of `seed * 2**32 + id`: a stable,
    well-mixed hash, so a record's coin does not depend on the worker, the
    shard count or the record order.

    Args:
      seed: int, the experiment seed.
      record_ids: int or int array of record ids (`sources` ids).

    Returns:
      float64 array (or scalar) in [0, 1), shaped like `record_ids`.
    """
    ids = np.asarray(record_ids).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(int(seed) & 0xFFFFFFFF) * np.uint64(1 << 32) + ids
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def copies_for(probability, label, thresholds, num_image, max_prob, draw,
               upsample=True, use_all=False):
    """How many times an image goes into the filtered set.

    Args:
      probability: the image's top-1 confidence.
      label: its predicted class.
      thresholds: `select_thresholds` output.
      num_image: target images per class.
      max_prob: images above it are dropped.
      draw: uniform [0, 1) coin of this image (`record_uniform`).
      upsample: allow more than one copy.
      use_all: keep every image above its threshold exactly once.

    Returns:
      int, the number of copies (0 = dropped).
    """
    threshold, total = thresholds[label]
    # Compare in histogram bins, so float32 0.8999999 counts as 0.90 both
    # when thresholds are chosen and when images are kept.
    if int(_bins(probability)) < int(round(threshold * 100)) or \
            probability > max_prob or total == 0:
        return 0
    if use_all:
        return 1
    expected = num_image / total
    if not upsample:
        expected = min(expected, 1.0)
    whole = int(expected)
    return whole + int(draw < expected - whole)


def _encoded_source(source_config, index, count):
    """The unlabeled source with images as encoded bytes (PNG if raw)."""
    def encode(record):
        image = record["image"]
        if image.dtype != tf.string:
            image = tf.io.encode_png(image)
        return {"image": image, "id": record["id"]}

    return sources.make_source(source_config, shard=(index, count)).map(
        encode, num_parallel_calls=tf.data.AUTOTUNE)


def write_filtered_shard(source_config, labels_dir, filter_dir, index,
                         count, num_classes, thresholds, *, num_image,
                         max_prob=2.0, upsample=True, use_all=False, seed=0):
    """Pass 2 for one shard: join images to predictions, keep, duplicate.

    Raises:
      sources.DataError: predictions and source disagree (the source
        changed since labeling).
    """
    data_dir = os.path.join(filter_dir, "data")
    if tfrecord_io.shard_complete(data_dir, tfrecord_io.FILTERED, index,
                                  count):
        return tfrecord_io.read_info(data_dir, tfrecord_io.FILTERED, index,
                                     count)
    tf.io.gfile.makedirs(data_dir)
    # Only the chunk shuffles use this: given (seed, shard) they are fixed.
    rng = np.random.RandomState([seed, index])
    per_class = np.zeros(num_classes, np.int64)
    buffer = []
    images = _encoded_source(source_config, index, count)
    preds = predict.prediction_dataset(labels_dir, index, count, num_classes)
    with tfrecord_io.AtomicShardWriter(
            data_dir, tfrecord_io.FILTERED, index, count) as writer:
        joined = tf.data.Dataset.zip(images, preds).prefetch(256)
        for image, pred in joined.as_numpy_iterator():
            if image["id"] != pred["id"]:
                raise sources.DataError(
                    f"prediction shard {index} of {count} in {labels_dir} "
                    f"does not match the unlabeled source (id "
                    f"{pred['id']} vs {image['id']}): was the source "
                    "changed after labeling? Delete the labels to redo.")
            probabilities = pred["probabilities"]
            label = int(probabilities.argmax())
            n = copies_for(float(probabilities[label]), label, thresholds,
                           num_image, max_prob,
                           float(record_uniform(seed, image["id"])),
                           upsample, use_all)
            if n:
                record = features.pseudo_label_example(
                    image["image"], probabilities, int(image["id"]))
                buffer.extend([record] * n)
                per_class[label] += n
            if len(buffer) >= CHUNK:
                _flush(buffer, writer, rng)
        _flush(buffer, writer, rng)
        writer.commit({"per_class": per_class.tolist()})
    return tfrecord_io.read_info(data_dir, tfrecord_io.FILTERED, index, count)


def _flush(buffer, writer, rng):
    rng.shuffle(buffer)
    for record in buffer:
        writer.write(record)
    buffer.clear()


def filtered_pattern(filter_dir):
    # '?????' so temporary files of a killed writer never match.
    return os.path.join(filter_dir, "data",
                        f"{tfrecord_io.FILTERED}-?????-of-?????")


def filter_and_balance(source_config, labels_dir, filter_dir, num_shards,
                       num_classes, *, min_threshold=0.3, num_image=None,
                       max_prob=2.0, upsample=True, use_all=False,
                       use_top=True, seed=0, shard_indices=None,
                       plots=True):
    """Both passes over every (or the given) shard, then stats and plots.

    Args:
      num_image: target images per class; default = unlabeled images /
        classes (the reference's SVHN setting 53113 = 531131 / 10).
      Other args: see `select_thresholds` and `copies_for`.

    Returns:
      Stats dict (also written to `filter_dir/stats.json`): thresholds,
      per-class counts before and after, totals.
    """
    io_utils.ensure_writable_dir(filter_dir)
    indices = range(num_shards) if shard_indices is None else shard_indices
    # Only our shards' temporaries: other hosts may be writing theirs.
    io_utils.remove_stale_temporaries(
        os.path.join(filter_dir, "data"), prefixes=[
            tfrecord_io.shard_name(tfrecord_io.FILTERED, i, num_shards)
            for i in indices])
    histogram = confidence_histogram(labels_dir, filter_dir, num_shards,
                                     num_classes)
    total_predictions = int(histogram.sum())
    if num_image is None:
        num_image = max(1, total_predictions // num_classes)
    thresholds = select_thresholds(histogram, num_image, min_threshold,
                                   max_prob, use_top, use_all)
    io_utils.atomic_write_json(os.path.join(filter_dir, "thresholds.json"),
                               {str(c): t for c, t in enumerate(thresholds)})
    infos = [write_filtered_shard(
        source_config, labels_dir, filter_dir, i, num_shards, num_classes,
        thresholds, num_image=num_image, max_prob=max_prob,
        upsample=upsample, use_all=use_all, seed=seed) for i in indices]
    after = np.sum([info["per_class"] for info in infos], axis=0)
    stats = {
        "num_image_per_class": num_image,
        "min_threshold": min_threshold,
        "thresholds": [t for t, _ in thresholds],
        "per_class_before": histogram.sum(1).tolist(),
        "per_class_kept_unique": [n for _, n in thresholds],
        "per_class_after": after.tolist(),
        "num_predictions": total_predictions,
        "num_records": int(after.sum()),
        "shards_written": len(infos),
    }
    io_utils.atomic_write_json(os.path.join(filter_dir, "stats.json"), stats)
    if plots:
        plots_lib.plot_filter_stats(histogram, stats, filter_dir)
    return stats
