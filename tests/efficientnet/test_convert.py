"""TF1 checkpoint loading: names, EMA preference, head skipping, errors.

Checkpoints are written the TF1 way (graph-mode `tf.compat.v1.Variable`s
saved by name with `tf.compat.v1.train.Saver`), with names taken from the
spec's table (docs/reference/efficientnet.md section 12), not from the
converter.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from efficientnet import convert

INPUT_SHAPE = (32, 32, 3)
EMA = "/ExponentialMovingAverage"
SCOPE = "efficientnet-b0"

# Keras layer -> TF1 layer scope, per block kind (spec section 12; Keras'
# efficientnet_weight_update_util.py; lukemelas load_tf_weights.py).
_EXPANDED = {
    "expand_conv": "conv2d", "expand_bn": "tpu_batch_normalization",
    "depthwise_conv": "depthwise_conv2d",
    "depthwise_bn": "tpu_batch_normalization_1",
    "se/reduce_conv": "se/conv2d", "se/expand_conv": "se/conv2d_1",
    "project_conv": "conv2d_1", "project_bn": "tpu_batch_normalization_2",
}
_UNEXPANDED = {
    "depthwise_conv": "depthwise_conv2d",
    "depthwise_bn": "tpu_batch_normalization",
    "se/reduce_conv": "se/conv2d", "se/expand_conv": "se/conv2d_1",
    "project_conv": "conv2d", "project_bn": "tpu_batch_normalization_1",
}
_OUTSIDE = {
    "stem_conv": "stem/conv2d", "stem_bn": "stem/tpu_batch_normalization",
    "head_conv": "head/conv2d", "head_bn": "head/tpu_batch_normalization",
    "logits": "head/dense",
}


def tiny_model(num_classes=10, variant="efficientnet_b0", **overrides):
    # Width 0.5 keeps channel counts distinct; depth 0.5 gives 10 blocks,
    # residual blocks included.
    kwargs = {"width_coefficient": 0.5, "depth_coefficient": 0.5}
    kwargs.update(overrides)
    return efficientnet.build_variant(
        variant, input_shape=INPUT_SHAPE, num_classes=num_classes, **kwargs)


def reference_name(model, path, scope=SCOPE):
    """TF1 name of a Keras variable path, straight from the spec table."""
    parts = path.split("/")
    leaf = parts[-1]
    if parts[0] in _OUTSIDE:
        return f"{scope}/{_OUTSIDE[parts[0]]}/{leaf}"
    block, layer = parts[0], "/".join(parts[1:-1])
    expands = model.get_layer(block).expand_ratio != 1
    table = _EXPANDED if expands else _UNEXPANDED
    if layer == "depthwise_conv":
        leaf = "depthwise_kernel"
    return f"{scope}/{block}/{table[layer]}/{leaf}"


def random_values(model, rng, scope=SCOPE, suffix=""):
    values = {}
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.2, shape)
        name = reference_name(model, variable.path, scope) + suffix
        values[name] = value.astype(np.float32)
    return values


def make_values(model, scope=SCOPE, ema=True, seed=1):
    """Raw values, EMA shadows (different numbers) and optimizer noise."""
    rng = np.random.default_rng(seed)
    values = random_values(model, rng, scope)
    if ema:
        values.update(random_values(model, rng, scope, suffix=EMA))
    # Real checkpoints also hold the step and RMSProp slots.
    values["global_step"] = np.array(1234, np.int64)
    values[f"{scope}/stem/conv2d/kernel/RMSProp"] = np.ones(
        values[f"{scope}/stem/conv2d/kernel"].shape, np.float32)
    return values


def write_tf1_checkpoint(prefix, values):
    """Saves `values` by TF1 variable name; returns the checkpoint prefix."""
    with tf.Graph().as_default():
        variables = {
            name: tf.compat.v1.Variable(value, name=name)
            for name, value in values.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(prefix), write_meta_graph=False)


def assign_directly(model, values, scope=SCOPE, suffix=""):
    for variable in model.weights:
        name = reference_name(model, variable.path, scope)
        variable.assign(values.get(name + suffix, values.get(name)))


def outputs(model):
    images = np.random.default_rng(7).normal(size=(2,) + INPUT_SHAPE)
    return model(images.astype(np.float32), training=False).numpy()


def assert_same_weights(left, right):
    for a, b in zip(left.weights, right.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny B0 checkpoint with raw values and EMA shadows."""
    values = make_values(tiny_model())
    prefix = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    return write_tf1_checkpoint(prefix, values), values


def test_variable_map_matches_spec_table():
    model = tiny_model()
    pairs = convert.tf1_variable_map(model)
    assert [v.path for _, v in pairs] == [v.path for v in model.weights]
    for name, variable in pairs:
        assert name == reference_name(model, variable.path)
    names = dict((v.path, n) for n, v in pairs)
    # Block 0 (expand ratio 1): its only 1x1 conv is the projection.
    assert names["blocks_0/project_conv/kernel"] == (
        "efficientnet-b0/blocks_0/conv2d/kernel")
    assert names["blocks_0/depthwise_bn/gamma"] == (
        "efficientnet-b0/blocks_0/tpu_batch_normalization/gamma")
    assert names["blocks_1/expand_conv/kernel"] == (
        "efficientnet-b0/blocks_1/conv2d/kernel")
    assert names["blocks_1/project_bn/moving_variance"] == (
        "efficientnet-b0/blocks_1/tpu_batch_normalization_2/moving_variance")
    assert names["logits/kernel"] == "efficientnet-b0/head/dense/kernel"
    no_head = convert.tf1_variable_map(model, "x", include_head=False)
    assert len(no_head) == len(pairs) - 2
    assert all(n.startswith("x/") and "dense" not in n for n, _ in no_head)


def test_l2_names_cover_all_88_blocks():
    # Full L2 depth (88 blocks) at a tiny width: names only.
    model = efficientnet.build_variant(
        "efficientnet_l2", width_coefficient=0.1, input_shape=INPUT_SHAPE)
    assert convert.default_model_scope(model) == "efficientnet-l2"
    names = {n for n, _ in convert.tf1_variable_map(model)}
    assert all(n.startswith("efficientnet-l2/") for n in names)
    assert "efficientnet-l2/blocks_87/conv2d_1/kernel" in names
    assert not any("blocks_88/" in n for n in names)
    # Stage 1 repeats ceil(5.3) = 6 blocks, all without expansion.
    assert "efficientnet-l2/blocks_5/tpu_batch_normalization_1/beta" in names
    assert "efficientnet-l2/blocks_5/conv2d_1/kernel" not in names
    assert "efficientnet-l2/blocks_6/tpu_batch_normalization_2/beta" in names


def test_load_equals_direct_assignment_raw_only(tmp_path):
    values = make_values(tiny_model(), ema=False)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    loaded, expected = tiny_model(), tiny_model()
    report = convert.load_tf1_checkpoint(loaded, prefix)
    assign_directly(expected, values)
    assert_same_weights(loaded, expected)
    np.testing.assert_array_equal(outputs(loaded), outputs(expected))
    assert report.num_loaded == len(loaded.weights)
    assert report.num_ema == 0 and not report.ema_used
    assert report.model_scope == SCOPE and not report.head_skipped


def test_prefers_ema_shadows(checkpoint):
    prefix, values = checkpoint
    loaded, ema_model, raw_model = tiny_model(), tiny_model(), tiny_model()
    report = convert.load_tf1_checkpoint(loaded, prefix)
    assign_directly(ema_model, values, suffix=EMA)
    assign_directly(raw_model, values)
    assert_same_weights(loaded, ema_model)
    np.testing.assert_array_equal(outputs(loaded), outputs(ema_model))
    assert not np.array_equal(outputs(loaded), outputs(raw_model))
    assert report.num_ema == report.num_loaded == len(loaded.weights)

    raw_loaded = tiny_model()
    report = convert.load_tf1_checkpoint(raw_loaded, prefix, prefer_ema=False)
    assert_same_weights(raw_loaded, raw_model)
    assert report.num_ema == 0


def test_ema_falls_back_per_variable(tmp_path):
    # Shadows for trainable weights only: BN moving stats load raw.
    model = tiny_model()
    values = {n: v for n, v in make_values(model).items()
              if not (n.endswith(EMA) and "/moving_" in n)}
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    report = convert.load_tf1_checkpoint(model, prefix)
    expected = tiny_model()
    assign_directly(expected, values, suffix=EMA)
    assert_same_weights(model, expected)
    assert report.num_ema == len(model.trainable_weights)


def test_skip_head_for_another_class_count(checkpoint):
    prefix, values = checkpoint
    model = tiny_model(num_classes=7)
    with pytest.raises(ValueError, match="head/dense/kernel") as error:
        convert.load_tf1_checkpoint(model, prefix)
    assert "include_head=False" in str(error.value)
    fresh_head = model.get_layer("logits").kernel.numpy()
    report = convert.load_tf1_checkpoint(model, prefix, include_head=False)
    assert report.head_skipped
    assert report.num_loaded == len(model.weights) - 2
    np.testing.assert_array_equal(
        model.get_layer("logits").kernel.numpy(), fresh_head)
    np.testing.assert_array_equal(
        model.get_layer("head_conv").kernel.numpy(),
        values[f"{SCOPE}/head/conv2d/kernel{EMA}"])


def test_missing_variable_names_first_and_leaves_model_untouched(tmp_path):
    model = tiny_model()
    gone = f"{SCOPE}/blocks_3/tpu_batch_normalization_2/moving_mean"
    values = {n: v for n, v in make_values(model).items()
              if not n.startswith(gone)}
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ValueError) as error:
        convert.load_tf1_checkpoint(model, prefix)
    message = str(error.value)
    assert repr(gone) in message
    assert "blocks_3/project_bn/moving_mean" in message
    assert "found none" in message and "\n" not in message
    for old, variable in zip(before, model.weights):
        np.testing.assert_array_equal(old, variable.numpy())


def test_misshaped_variable_names_shapes(tmp_path):
    model = tiny_model()
    values = make_values(model)
    name = f"{SCOPE}/blocks_2/depthwise_conv2d/depthwise_kernel{EMA}"
    expected = values[name].shape
    values[name] = np.zeros((3, 3) + expected[2:], np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    with pytest.raises(ValueError) as error:
        convert.load_tf1_checkpoint(model, prefix)
    message = str(error.value)
    assert repr(name) in message
    assert "blocks_2/depthwise_conv/kernel" in message
    assert str((3, 3) + expected[2:]) in message and str(expected) in message


def test_extra_checkpoint_block_is_an_error(tmp_path):
    model = tiny_model()
    values = make_values(model)
    values[f"{SCOPE}/blocks_10/conv2d/kernel"] = np.zeros((1, 1, 8, 8))
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    with pytest.raises(ValueError, match="blocks_10/conv2d/kernel"):
        convert.load_tf1_checkpoint(model, prefix)


def test_scope_is_detected(tmp_path):
    model = tiny_model()
    scope = "noisy_student/efficientnet-b0"
    values = make_values(model, scope=scope)
    directory = tmp_path / "released"
    write_tf1_checkpoint(directory / "model.ckpt", values)
    # Released tarballs may lack the `checkpoint` state file.
    os.remove(directory / "checkpoint")
    report = convert.load_tf1_checkpoint(model, str(directory))
    assert report.model_scope == scope
    expected = tiny_model()
    assign_directly(expected, values, scope=scope, suffix=EMA)
    assert_same_weights(model, expected)
    with pytest.raises(ValueError, match=r"noisy_student/efficientnet-b0"):
        convert.load_tf1_checkpoint(model, str(directory), model_scope="b0")


def test_scope_prefers_reference_name_among_several(tmp_path):
    model = tiny_model()
    values = make_values(model, seed=2)
    values.update(make_values(model, scope="teacher_model/" + SCOPE, seed=3))
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", values)
    assert convert.load_tf1_checkpoint(model, prefix).model_scope == SCOPE
    renamed = tiny_model(name="student")
    with pytest.raises(ValueError, match="several EfficientNet scopes"):
        convert.load_tf1_checkpoint(renamed, prefix)


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No TF1 checkpoint"):
        convert.load_tf1_checkpoint(tiny_model(), str(tmp_path / "nope"))
