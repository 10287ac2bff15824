"""Benchmark section training_modes: precision x XLA, on this device.

The Trainer's own loop (`train_loop.make_train_loop`, what `Trainer.run`
calls) on an in-memory stage, one row per `defaults.mixed_precision` x
`defaults.jit_compile` combination, timed in interleaved rounds on
whatever device TensorFlow places it (the first GPU when there is one,
else the CPU). The ratios show each mode's speed against float32 without
XLA, the trade-off GPU/TPU users choose by.

Which combinations run (`MODES`, settable with benchmark.py
--training_modes): all six on a GPU; on a CPU, float32 with and without
XLA and bf16 without (XLA compiles EfficientNet's depthwise convolutions
into slow CPU code, 6-7x slower, and float16 has no fast CPU kernels, so
more rows would only lengthen --quick; --training_modes=fp16:off adds it).
"""

import shutil
import tempfile

import ml_collections
import numpy as np
import tensorflow as tf

from benchmarks import timing
from benchmarks import training
from noisy_student_tf.configs import common
from noisy_student_tf.training import train_loop
from noisy_student_tf.training import trainer as trainer_lib

ALL_MODES = [(p, x) for p in ("none", "bf16", "fp16") for x in (False, True)]
CPU_MODES = [("none", False), ("none", True), ("bf16", False)]
# Set by benchmark.py --training_modes; None picks by device.
MODES = None


def device_kind():
    """"GPU", "TPU" or "CPU": where TensorFlow runs the step here."""
    for kind in ("TPU", "GPU"):
        if tf.config.list_logical_devices(kind):
            return kind
    return "CPU"


def parse_modes(text):
    """"none:off,bf16:xla" -> [("none", False), ("bf16", True)].

    Raises:
      ValueError: an unknown precision or XLA word.
    """
    modes = []
    for part in filter(None, text.split(",")):
        precision, _, xla = part.partition(":")
        if precision not in ("none", "bf16", "fp16") or xla not in (
                "off", "xla"):
            raise ValueError(f"training mode {part!r}: expected "
                             "<none|bf16|fp16>:<off|xla>")
        modes.append((precision, xla == "xla"))
    return modes


def row_name(precision, jit):
    return f"Trainer loop, {precision}, XLA {'on' if jit else 'off'}"


def _stage(tiny, precision, jit, batch):
    config = dict(common.TRAIN_DEFAULTS)
    config.update(
        model=dict(name="efficientnet_b0", image_size=32, channels=3,
                   num_classes=10,
                   overrides=dict(width_coefficient=0.25,
                                  depth_coefficient=0.25) if tiny else {}),
        data={}, pp=dict(labeled='decode|flip_lr|normalize("imagenet")|'
                         'keep("image", "label")'),
        batch_size=batch, total_steps=10, checkpoint_every_steps=0,
        mixed_precision=precision, jit_compile=jit, seed=0)
    return ml_collections.ConfigDict(config)


def _candidate(tiny, precision, jit, batch, workdir):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8 * batch, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    config = _stage(tiny, precision, jit, batch)
    trainer = trainer_lib.Trainer(
        config, workdir, objective=training.InMemoryObjective(
            config, images, labels))
    trainer.initialize()
    if precision == "fp16":
        # The loss scale starts at 2^15 and halves on each overflowing step,
        # which skips its update: a short timing would see cheap skipped
        # steps. From 1 every timed step applies its update.
        trainer.optimizer.dynamic_scale.assign(1.0)
    loop = train_loop.make_train_loop(trainer)
    iterator = trainer.make_iterator()
    one = tf.constant(1, tf.int32)
    return dict(name=row_name(precision, jit),
                step=lambda: float(loop(iterator, one)["loss"]),
                batch_size=batch, extra=dict(size=32, batch=batch))


def bench_training_modes(mode):
    """Trainer loop images/s per precision x XLA mode on this device.

    Args:
      mode: "full", "quick" or "smoke".

    Returns:
      The section result dict.
    """
    kind = device_kind()
    modes = MODES or (ALL_MODES if kind == "GPU" else CPU_MODES)
    # On a CPU, --quick times the quarter-size B0: four traces (one XLA
    # compile) of the full one would double the whole --quick run.
    tiny = mode == "smoke" or (mode == "quick" and kind == "CPU")
    batch = timing.by_mode(mode, 128, 128, 4)
    steps = timing.by_mode(mode, 5, 2, 1)
    workdir = tempfile.mkdtemp(prefix="bench_modes_")
    candidates, notes = [], [f"device: {kind}"]
    try:
        for precision, jit in modes:
            timing.progress(f"trace {row_name(precision, jit)}")
            candidates.append(_candidate(
                tiny, precision, jit, batch,
                f"{workdir}/{precision}_{int(jit)}"))
            candidates[-1]["steps"] = steps
        rows = timing.time_steps(
            candidates, rounds=timing.by_mode(mode, 8, 4, 1),
            warmup_steps=timing.by_mode(mode, 2, 2, 1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = row_name("none", False)
    ratios = {}
    for precision, jit in modes:
        if (precision, jit) != ("none", False):
            ratios[f"{precision}, XLA {'on' if jit else 'off'}/none, "
                   "XLA off"] = timing.ratio(rows, row_name(precision, jit),
                                             base)
    notes += [
        "the Trainer's loop (supervised objective: RMSProp, EMA, L2, "
        "non-finite guard) on B0 at 32 px from in-memory uint8 images; "
        "with XLA the replica step is compiled (train_loop.py)",
        "fp16 rows include dynamic loss scaling (LossScaleOptimizer), its "
        "scale started at 1 so no timed step is a skipped overflow step",
    ]
    if kind == "CPU":
        notes.append("CPU: bf16 without XLA only, no fp16 (no fast float16 "
                     "CPU kernels); these rows show the cost of the modes "
                     "here (scripts/device_check.sh on a GPU)")
    if tiny:
        notes.append("quarter-width/depth B0" + (
            ", batch 4 (smoke)" if mode == "smoke" else " (--quick on CPU)"))
    return dict(rows=rows, ratios=ratios, notes=notes)
