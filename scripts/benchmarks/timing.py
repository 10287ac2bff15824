"""Timing helpers and synthetic images shared by the benchmark sections.

Candidates are timed in interleaved rounds (each once per round, the order
alternating) and the median round is reported, so load changes of a
shared machine hit every candidate alike.
"""

import time

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
_START = time.perf_counter()


def progress(message):
    """A timestamped progress line (long sections say what they do)."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", flush=True)


def by_mode(mode, full, quick, smoke):
    """The value for run mode "full", "quick" or "smoke"."""
    return {"full": full, "quick": quick, "smoke": smoke}[mode]


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


def interleaved(candidates, rounds):
    """(index, candidate) for every round; odd rounds run in reverse so no
    candidate always follows the same one."""
    order = list(enumerate(candidates))
    for r in range(rounds):
        yield from (order if r % 2 == 0 else order[::-1])


def row(cand, count, rates):
    return dict(
        name=cand["name"], **cand.get("extra", {}), images=count,
        images_per_s=round(float(np.median(rates)), 1),
        min_per_s=round(min(rates), 1), max_per_s=round(max(rates), 1))


def time_images(candidates, rounds=3, warmup_batches=3):
    """Times several batched datasets side by side, interleaved by round.

    Each round times every candidate once (odd rounds in reverse order), so
    slow drifts of a shared machine's load hit all candidates alike; the
    median round is reported.

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
    for i, cand in interleaved(candidates, rounds):
        count, seconds = _time_window(
            cand["dataset"], cand["batch_size"], cand["num_images"],
            warmup_batches)
        images[i] = count
        rates[i].append(count / seconds)
    return [row(cand, count, rate)
            for cand, count, rate in zip(candidates, images, rates,
                                         strict=True)]


def time_steps(candidates, rounds=3, warmup_steps=2):
    """Times training-step callables side by side, interleaved by round.

    Args:
      candidates: dicts with "name", "step" (runs one step and waits for
        it), "batch_size", "steps" (timed per round) and optionally
        "extra" (more columns).
      rounds: timed windows per candidate.
      warmup_steps: steps run once per candidate before the rounds
        (tracing, first-run kernel selection).

    Returns:
      One row per candidate, as `time_images`, plus cpu_ms_per_image: the
      median process CPU time per image (all threads), which a busy
      machine's descheduling disturbs much less than wall time.
    """
    for cand in candidates:
        for _ in range(warmup_steps):
            cand["step"]()
    rates = [[] for _ in candidates]
    cpu_ms = [[] for _ in candidates]
    for i, cand in interleaved(candidates, rounds):
        images = cand["steps"] * cand["batch_size"]
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(cand["steps"]):
            cand["step"]()
        rates[i].append(images / (time.perf_counter() - start))
        cpu_ms[i].append(1e3 * (time.process_time() - cpu_start) / images)
    return [dict(row(cand, cand["steps"] * cand["batch_size"], rate),
                 cpu_ms_per_image=round(float(np.median(cpu)), 3))
            for cand, rate, cpu in zip(candidates, rates, cpu_ms,
                                       strict=True)]


def ratio(rows, numerator, denominator, key="images_per_s", **match):
    """images_per_s (or `key`) of row `numerator` over row `denominator`.

    Args:
      rows: rows from `time_images`.
      numerator: name of the numerator row.
      denominator: name of the denominator row.
      key: the column compared; "cpu_ms_per_image" compares CPU time
        per image inverted (a speed ratio, higher is faster).
      **match: further columns both rows must have (e.g. size=32).

    Returns:
      The ratio rounded to 2 decimals, or None when a row is missing.
    """
    def find(name):
        for row in rows:
            if row["name"] == name and all(
                    row.get(k) == v for k, v in match.items()):
                return row.get(key)
        return None

    top, bottom = find(numerator), find(denominator)
    if key == "cpu_ms_per_image":
        top, bottom = bottom, top
    if top is None or not bottom:
        return None
    return round(top / bottom, 2)


def cell(value):
    return "-" if value is None else str(value)


def print_section(name, result):
    """Prints a section's rows as a table, then its ratios and notes."""
    rows = result["rows"]
    print(f"\n== {name} ==")
    columns = [k for k in rows[0] if k != "name"] if rows else []
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  " + "  ".join(f"{c:>12}" for c in columns))
    for row in rows:
        cells = "  ".join(f"{cell(row.get(c)):>12}" for c in columns)
        print(f"{row['name']:<{width}}  {cells}")
    for key, value in result.get("ratios", {}).items():
        print(f"ratio {key}: {value}")
    for note in result.get("notes", []):
        print(f"note: {note}")


def image_pool(size, count=64, seed=0):
    # Smooth random images (upsampled noise) so histogram ops see natural
    # value spreads rather than pure noise; decode-free uint8.
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, 8, 8, 3)).astype(np.float32)
    pool = tf.image.resize(small, [size, size], method="bilinear")
    noise = rng.normal(0, 8, (count, size, size, 3)).astype(np.float32)
    return tf.cast(tf.clip_by_value(pool + noise, 0, 255), tf.uint8)
