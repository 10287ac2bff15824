"""Tiny stand-ins for method tests: dense models and a minimal trainer.

Objectives only touch a few trainer attributes in `replica_step`; this
trainer provides them so a step runs in milliseconds on hand-made data.
"""

import keras
import tensorflow as tf


def dense_model(inputs, classes, kernel=None, name=None):
    """Linear logits model on flat features; optional fixed kernel."""
    model = keras.Sequential([
        keras.Input((inputs,)),
        keras.layers.Dense(classes, name="logits",
                           kernel_initializer="zeros"
                           if kernel is None else "glorot_uniform"),
    ], name=name)
    if kernel is not None:
        model.layers[-1].kernel.assign(kernel)
    return model


def image_model(classes, shape=(32, 32, 1), seed=0, name=None):
    """A small model on images (saved as a stand-in teacher)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(classes, name="logits")], name=name)


class FakeTrainer:
    """What `replica_step` reads: model, optimizer, step, replicas."""

    def __init__(self, model, learning_rate=0.5, extra_variables=()):
        self.model = model
        self.num_replicas = 1
        self.step = tf.Variable(0, dtype=tf.int64)
        self.optimizer = keras.optimizers.SGD(learning_rate)
        self.extra_variables = list(extra_variables)

    @property
    def trainable_variables(self):
        return self.model.trainable_variables + self.extra_variables

    def apply_gradients(self, loss, tape, variables=None):
        variables = variables or self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return grads
