"""Exponential moving average of model weights, with the num_updates ramp.

decay_t = min(decay, (1 + t) / (10 + t)) as `tf.train.ExponentialMovingAverage
(num_updates=t)` computes it in the reference. The average covers trainable
weights *and* batch-norm moving statistics (the reference averages both and
its teachers read `<var>/ExponentialMovingAverage` for all of them), and it
is what evaluation, pseudo-labeling and export use by default.
"""

import contextlib

import tensorflow as tf


def averaged_variables(model):
    """Trainable weights plus non-trainable float state (BN statistics).

    Seed-generator states (integer) are excluded.
    """
    return [v for v in model.weights if v.dtype.startswith("float")]


class ExponentialMovingAverage(tf.Module):
    """Shadow copies of a model's weights, updated after each step.

    Create it inside the strategy scope so the shadows are mirrored like
    the weights. `update` runs in cross-replica context (after
    `strategy.run`), where every replica holds identical weights.
    """

    def __init__(self, model, decay=0.9999, name="ema"):
        super().__init__(name=name)
        self.decay = float(decay)
        self._model_variables = averaged_variables(model)
        self.shadows = [
            tf.Variable(tf.convert_to_tensor(v.value), trainable=False,
                        name=v.path.replace("/", "_") + "_ema")
            for v in self._model_variables
        ]

    def decay_at(self, step):
        step = tf.cast(step, tf.float32)
        return tf.minimum(self.decay, (1.0 + step) / (10.0 + step))

    def update(self, step):
        decay = self.decay_at(step)
        for shadow, variable in zip(self.shadows, self._model_variables):
            value = tf.cast(variable.value, shadow.dtype)
            shadow.assign(decay * shadow + (1.0 - decay) * value)

    def reset(self):
        """Copies the current weights into the shadows (e.g. after init)."""
        for shadow, variable in zip(self.shadows, self._model_variables):
            shadow.assign(tf.cast(variable.value, shadow.dtype))

    def copy_to(self, model):
        """Writes the averages into `model` (same architecture)."""
        targets = averaged_variables(model)
        if len(targets) != len(self.shadows):
            raise ValueError(
                f"EMA holds {len(self.shadows)} variables, the model has "
                f"{len(targets)}: not the same architecture")
        for shadow, variable in zip(self.shadows, targets):
            variable.assign(tf.cast(shadow, variable.dtype))

    @contextlib.contextmanager
    def swapped(self):
        """Temporarily puts the averages into the trained model."""
        backup = [tf.identity(v.value) for v in self._model_variables]
        for shadow, variable in zip(self.shadows, self._model_variables):
            variable.assign(tf.cast(shadow, variable.dtype))
        try:
            yield
        finally:
            for saved, variable in zip(backup, self._model_variables):
                variable.assign(saved)
