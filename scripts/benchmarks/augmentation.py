"""Benchmark section randaugment: our RandAugment in tf.data vs keras-cv's
and Keras' (optional imports), the no-augmentation ceiling, and the rate
the student trains at."""

import tensorflow as tf

from benchmarks import timing
from benchmarks import training
from noisy_student_tf.data import randaugment

AUTOTUNE = tf.data.AUTOTUNE

def _per_example(pool, fn, batch_size):
    ds = tf.data.Dataset.from_tensor_slices(pool).repeat()
    ds = ds.map(fn, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def _per_batch(pool, fn, batch_size):
    ds = tf.data.Dataset.from_tensor_slices(pool).repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.map(fn, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _optional_layers():
    """keras-cv and keras core RandAugment factories, None when missing."""
    layers = {}
    try:
        import keras_cv  # pylint: disable=import-outside-toplevel
        # rate=1: always apply, like the reference; magnitude 0.5 on its
        # own 0..1 scale (its scale differs from M; speed does not depend
        # on it).
        layers["keras_cv"] = lambda: keras_cv.layers.RandAugment(
            value_range=(0, 255), augmentations_per_image=2, magnitude=0.5,
            magnitude_stddev=0.0, rate=1.0)
    except ImportError:
        layers["keras_cv"] = None
    try:
        import keras  # pylint: disable=import-outside-toplevel
        layers["keras"] = lambda: keras.layers.RandAugment(
            value_range=(0, 255), num_ops=2, factor=0.5)
    except (ImportError, AttributeError):
        layers["keras"] = None
    return layers


def bench_randaugment(mode):
    """RandAugment throughput in tf.data: ours vs keras-cv vs keras core.

    Ours runs per example (each image draws its own ops); keras-cv and
    keras core run on batches, their intended use (keras core then applies
    one op sequence to the whole batch). Same pool, batch size and
    prefetch for every row. Also ours vs the rate the student trains at
    (B0 train step from efficientnet_train at the same size): augmentation
    must outpace consumption.

    Args:
      mode: "full", "quick" or "smoke".

    Returns:
      The section result dict.
    """
    batch_size = timing.by_mode(mode, 32, 32, 8)
    # Images timed per round (full mode; quick halves them).
    budget = {
        32: dict(ceiling=8000, ours=2000, ours_batched=1000, keras_cv=2000,
                 keras=1000),
        224: dict(ceiling=1000, ours=320, ours_batched=160, keras_cv=320,
                  keras=64),
    }
    scale, rounds = timing.by_mode(mode, (4, 5), (0.5, 3), (0, 1))
    layers = _optional_layers()
    rows, notes = [], []

    def ours(image):
        return randaugment.distort_image_with_randaugment(
            image, num_layers=2, magnitude=15)

    def ours_batched(images):
        return randaugment.distort_batch_with_randaugment(
            images, num_layers=2, magnitude=15)

    for size in (32, 224):
        pool = timing.image_pool(size)
        # At least 8 timed batches: tf.data computes ~2 batches ahead
        # (parallel map + prefetch), so timing one batch after the warm-up
        # measured batches already made (keras core "2,834 img/s" at 224).
        n = {k: max(batch_size * timing.by_mode(mode, 8, 8, 1),
                    int(v * scale))
             for k, v in budget[size].items()}
        candidates = [
            dict(name="ceiling (identity map)",
                 dataset=_per_example(pool, tf.identity, batch_size),
                 num_images=n["ceiling"]),
            dict(name="ours randaug(2,15) per-example",
                 dataset=_per_example(pool, ours, batch_size),
                 num_images=n["ours"]),
            dict(name="ours randaug(2,15) batched map_fn",
                 dataset=_per_batch(pool, ours_batched, batch_size),
                 num_images=n["ours_batched"]),
        ]
        for key, label in (("keras_cv", "keras-cv RandAugment"),
                           ("keras", "keras.layers.RandAugment")):
            if layers[key] is None:
                notes.append(f"{label}: not installed, skipped")
                continue
            layer = layers[key]()
            candidates.append(dict(
                name=label, num_images=n[key],
                dataset=_per_batch(
                    pool, lambda b, layer=layer: layer(b, training=True),
                    batch_size)))
        for cand in candidates:
            cand.update(batch_size=batch_size, extra=dict(size=size))
        rows += timing.time_images(candidates, rounds=rounds,
                            warmup_batches=timing.by_mode(mode, 2, 1, 1))
    for size in (32, 224):
        student = dict(training.student_row(mode, size))
        student.update(name=training.STUDENT_ROW, images=student.get("images"))
        rows.append({k: student.get(k) for k in rows[0]})
    ratios = {}
    for size in (32, 224):
        ours_name = "ours randaug(2,15) per-example"
        ratios[f"ours/keras-cv @{size}"] = timing.ratio(
            rows, ours_name, "keras-cv RandAugment", size=size)
        ratios[f"ours/keras @{size}"] = timing.ratio(
            rows, ours_name, "keras.layers.RandAugment", size=size)
        ratios[f"ours/ceiling @{size}"] = timing.ratio(
            rows, ours_name, "ceiling (identity map)", size=size)
        ratios[f"ours/student train @{size}"] = timing.ratio(
            rows, ours_name, training.STUDENT_ROW, size=size)
    notes.append(
        "ours: 16 ops (incl. Cutout), N=2, M=15, independent ops per image; "
        "keras-cv: its 10 ops, 2 per image, rate 1.0; keras core: one op "
        "sequence per batch")
    notes.append(
        f"'{training.STUDENT_ROW}': images/s of our B0 bare train step "
        "(efficientnet_train) at that size, batch 128 at 32 px and 32 at "
        "224 px; ours/student train >= 3 leaves the augmentation room "
        "beside training on the same cores")
    return dict(rows=rows, ratios=ratios, notes=notes)

