"""Model files and checkpoints: atomic saves, weight init, clear errors.

A stage's final model is one `.keras` file (architecture + EMA weights),
which labeling, finetuning, export and the next iteration load without any
config. Loading checks architecture compatibility and names the first
mismatch instead of TensorFlow's shape error.
"""

import os
import uuid

import keras
import tensorflow as tf

# Importing the registry registers every model class for deserialising.
from noisy_student_tf import models  # noqa: F401


class CheckpointError(ValueError):
    """A checkpoint or model file does not fit the model being built."""


def save_model_atomic(model, path):
    """`model.save(path)` under a temporary name, then rename."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}.keras")
    model.save(tmp)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path


def load_model(path):
    """Loads a `.keras` model written by a stage, with a clear error."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files.
        raise CheckpointError(
            f"cannot load model {path!r}: {type(error).__name__}: "
            f"{error}") from error


def _head_names(model):
    return {"logits", "head"}


def load_weights_from(model, path, skip_head=False):
    """Copies weights from the `.keras` model at `path` into `model`.

    Layers are matched by name and every variable shape must agree (the
    EfficientNet weights do not depend on resolution, so this also loads a
    model built at another input size). With `skip_head`, the logits layer
    is left as initialised (finetuning to another class count).

    Raises:
      CheckpointError: naming the first missing layer or mis-shaped weight.
    """
    source = load_model(path)
    source_layers = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if not layer.weights or (skip_head and layer.name in _head_names(model)):
            continue
        other = source_layers.get(layer.name)
        if other is None:
            raise CheckpointError(
                f"{path}: has no layer {layer.name!r} (model {model.name!r}"
                f" vs {source.name!r}: another architecture?)")
        if len(other.weights) != len(layer.weights):
            raise CheckpointError(
                f"{path}: layer {layer.name!r} has {len(other.weights)} "
                f"weights, expected {len(layer.weights)}")
        for mine, theirs in zip(layer.weights, other.weights):
            if tuple(mine.shape) != tuple(theirs.shape):
                raise CheckpointError(
                    f"{path}: weight {theirs.path} has shape "
                    f"{tuple(theirs.shape)}, model {model.name!r} expects "
                    f"{tuple(mine.shape)} (another architecture or class "
                    "count?)")
            mine.assign(theirs.value)


def restore(checkpoint, path):
    """Restores a training checkpoint, explaining architecture mismatches."""
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.InvalidArgumentError) \
            as error:
        raise CheckpointError(
            f"checkpoint {path} does not match this model (another "
            f"architecture or config?): {str(error).splitlines()[0]}") \
            from error
