"""scripts/convert_weights.py end to end, as a user runs it (subprocess)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from efficientnet import convert

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), "scripts", "convert_weights.py")
TINY_FLAGS = ["--model=efficientnet_b0", "--width_coefficient=0.5",
              "--depth_coefficient=0.5", "--input_size=32",
              "--num_classes=10"]


def tiny_model():
    return efficientnet.build_variant(
        "efficientnet_b0", width_coefficient=0.5, depth_coefficient=0.5,
        input_shape=(32, 32, 3), num_classes=10)


def write_checkpoint(prefix):
    """A TF1 name-based checkpoint with EMA shadows, random values."""
    rng = np.random.default_rng(3)
    values = {}
    for name, variable in convert.tf1_variable_map(tiny_model()):
        for suffix in ("", convert.EMA_SUFFIX):
            values[name + suffix] = rng.uniform(
                0.5, 1.5, tuple(variable.shape)).astype(np.float32)
    with tf.Graph().as_default():
        variables = {n: tf.compat.v1.Variable(v, name=n)
                     for n, v in values.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(prefix), write_meta_graph=False)


def run_script(args, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT] + args, cwd=cwd, capture_output=True,
        text=True, timeout=120)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt")


def test_converts_and_reloads_with_equal_outputs(checkpoint, tmp_path):
    output = tmp_path / "out" / "b0.keras"
    result = run_script(
        TINY_FLAGS + [f"--checkpoint={checkpoint}", f"--output={output}"],
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1 and "EMA" in summary[0], result.stdout
    assert os.listdir(output.parent) == ["b0.keras"]  # no temporaries left

    reloaded = keras.saving.load_model(output)
    expected = tiny_model()
    convert.load_tf1_checkpoint(expected, checkpoint)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3))
    images = images.astype(np.float32)
    np.testing.assert_array_equal(
        reloaded(images, training=False).numpy(),
        expected(images, training=False).numpy())


@pytest.mark.parametrize("case", ["missing_checkpoint", "wrong_classes"])
def test_errors_exit_non_zero_with_one_line(case, checkpoint, tmp_path):
    output = tmp_path / "b0.keras"
    if case == "missing_checkpoint":
        args = TINY_FLAGS + [f"--checkpoint={tmp_path / 'nope'}"]
        expected = "No TF1 checkpoint"
    else:
        args = [a for a in TINY_FLAGS if not a.startswith("--num_classes")]
        args += ["--num_classes=7", f"--checkpoint={checkpoint}"]
        expected = "head/dense/kernel"
    result = run_script(args + [f"--output={output}"], cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, result.stderr
    assert not os.path.exists(output)
