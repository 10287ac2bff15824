"""Benchmark sections efficientnet_train and timm_train.

Our EfficientNet-B0 against keras.applications' and timm's (PyTorch)
training steps, and the Trainer's loop against the bare step; all
training candidates are measured once per run in interleaved rounds.
"""

import gc
import json
import os
import shutil
import sys
import tempfile
import types

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from benchmarks import timing
from noisy_student_tf import models
from noisy_student_tf.configs import common
from noisy_student_tf.data import pipeline
from noisy_student_tf.data import readers
from noisy_student_tf.training.objectives import base as objectives_base
from noisy_student_tf.training import optimizers
from noisy_student_tf.training import trainer as trainer_lib

# (image size, batch size, classes): the 32x32 (SVHN/CIFAR) and the
# ImageNet settings.
TRAIN_SETUPS = {32: (128, 10), 224: (32, 1000)}
SMOKE_BATCH = {32: 4, 224: 2}
LEARNING_RATE = 0.016
OURS_ROW = "ours EfficientNet-B0"
KERAS_ROW = "keras.applications EfficientNetB0"
TIMM_ROW = "timm efficientnet_b0 (PyTorch)"
TIMM1_ROW = "timm efficientnet_b0 (PyTorch, 1 thread)"
STUDENT_ROW = "student B0 train step (efficientnet_train)"
TRAINER_ROW = "ours Trainer loop (in-memory stage)"
TRAINER_RUN_ROW = "ours Trainer.run, one log window (alone)"
BARE_ROW = "ours bare train step"

# Which training candidates the selected sections need; main() narrows it.
TRAIN_FRAMEWORKS = {"ours", "keras", "timm"}
# (mode, size) -> rows, so every section reads one interleaved measurement.
_TRAIN_ROWS = {}
# The warm bare step of ours at 32 px, reused against the Trainer.
_OURS_STEP = {}


def _random_batch(batch_size, size, classes, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch_size, size, size, 3)).astype(np.float32)
    return images, rng.integers(0, classes, batch_size)


def _tf_step(model, batch_size, size, classes):
    """One jit-free RMSProp step on a fixed in-memory batch."""
    images, labels = (tf.constant(a) for a in _random_batch(
        batch_size, size, classes))
    optimizer = optimizers.RMSPropTF(LEARNING_RATE)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=False)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda: float(train_step(images, labels))


def _ours_b0(size, classes, tiny):
    # Smoke runs use a quarter-width, quarter-depth B0 (tracing the full
    # one takes longer than the whole smoke run should).
    shrink = dict(width_coefficient=0.25, depth_coefficient=0.25) \
        if tiny else {}
    return models.create_model("efficientnet_b0", num_classes=classes,
                               input_shape=(size, size, 3), **shrink)


def _keras_b0(size, classes, tiny):
    # Logits out (no softmax), like ours; dropout 0.2 and drop-connect 0.2
    # are keras' defaults and ours. Its input rescaling/normalisation
    # layers stay in (part of that model).
    kwargs = dict(weights=None, input_shape=(size, size, 3), classes=classes,
                  classifier_activation=None)
    if tiny:
        from keras.src.applications import efficientnet as keras_effnet
        return keras_effnet.EfficientNet(0.25, 0.25, size, **kwargs)
    return keras.applications.EfficientNetB0(**kwargs)


def import_timm():
    """(torch, timm, notes), or (None, None, notes) when unavailable."""
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None, None, ["torch not installed (pip install -e .[bench]):"
                            " timm rows skipped"]
    notes = []
    try:
        import timm  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        return None, None, [f"timm not importable ({error}): skipped"]
    except RuntimeError as error:
        # PyPI's Linux torchvision wheels are CUDA builds: beside the CPU
        # torch their compiled ops do not load and `import torchvision`
        # fails registering them ("operator torchvision::nms does not
        # exist"). timm's EfficientNet uses none of those ops, so skip the
        # registrations (measuring only; nothing here calls torchvision).
        if "torchvision::" not in str(error):
            raise
        for name in [n for n in sys.modules
                     if n.split(".")[0] in ("torchvision", "timm")]:
            del sys.modules[name]
        for name in ("torchvision._meta_registrations",
                     "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
        import timm  # pylint: disable=import-outside-toplevel
        notes.append("torchvision's compiled ops do not load with the CPU "
                     "torch (PyPI ships CUDA torchvision builds): their "
                     "registration was skipped; timm's EfficientNet does "
                     "not use them")
    import timm.optim  # pylint: disable=import-outside-toplevel
    notes.append(
        f"torch {torch.__version__}, timm {timm.__version__}, eager, "
        f"channels_last, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        f"; '{TIMM_ROW}' uses {os.cpu_count()} threads like TensorFlow's "
        f"intra-op pool, '{TIMM1_ROW}' one (faster on a loaded machine)")
    return torch, timm, notes


def _timm_steps(torch, timm, batch_size, size, classes, tiny=False):
    """timm B0, same batch, same RMSProp form, channels_last (NHWC like
    TensorFlow; also the faster layout for PyTorch's oneDNN on CPU).

    Returns:
      {threads: step}: all cores (TensorFlow's intra-op pool size) and,
      on several cores, one thread; both train the same model.
    """
    # Smoke runs: timm's smallest EfficientNet (TinyNet-E) stands in.
    model = timm.create_model("tinynet_e" if tiny else "efficientnet_b0",
                              num_classes=classes, drop_rate=0.2,
                              drop_path_rate=0.2)
    model.train()
    model = model.to(memory_format=torch.channels_last)
    images, labels = _random_batch(batch_size, size, classes)
    images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(
        memory_format=torch.channels_last)
    labels = torch.from_numpy(labels)
    # timm's TF1-style RMSProp: the form ours uses.
    optimizer = timm.optim.RMSpropTF(model.parameters(), lr=LEARNING_RATE,
                                     alpha=0.9, eps=1e-3, momentum=0.9)

    def step(threads):
        torch.set_num_threads(threads)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return {n: lambda n=n: step(n) for n in sorted({os.cpu_count(), 1})}


def train_rows(mode, size):
    """B0 training images/s of every wanted framework at `size`, measured
    once per run in interleaved rounds (shared by the training sections
    and randaugment's student row)."""
    if (mode, size) in _TRAIN_ROWS:
        return _TRAIN_ROWS[(mode, size)]
    batch, classes = TRAIN_SETUPS[size]
    batch = SMOKE_BATCH[size] if mode == "smoke" else batch
    tiny = mode == "smoke"
    # Many short rounds: a median over more rounds resists the load
    # swings of a shared machine better than a few long ones.
    steps = timing.by_mode(mode, {32: 5, 224: 2}, {32: 3, 224: 1},
                    {32: 1, 224: 1})[size]
    rounds = timing.by_mode(mode, {32: 10, 224: 6}, {32: 6, 224: 3},
                     {32: 1, 224: 1})[size]
    extra = dict(size=size, batch=batch)
    candidates = [dict(name=OURS_ROW, step=_tf_step(
        _ours_b0(size, classes, tiny), batch, size, classes))]
    if "keras" in TRAIN_FRAMEWORKS:
        candidates.append(dict(name=KERAS_ROW, step=_tf_step(
            _keras_b0(size, classes, tiny), batch, size, classes)))
    notes = []
    if "timm" in TRAIN_FRAMEWORKS:
        torch, timm, notes = import_timm()
        if timm is not None:
            steps_by_threads = _timm_steps(torch, timm, batch, size,
                                           classes, tiny)
            candidates.append(dict(name=TIMM_ROW,
                                   step=steps_by_threads[os.cpu_count()]))
            if 1 in steps_by_threads and os.cpu_count() > 1:
                candidates.append(dict(name=TIMM1_ROW,
                                       step=steps_by_threads[1]))
    for cand in candidates:
        cand.update(batch_size=batch, steps=steps, extra=extra)
    rows = timing.time_steps(
        candidates, rounds=rounds,
        warmup_steps=timing.by_mode(mode, 2, {32: 2, 224: 1}[size], 1))
    timing.progress(f"train rows at {size} px: " + ", ".join(
        f"{r['name']} {r['images_per_s']}" for r in rows))
    if size == 32:
        _OURS_STEP[mode] = candidates[0]
    _TRAIN_ROWS[(mode, size)] = (rows, notes)
    del candidates
    gc.collect()
    return rows, notes


def student_row(mode, size):
    rows, _ = train_rows(mode, size)
    return next(r for r in rows if r["name"] == OURS_ROW)


class InMemoryObjective(objectives_base.SupervisedObjective):
    """Supervised objective over in-memory uint8 images (no files)."""

    def __init__(self, config, images, labels):
        super().__init__(config)
        self.images, self.labels = images, labels

    def num_labeled(self):
        return len(self.images)

    def make_dataset(self, input_context, seed):
        return pipeline.make_train_dataset(
            readers.array_source(self.images, self.labels),
            self.config.pp.labeled, self.micro_batch_size(), seed=seed,
            cache=True, input_context=input_context)

    def input_sources(self):
        return []


def _trainer_rows(mode):
    """The Trainer's loop on a real (tiny, in-memory) stage vs the bare step.

    `Trainer.run` first trains two log windows (the first traces); its
    second window is reported as is (run alone, not interleaved). Then the
    very loop function `run` traced (`Trainer.train_loop`) keeps
    stepping on a fresh iterator of the stage's pipeline, in rounds
    interleaved with the bare step: that ratio is the loop's overhead.
    """
    batch, classes = TRAIN_SETUPS[32]
    batch = SMOKE_BATCH[32] if mode == "smoke" else batch
    window = timing.by_mode(mode, 20, 5, 1)
    bare = _OURS_STEP.pop(mode, None)
    if bare is None:
        train_rows(mode, 32)
        bare = _OURS_STEP.pop(mode)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8 * batch, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, len(images))
    config = dict(common.TRAIN_DEFAULTS)
    config.update(
        model=dict(name="efficientnet_b0", image_size=32, channels=3,
                   num_classes=classes,
                   overrides=dict(width_coefficient=0.25,
                                  depth_coefficient=0.25)
                   if mode == "smoke" else {}),
        data={}, pp=dict(labeled='decode|flip_lr|normalize("imagenet")|'
                         'keep("image", "label")'),
        batch_size=batch, total_steps=2 * window, log_every_steps=window,
        checkpoint_every_steps=0, seed=0)
    config = ml_collections.ConfigDict(config)
    workdir = tempfile.mkdtemp(prefix="bench_trainer_")
    try:
        trainer = trainer_lib.Trainer(
            config, workdir, objective=InMemoryObjective(
                config, images, labels))
        timing.progress("Trainer.run on an in-memory stage")
        trainer.run(progress=False)
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            run_rates = [w["img_per_s"] for w in map(json.loads, f)
                         if "img_per_s" in w][1:]
        # The very loop function `run` traced (its public `train_loop`),
        # on a fresh iterator of the stage's pipeline.
        loop = trainer.train_loop
        iterator = trainer.make_iterator(start=1)
        one = tf.constant(1, tf.int32)
        extra = dict(size=32, batch=batch)
        candidates = [
            dict(name=TRAINER_ROW, step=lambda: float(
                loop(iterator, one)["loss"])),
            dict(name=BARE_ROW, step=bare["step"]),
        ]
        for cand in candidates:
            cand.update(batch_size=batch, steps=window, extra=extra)
        for cand in candidates:
            cand["steps"] = timing.by_mode(mode, 5, 3, 1)
        rows = timing.time_steps(candidates, rounds=timing.by_mode(mode, 10, 6, 1),
                          warmup_steps=1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows.append(timing.row(dict(name=TRAINER_RUN_ROW, extra=extra),
                     window * batch, run_rates))
    return rows


def bench_efficientnet_train(mode):
    """Our B0 vs keras.applications EfficientNetB0, training images/s.

    Same input size, batch, default strategy, `jit_compile=False`, RMSProp
    (TF1 form) and a custom `tf.function` step for both; random in-memory
    batches, so only the model's step is timed. Then the full Trainer loop
    on a tiny in-memory stage against that bare step (loop overhead).

    Args:
      mode: "full", "quick" or "smoke".

    Returns:
      The section result dict.
    """
    rows, notes = [], []
    for size in TRAIN_SETUPS:
        size_rows, _ = train_rows(mode, size)
        rows += [r for r in size_rows if r["name"] in (OURS_ROW, KERAS_ROW)]
    rows += _trainer_rows(mode)
    ratios = {}
    for size in TRAIN_SETUPS:
        ratios[f"ours/keras.applications @{size}"] = timing.ratio(
            rows, OURS_ROW, KERAS_ROW, size=size)
        ratios[f"ours/keras.applications @{size} (CPU time)"] = timing.ratio(
            rows, OURS_ROW, KERAS_ROW, key="cpu_ms_per_image", size=size)
    ratios["Trainer loop/bare step @32"] = timing.ratio(rows, TRAINER_ROW,
                                                 BARE_ROW)
    ratios["Trainer loop/bare step @32 (CPU time)"] = timing.ratio(
        rows, TRAINER_ROW, BARE_ROW, key="cpu_ms_per_image")
    notes += [
        "B0 at 32 px: 10 classes, batch 128; at 224 px: 1000 classes, "
        "batch 32; dropout 0.2 and stochastic depth 0.2 in both models; "
        "keras.applications keeps its built-in rescaling/normalisation",
        "measured interleaved with the timm rows (timm_train) when that "
        "section runs too, so this section's wall time includes them",
        "Trainer loop: the function Trainer.run traces and calls per step "
        "(supervised objective: RMSProp, EMA 0.9999, L2 1e-5, label "
        "smoothing, non-finite guard, step counter; input "
        "decode|flip_lr|normalize in tf.data from in-memory uint8 images), "
        "one step per call as steps_per_loop=1, interleaved with the bare "
        "step (no EMA, no L2, one fixed batch); 'Trainer.run' is its own "
        "second log window (run's Python bookkeeping included, not "
        "interleaved)",
    ]
    if mode == "smoke":
        notes.append("smoke: quarter-width/depth B0s, tiny batches")
    return dict(rows=rows, ratios=ratios, notes=notes)


def bench_timm_train(mode):
    """Our B0 (TensorFlow) vs timm's efficientnet_b0 (PyTorch), training.

    Same threads (all cores), batch, input size, RMSProp (TF1 form,
    timm's `RMSpropTF`) and random in-memory batches; PyTorch runs eager
    in channels_last. Skipped (ratios None) when torch/timm are missing.

    Args:
      mode: "full", "quick" or "smoke".

    Returns:
      The section result dict.
    """
    rows, notes = [], []
    for size in TRAIN_SETUPS:
        size_rows, size_notes = train_rows(mode, size)
        rows += [r for r in size_rows
                 if r["name"] in (OURS_ROW, TIMM_ROW, TIMM1_ROW)]
        notes += [n for n in size_notes if n not in notes]
    ratios = {}
    for size in TRAIN_SETUPS:
        ratios[f"ours/timm @{size}"] = timing.ratio(rows, OURS_ROW, TIMM_ROW,
                                             size=size)
        ratios[f"ours/timm @{size} (CPU time)"] = timing.ratio(
            rows, OURS_ROW, TIMM_ROW, key="cpu_ms_per_image", size=size)
        ratios[f"ours/timm 1 thread @{size}"] = timing.ratio(
            rows, OURS_ROW, TIMM1_ROW, size=size)
    notes.append("measured in the same interleaved rounds as "
                 "efficientnet_train when both run")
    if mode == "smoke":
        notes.append("smoke: ours is a quarter-width/depth B0, timm's "
                     "TinyNet-E: plumbing only")
    return dict(rows=rows, ratios=ratios, notes=notes)

