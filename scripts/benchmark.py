r"""Side-by-side speed benchmarks, measured in one run on one machine.

Absolute numbers on shared machines are noisy; the ratios between rows
measured in the same run are what the benchmark reports.

Usage:
  python scripts/benchmark.py --quick --sections=randaugment \
      --output=benchmark.json

Adding a section: write `bench_<name>(quick) -> dict` returning
`{"rows": [...], "ratios": {...}, "notes": [...]}` (rows from `time_images`
or dicts with at least "name" and "images_per_s") and add it to `SECTIONS`.
"""

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from noisy_student_tf.data import randaugment  # noqa: E402

_QUICK = flags.DEFINE_bool(
    "quick", False, "Fewer images per measurement (whole run in minutes).")
_OUTPUT = flags.DEFINE_string(
    "output", "benchmark.json", "Where to write the JSON results.")
_SECTIONS = flags.DEFINE_list(
    "sections", [], "Comma list of sections to run; empty runs all.")

AUTOTUNE = tf.data.AUTOTUNE


# === Common helpers ===

def _time_window(dataset, batch_size, num_images, warmup_batches):
    """Seconds for `num_images` from a fresh iterator after a warm-up."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    num_batches = max(1, -(-num_images // batch_size))
    start = time.perf_counter()
    for _ in range(num_batches):
        # Pull the values to the host so nothing is left pending.
        tf.nest.map_structure(lambda t: t.numpy(), next(iterator))
    seconds = time.perf_counter() - start
    # A fresh iterator per window: an idle one keeps filling its prefetch
    # buffer and would start the next window with free batches.
    del iterator
    return num_batches * batch_size, seconds


def time_images(candidates, rounds=3, warmup_batches=3):
    """Times several batched datasets side by side, interleaved by round.

    Each round times every candidate once, so slow drifts of a shared
    machine's load hit all candidates alike; the median round is reported.

    Args:
      candidates: dicts with "name", "dataset" (batched, repeating),
        "batch_size", "num_images" (timed per round, rounded up to whole
        batches) and optionally "extra" (more columns, e.g. size).
      rounds: timed windows per candidate.
      warmup_batches: batches consumed before each window (tracing,
        function instantiation, autotune ramp-up).

    Returns:
      One row per candidate: name, extra columns, images (per round),
      images_per_s (median over rounds) and min/max images_per_s.
    """
    rates = [[] for _ in candidates]
    images = [0] * len(candidates)
    for _ in range(rounds):
        for i, cand in enumerate(candidates):
            count, seconds = _time_window(
                cand["dataset"], cand["batch_size"], cand["num_images"],
                warmup_batches)
            images[i] = count
            rates[i].append(count / seconds)
    rows = []
    for cand, count, rate in zip(candidates, images, rates, strict=True):
        rows.append(dict(
            name=cand["name"], **cand.get("extra", {}), images=count,
            images_per_s=round(float(np.median(rate)), 1),
            min_per_s=round(min(rate), 1), max_per_s=round(max(rate), 1)))
    return rows


def ratio(rows, numerator, denominator, **match):
    """images_per_s of row `numerator` over row `denominator`.

    Args:
      rows: rows from `time_images`.
      numerator: name of the numerator row.
      denominator: name of the denominator row.
      **match: further columns both rows must have (e.g. size=32).

    Returns:
      The ratio rounded to 2 decimals, or None when a row is missing.
    """
    def find(name):
        for row in rows:
            if row["name"] == name and all(
                    row.get(k) == v for k, v in match.items()):
                return row["images_per_s"]
        return None

    top, bottom = find(numerator), find(denominator)
    if top is None or not bottom:
        return None
    return round(top / bottom, 2)


def print_section(name, result):
    """Prints a section's rows as a table, then its ratios and notes."""
    rows = result["rows"]
    print(f"\n== {name} ==")
    columns = [k for k in rows[0] if k != "name"] if rows else []
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  " + "  ".join(f"{c:>12}" for c in columns))
    for row in rows:
        cells = "  ".join(f"{row.get(c, ''):>12}" for c in columns)
        print(f"{row['name']:<{width}}  {cells}")
    for key, value in result.get("ratios", {}).items():
        print(f"ratio {key}: {value}")
    for note in result.get("notes", []):
        print(f"note: {note}")


# === Section: randaugment ===

def _image_pool(size, count=64, seed=0):
    # Smooth random images (upsampled noise) so histogram ops see natural
    # value spreads rather than pure noise; decode-free uint8.
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, 8, 8, 3)).astype(np.float32)
    pool = tf.image.resize(small, [size, size], method="bilinear")
    noise = rng.normal(0, 8, (count, size, size, 3)).astype(np.float32)
    return tf.cast(tf.clip_by_value(pool + noise, 0, 255), tf.uint8)


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


def bench_randaugment(quick):
    """RandAugment throughput in tf.data: ours vs keras-cv vs keras core.

    Ours runs per example (each image draws its own ops); keras-cv and
    keras core run on batches, their intended use (keras core then applies
    one op sequence to the whole batch). Same pool, batch size and
    prefetch for every row.

    Args:
      quick: fewer images per row.

    Returns:
      The section result dict.
    """
    batch_size = 32
    # Images timed per round; keras core runs ~35 img/s at 224 px.
    budget = {
        32: dict(ceiling=8000, ours=2000, ours_batched=1000, keras_cv=2000,
                 keras=1000),
        224: dict(ceiling=1000, ours=320, ours_batched=160, keras_cv=320,
                  keras=64),
    }
    scale, rounds = (1, 3) if quick else (4, 5)
    layers = _optional_layers()
    rows, notes = [], []

    def ours(image):
        return randaugment.distort_image_with_randaugment(
            image, num_layers=2, magnitude=15)

    def ours_batched(images):
        return randaugment.distort_batch_with_randaugment(
            images, num_layers=2, magnitude=15)

    for size in (32, 224):
        pool = _image_pool(size)
        n = {k: v * scale for k, v in budget[size].items()}
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
        rows += time_images(candidates, rounds=rounds, warmup_batches=2)
    ratios = {}
    for size in (32, 224):
        ours_name = "ours randaug(2,15) per-example"
        ratios[f"ours/keras-cv @{size}"] = ratio(
            rows, ours_name, "keras-cv RandAugment", size=size)
        ratios[f"ours/keras @{size}"] = ratio(
            rows, ours_name, "keras.layers.RandAugment", size=size)
        ratios[f"ours/ceiling @{size}"] = ratio(
            rows, ours_name, "ceiling (identity map)", size=size)
    notes.append(
        "ours: 16 ops (incl. Cutout), N=2, M=15, independent ops per image; "
        "keras-cv: its 10 ops, 2 per image, rate 1.0; keras core: one op "
        "sequence per batch")
    return dict(rows=rows, ratios=ratios, notes=notes)


SECTIONS = {
    "randaugment": bench_randaugment,
}


# === Main ===

def main(argv):
    del argv
    names = _SECTIONS.value or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise app.UsageError(
            f"Unknown sections {unknown}; known: {sorted(SECTIONS)}")
    report = dict(
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                     tensorflow=tf.__version__),
        quick=_QUICK.value, sections={})
    for name in names:
        start = time.perf_counter()
        result = SECTIONS[name](_QUICK.value)
        result["wall_s"] = round(time.perf_counter() - start, 1)
        report["sections"][name] = result
        print_section(name, result)
        print(f"({name}: {result['wall_s']} s)")
    with open(_OUTPUT.value, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
