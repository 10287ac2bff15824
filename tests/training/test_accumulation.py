"""Gradient accumulation: k micro-batches make the update of one batch.

The model is the tiny MLP-Mixer (layer norm, no batch norm, no dropout),
so micro-batches and the whole batch see the same function; the trainer's
own loop runs on fixed batches fed through tf.data.
"""

import json
import os
import textwrap

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.configs import mpl_fashion_mnist
from noisy_student_tf.configs import common
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import train_loop
from noisy_student_tf.training import trainer
from tests import testing
from tests.training.test_precision import MIXER

BATCH = 16


def fixed_batches(num_steps, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(num_steps * BATCH, 32, 32, 1))
    labels = rng.integers(0, 10, num_steps * BATCH)
    return images.astype(np.float32), labels.astype(np.int64)


def stage(steps, **overrides):
    # RMSProp with momentum (the reference's optimizer), L2 and EMA: every
    # part of an update that depends on the gradient's scale.
    settings = dict(
        model=dict(MIXER), batch_size=BATCH, accumulation_steps=steps,
        optimizer="rmsprop", learning_rate=0.05, warmup_steps=1,
        schedule="cosine", weight_decay=1e-3)
    return testing.tiny_stage(**dict(settings, **overrides))


def train_on(config, images, labels, workdir, strategy=None):
    """Runs the trainer's loop over `images` in micro-batches; returns the
    trainer and the per-step losses."""
    run = trainer.Trainer(config, workdir, strategy=strategy)
    run.initialize()
    # Same initial weights whatever the config (seeded build).
    micro = accumulation.micro_batch_size(config)
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels}).batch(micro)
    iterator = iter(run.strategy.experimental_distribute_dataset(dataset)
                    if strategy else dataset)
    loop = train_loop.make_train_loop(run)
    losses = [float(loop(iterator, tf.constant(1))["loss"])
              for _ in range(len(images) // BATCH)]
    return run, losses


def test_micro_batches_give_the_update_of_one_batch(tmp_path, steps=4):
    images, labels = fixed_batches(3)
    whole, whole_losses = train_on(stage(1), images, labels,
                                   str(tmp_path / "one"))
    split, split_losses = train_on(stage(steps), images, labels,
                                   str(tmp_path / "k"))
    np.testing.assert_allclose(split_losses, whole_losses, rtol=1e-5)
    for a, b in zip(whole.model.weights, split.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=a.path)
    for a, b in zip(whole.ema.shadows, split.ema.shadows):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4,
                                   atol=1e-6)
    # Counters and the schedule count optimizer steps, not micro-batches.
    assert int(split.optimizer.iterations.numpy()) == 3
    assert int(split.step.numpy()) == 3


def test_schedule_logging_and_checkpoints_count_optimizer_steps(tmp_path):
    config = stage(2, total_steps=4, log_every_steps=2,
                   checkpoint_every_steps=2, warmup_steps=2)
    run = trainer.Trainer(config, str(tmp_path))
    plain = trainer.Trainer(stage(1, total_steps=4), str(tmp_path / "p"))
    assert run.steps_per_epoch == plain.steps_per_epoch == 200 // BATCH
    assert run.objective.images_per_step() == BATCH
    element = run.make_iterator().element_spec["image"]
    assert element.shape[0] == BATCH // 2  # micro-batches from the input
    run.run(progress=False)
    rows = [json.loads(line) for line in
            open(tmp_path / "metrics.jsonl") if "loss" in line]
    assert [row["step"] for row in rows] == [2, 4]
    assert rows[0]["lr"] == pytest.approx(float(run.schedule(2)))
    assert int(run.optimizer.iterations.numpy()) == 4
    assert sorted(os.listdir(tmp_path / "checkpoints"))[:2] == [
        "checkpoint", "ckpt-2.data-00000-of-00001"]


def test_bad_accumulation_settings_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="not a multiple"):
        trainer.Trainer(stage(3), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="positive integer"):
        trainer.Trainer(stage(0), str(tmp_path / "b"))
    config = mpl_fashion_mnist.get_config("quick")
    config.student.accumulation_steps = 2
    with pytest.raises(ValueError, match="mpl.*accumulation_steps"):
        trainer.Trainer(common.stage_config(
            config, config.student, method="mpl",
            data=dict(unlabeled=config.data.unlabeled.to_dict())),
            str(tmp_path / "c"))


MIRRORED = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tests.training import test_accumulation as t
    images, labels = t.fixed_batches(2)
    whole, _ = t.train_on(t.stage(1), images, labels, sys.argv[1] + "/a")
    for mode in sys.argv[2:]:
        split, losses = t.train_on(
            t.stage(2, mixed_precision=mode), images, labels,
            sys.argv[1] + "/" + mode, tf.distribute.MirroredStrategy())
        assert split.num_replicas == 2
        assert np.isfinite(losses).all(), losses
        if mode == "none":
            for a, b in zip(whole.model.weights, split.model.weights):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4,
                                           atol=1e-6, err_msg=a.path)
    print("MIRRORED OK")
""")


@pytest.mark.parametrize("modes", [
    ["none"],
    # fp16 (loss scaling) with accumulation on two replicas.
    pytest.param(["none", "fp16"], marks=pytest.mark.slow)])
def test_mirrored_strategy_accumulates_like_one_batch(tmp_path, modes):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    proc = testing.run_script([str(script), str(tmp_path)] + modes)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MIRRORED OK" in proc.stdout
