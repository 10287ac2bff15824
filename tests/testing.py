"""Shared test fixtures: tiny real-data configs and subprocess helpers."""

import os
import subprocess
import sys

import ml_collections

from noisy_student_tf.configs import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PP = 'decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")'
TINY_MODEL = dict(name="efficientnet_b0", image_size=32, channels=1,
                  num_classes=10, overrides=dict(
                      width_coefficient=0.25, depth_coefficient=0.25,
                      dropout_rate=0.2, stochastic_depth_rate=0.2))


def tiny_stage(**overrides):
    """A supervised Fashion-MNIST stage: 200 labels, 32x32, a few steps."""
    config = dict(common.TRAIN_DEFAULTS)
    config.update(
        model=dict(TINY_MODEL),
        data=dict(
            labeled=dict(kind="fashion_mnist", split="train",
                         select=dict(per_class=20, seed=0, part="labeled")),
            eval=dict(kind="fashion_mnist", split="test", limit=200)),
        pp=dict(labeled=PP + '|flip_lr|keep("image", "label")',
                eval=PP + '|keep("image", "label")'),
        # SGD learns faster than the reference RMSProp in a few steps.
        batch_size=16, total_steps=12, warmup_steps=2, learning_rate=1.0,
        optimizer="sgd",
        schedule="cosine", ema_decay=0.99, log_every_steps=4,
        checkpoint_every_steps=4, eval_batch_size=100, seed=0)
    config.update(overrides)
    return ml_collections.ConfigDict(config)


def run_script(args, timeout=600, env=None):
    """Runs `python <args>` from the repo root; returns CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                    PYTHONPATH=REPO)
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
