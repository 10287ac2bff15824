"""Mixed precision: `defaults.mixed_precision` = none / bf16 / fp16.

- `bf16`: Keras' `mixed_bfloat16` policy (TPUs, recent GPUs; the reference
  trains in bfloat16 on TPU, `use_bfloat16`). bfloat16 has float32's range,
  so no loss scaling.
- `fp16`: `mixed_float16` (GPUs with float16 tensor cores) with dynamic
  loss scaling (`keras.optimizers.LossScaleOptimizer`): gradients of the
  scaled loss are unscaled before the update; a step whose gradients
  overflow is skipped and the scale halves; it doubles after 2,000 finite
  steps.

In both, layers compute in the low-precision type but every variable
(weights, batch-norm statistics, optimizer slots, EMA shadows, checkpoints)
stays float32, the logits layer computes in float32 and losses are taken
in float32. Model files and SavedModel exports are float32 models.

The dtype policy is global in Keras: it is set only while a model is built
(`policy_scope`) and restored afterwards, so later stages and other code
see float32.

Legacy configs that set `mixed_precision=True` get bf16 (what True meant
before: bfloat16 only), False or None get none.
"""

import contextlib

import keras
import tensorflow as tf

from noisy_student_tf import models

MODES = ("none", "bf16", "fp16")
_POLICIES = {"none": "float32", "bf16": "mixed_bfloat16",
             "fp16": "mixed_float16"}
# Final layers of the registry's models (EfficientNet "logits", Mixer
# "head"): computed in float32 so logits keep float32 range and precision.
HEAD_LAYERS = ("logits", "head")


def resolve(value):
    """The mode a config value names.

    Args:
      value: "none", "bf16" or "fp16"; legacy True (bf16) and False/None
        (none) are accepted.

    Returns:
      One of `MODES`.

    Raises:
      ValueError: any other value.
    """
    # The command line gives strings: "True"/"False" are the legacy bools.
    legacy = {"true": True, "false": False}
    if isinstance(value, str) and value.lower() in legacy:
        value = legacy[value.lower()]
    if value is None or value is False:
        return "none"
    if value is True:
        return "bf16"
    if isinstance(value, str) and value.lower() in MODES:
        return value.lower()
    raise ValueError(f"mixed_precision must be one of {', '.join(MODES)} "
                     f"(legacy True = bf16, False = none), got {value!r}")


def mode_of(config):
    """`resolve(config.mixed_precision)` (none when unset)."""
    return resolve(config.get("mixed_precision", "none"))


def policy_name(mode):
    """The Keras dtype policy of a mode: float32 / mixed_(b)float16."""
    return _POLICIES[resolve(mode)]


@contextlib.contextmanager
def policy_scope(mode):
    """Sets the global Keras dtype policy for `mode`, restores it on exit."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(mode))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_in_policy(build_fn, mode):
    """Calls `build_fn()` under `mode`'s policy; head layers in float32.

    Args:
      build_fn: returns a `keras.Model`.
      mode: a precision mode.

    Returns:
      The model; its `HEAD_LAYERS` compute in float32.
    """
    with policy_scope(mode):
        model = build_fn()
    if resolve(mode) != "none":
        for layer in model.layers:
            if layer.name in HEAD_LAYERS:
                layer.dtype_policy = keras.DTypePolicy("float32")
    return model


def build_model(model_config, mode="none"):
    """The registry model a `model` config describes, under `mode`.

    Args:
      model_config: name, num_classes, image_size, channels, overrides.
      mode: a precision mode (legacy bools accepted).
    """
    size = model_config.get("image_size") or models.default_image_size(
        model_config.name)
    shape = (size, size, model_config.get("channels", 3))
    overrides = dict(model_config.get("overrides") or {})
    return build_in_policy(
        lambda: models.create_model(
            model_config.name, num_classes=model_config.num_classes,
            input_shape=shape, **overrides), mode)


def is_float32(model):
    """True when every layer of `model` computes in float32."""
    # Sub-layers of a block are built under the block's own policy.
    return all(layer.compute_dtype == "float32"
               for layer in [model] + list(model.layers))


def to_float32(model):
    """`model` itself if it computes in float32, else a float32 copy.

    The copy is rebuilt from the model's config with every dtype policy
    set to float32, under the float32 global policy, and gets the same
    weights (which are float32 in every mode).
    """
    if is_float32(model):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    with policy_scope("none"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def _float32_config(value):
    if isinstance(value, list):
        return [_float32_config(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return dict(value, config=dict(value.get("config") or {},
                                       name="float32"))
    return {k: _float32_config(v) for k, v in value.items()}


def wrap_optimizer(optimizer, mode):
    """`LossScaleOptimizer(optimizer)` under fp16, else `optimizer`."""
    if resolve(mode) == "fp16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def is_loss_scaled(optimizer):
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def gradients(optimizer, tape, loss, variables):
    """d loss / d variables, of the scaled loss when loss-scaled.

    The scale enters as the initial output gradient, so objectives need
    not record a scaled loss on their tapes.
    """
    if is_loss_scaled(optimizer):
        scale = tf.cast(optimizer.dynamic_scale, loss.dtype)
        return tape.gradient(loss, variables, output_gradients=scale)
    return tape.gradient(loss, variables)


def apply(optimizer, grads, variables):
    """`optimizer.apply_gradients` (in replica context).

    Under fp16 on several replicas, Keras' `LossScaleOptimizer` decides to
    skip a step from the first replica's gradients (before their sum); an
    overflow on another replica alone then reaches the weights, and the
    trainer's non-finite check stops the run (an extra all-reduce of the
    flag here collided with the optimizer's own collectives).
    """
    optimizer.apply_gradients(zip(grads, variables))


def loss_scale(optimizer):
    """The current loss scale (a float32 tensor), or None."""
    if is_loss_scaled(optimizer):
        return tf.identity(optimizer.dynamic_scale)
    return None
