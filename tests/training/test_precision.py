"""Mixed precision (none / bf16 / fp16) through the real Trainer.

A tiny MLP-Mixer on real Fashion-MNIST keeps each run at seconds; every
objective (supervised, Noisy Student online, KD, MEAL V2, MPL) trains a few
steps in bf16 and fp16. The slow test repeats the supervised run with the
small EfficientNet (batch norm, depthwise convolutions).
"""

import json
import os

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.configs import common
from noisy_student_tf.configs import kd_fashion_mnist
from noisy_student_tf.configs import meal_v2_fashion_mnist
from noisy_student_tf.configs import mpl_fashion_mnist
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import precision
from noisy_student_tf.training import train_loop
from noisy_student_tf.training import trainer
from tests import testing

MIXER = dict(name="mixer_s32", image_size=32, channels=1, num_classes=10,
             overrides=dict(patch_size=8, hidden_dim=16, num_blocks=1,
                            tokens_mlp_dim=8, channels_mlp_dim=16))
COMPUTE = {"none": "float32", "bf16": "bfloat16", "fp16": "float16"}


def history(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def test_modes_and_legacy_values_resolve():
    assert precision.resolve("BF16") == "bf16"
    assert precision.resolve(True) == "bf16"
    assert precision.resolve(False) == precision.resolve(None) == "none"
    assert precision.policy_name("fp16") == "mixed_float16"
    with pytest.raises(ValueError, match="none, bf16, fp16"):
        precision.resolve("float16")


def check_float32_state(run):
    """Weights, EMA, optimizer state: float32 and finite."""
    state = (run.model.weights + run.optimizer.variables
             + (run.ema.shadows if run.ema else []))
    for variable in state:
        dtype = tf.as_dtype(variable.dtype)
        if dtype.is_floating:
            assert dtype == tf.float32, variable.name
            assert np.isfinite(np.asarray(variable.numpy())).all()


def check_model_file(path):
    model = checkpoints.load_model(path)
    assert precision.is_float32(model)
    out = model(np.zeros((1,) + model.input_shape[1:], np.float32))
    assert out.dtype == tf.float32


@pytest.mark.parametrize("mode", ["none", "bf16", "fp16"])
def test_supervised_steps_in_each_mode(tmp_path, mode):
    config = testing.tiny_stage(model=dict(MIXER), mixed_precision=mode,
                                total_steps=4, log_every_steps=2)
    run = trainer.Trainer(config, str(tmp_path))
    images = np.zeros((2, 32, 32, 1), np.float32)
    assert run.model.get_layer("stem").compute_dtype == COMPUTE[mode]
    assert run.model(images).dtype == tf.float32  # logits in float32
    result = run.run(progress=False)
    losses = [row["loss"] for row in history(tmp_path)]
    assert len(losses) == 2 and np.isfinite(losses).all()
    check_float32_state(run)
    check_model_file(result["model_path"])
    # The global policy is restored for whatever runs next.
    assert keras.config.dtype_policy().name == "float32"
    if mode == "fp16":
        assert "loss_scale" in history(tmp_path)[-1]


def test_fp16_overflow_step_is_skipped_and_scale_drops(tmp_path):
    config = testing.tiny_stage(model=dict(MIXER), mixed_precision="fp16",
                                warmup_steps=0)
    run = trainer.Trainer(config, str(tmp_path))
    run.initialize()
    loop = train_loop.make_train_loop(run)
    iterator = run.make_iterator()
    one = tf.constant(1, tf.int32)
    # The Mixer's head starts at zero, which would stop every gradient
    # below it.
    head = run.model.get_layer("head").kernel
    head.assign(np.random.default_rng(0).normal(size=head.shape) * 0.1)
    # Loss x 2^60 is finite in float32 but its gradient overflows float16
    # in the first layer below the float32 head.
    run.optimizer.dynamic_scale.assign(2.0 ** 60)
    before = [w.numpy().copy() for w in run.model.trainable_weights]
    metrics = loop(iterator, one)
    assert np.isfinite(float(metrics["loss"]))
    assert float(run.optimizer.dynamic_scale.numpy()) == 2.0 ** 59
    for old, new in zip(before, run.model.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())
    assert int(run.optimizer.iterations.numpy()) == 0  # no update
    run.optimizer.dynamic_scale.assign(1.0)
    loop(iterator, one)
    assert float(run.optimizer.dynamic_scale.numpy()) == 1.0
    assert int(run.optimizer.iterations.numpy()) == 1
    assert any(not np.array_equal(old, new.numpy()) for old, new in
               zip(before, run.model.trainable_weights))


def _teacher_file(tmp_path):
    path = str(tmp_path / "teacher.keras")
    model = precision.build_model(ml_collections.ConfigDict(MIXER))
    checkpoints.save_model_atomic(model, path)
    return path


def _method_stage(name, tmp_path):
    """A 2-step stage of `name` on the tiny Mixer (configs' quick data)."""
    if name in ("kd", "online"):
        config = kd_fashion_mnist.get_config("quick")
        stage = config.student
        stage.teacher = dict(path=_teacher_file(tmp_path))
        extra = dict(method="kd") if name == "kd" else dict(
            unlabel_ratio=1, mode="online",
            data=dict(unlabeled=config.data.labeled.to_dict()),
            pp=dict(unlabeled=stage.pp.labeled,
                    teacher=stage.pp.labeled.replace(
                        'keep("image", "label")', 'keep("image")')))
        if name == "online":
            del stage["alpha"]
    elif name == "meal_v2":
        config = meal_v2_fashion_mnist.get_config("quick")
        stage = config.student
        stage.teacher = dict(paths=[_teacher_file(tmp_path)] * 2)
        extra = dict(method="meal_v2")
    else:
        config = mpl_fashion_mnist.get_config("quick")
        stage = config.student
        stage.teacher.model = dict(MIXER)
        extra = dict(method="mpl", data=dict(
            unlabeled=config.data.unlabeled.to_dict()))
    stage.model = dict(MIXER)
    stage.total_steps = 2
    stage.eval_every_steps = 0
    config.data.eval.limit = 20
    config.defaults.update(log_every_steps=1, eval_every_steps=0,
                           checkpoint_every_steps=0)
    return common.stage_config(config, stage, **extra)


# fp16 runs in CI (loss scaling passes through every objective's update);
# bf16 (the policy alone) is slow-marked: ~25 s per run on 2 cores.
@pytest.mark.parametrize("mode", [
    "fp16", pytest.param("bf16", marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", ["online", "kd", "meal_v2", "mpl"])
def test_every_objective_trains_in_mixed_precision(tmp_path, method, mode):
    stage = _method_stage(method, tmp_path)
    stage.mixed_precision = mode
    run = trainer.Trainer(stage, str(tmp_path / "run"))
    run.run(progress=False)
    rows = [row for row in history(tmp_path / "run") if "loss" in row]
    assert len(rows) == 2
    assert all(np.isfinite(row["loss"]) for row in rows)
    check_float32_state(run)
    if method == "mpl":
        teacher = run.objective.teacher
        assert teacher.get_layer("stem").compute_dtype == COMPUTE[mode]
        assert all(w.dtype == "float32" for w in teacher.weights)
        if mode == "fp16":
            assert precision.is_loss_scaled(run.objective.teacher_optimizer)
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_efficientnet_trains_in_each_mode(tmp_path, mode):
    config = testing.tiny_stage(mixed_precision=mode, total_steps=4,
                                log_every_steps=2)
    run = trainer.Trainer(config, str(tmp_path))
    assert run.model.get_layer("stem_conv").compute_dtype == COMPUTE[mode]
    result = run.run(progress=False)
    assert np.isfinite([row["loss"] for row in history(tmp_path)]).all()
    check_float32_state(run)
    check_model_file(result["model_path"])


def test_export_of_a_mixed_policy_model_file_is_float32(tmp_path):
    from noisy_student_tf import export

    with precision.policy_scope("bf16"):
        model = keras.Sequential([
            keras.Input((32, 32, 1)), keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits")])
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    # Precondition: this file keeps its bfloat16 policy when loaded.
    assert not precision.is_float32(checkpoints.load_model(path))
    export_dir = export.export_saved_model(
        path, testing.PP + '|keep("image")', str(tmp_path / "export"))
    serving = export.load_serving(export_dir)
    signature = serving.signatures["serving_default"]
    assert "DT_BFLOAT16" not in str(signature.graph.as_graph_def())
    out = signature(images=tf.zeros([2, 28, 28, 1], tf.uint8))
    assert out["probabilities"].dtype == tf.float32


@pytest.mark.parametrize("mode", ["none", "fp16"])
def test_jit_compiled_steps_train(tmp_path, mode):
    config = testing.tiny_stage(model=dict(MIXER), mixed_precision=mode,
                                jit_compile=True, total_steps=2,
                                log_every_steps=1, checkpoint_every_steps=0)
    config.data.eval.limit = 20
    trainer.Trainer(config, str(tmp_path)).run(progress=False)
    losses = [row["loss"] for row in history(tmp_path) if "loss" in row]
    assert len(losses) == 2 and np.isfinite(losses).all()
