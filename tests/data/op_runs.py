"""Runs pp strings eagerly and inside tf.data, for the op tests."""

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import preprocess


def _spec(value, unknown_hw):
    value = tf.convert_to_tensor(value)
    shape = value.shape.as_list()
    if unknown_hw and len(shape) == 3:
        shape[:2] = [None, None]
    return tf.TensorSpec(shape, value.dtype)


def tfrun(pp, data, unknown_hw=False):
    """Runs a pp string eagerly and in `Dataset.map`; returns both outputs.

    With `unknown_hw` the dataset feeds images of unknown height and width
    (as decoded images are). Outputs are dicts of numpy arrays.
    """
    fn = preprocess.get_preprocess_fn(pp)
    eager = {k: np.asarray(v) for k, v in fn(dict(data)).items()}
    signature = {k: _spec(v, unknown_hw) for k, v in data.items()}
    ds = tf.data.Dataset.from_generator(
        lambda: iter([data]), output_signature=signature).map(fn)
    graph = {k: v.numpy() for k, v in next(iter(ds)).items()}
    return eager, graph


def image(height=32, width=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
