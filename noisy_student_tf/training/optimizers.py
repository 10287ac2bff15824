"""Optimisers with the reference's semantics, and L2 on non-BN weights.

`RMSPropTF` reproduces TF1 `RMSPropOptimizer` as used by noisystudent and
tensorflow/tpu: epsilon inside the square root, learning rate folded into
the momentum buffer, and the mean-square slot initialised to **ones** (Keras
3's RMSprop already does the first two but starts the slot at zeros, which
makes the first steps ~1/sqrt(eps) times larger).
"""

import keras
import tensorflow as tf

from noisy_student_tf.training import schedules


@keras.saving.register_keras_serializable(package="noisy_student_tf")
class RMSPropTF(keras.optimizers.RMSprop):
    """TF1 RMSProp: ones-initialised mean square, eps inside the root.

    Defaults are the reference's: decay (rho) 0.9, momentum 0.9, eps 1e-3.
    """

    def __init__(self, learning_rate=0.016, rho=0.9, momentum=0.9,
                 epsilon=1e-3, name="rmsprop_tf", **kwargs):
        super().__init__(learning_rate=learning_rate, rho=rho,
                         momentum=momentum, epsilon=epsilon, centered=False,
                         name=name, **kwargs)

    def build(self, var_list):
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, var_list)
        self._velocities = self.add_optimizer_variables(
            var_list, "velocity", initializer="ones")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(
                var_list, "momentum")
        self._average_gradients = []


def build_optimizer(config, learning_rate):
    """Optimizer named by `config.optimizer`: rmsprop, sgd or adamw.

    Weight decay for rmsprop/sgd is an L2 term in the loss (see
    `l2_regularization`), as in the reference; adamw decouples it.
    """
    name = config.get("optimizer", "rmsprop")
    clip = config.get("clip_global_norm")
    common = {"global_clipnorm": clip} if clip else {}
    if name == "rmsprop":
        return RMSPropTF(learning_rate, rho=config.get("rmsprop_decay", 0.9),
                         momentum=config.get("momentum", 0.9),
                         epsilon=config.get("rmsprop_epsilon", 1e-3),
                         **common)
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=config.get("momentum", 0.9),
            nesterov=config.get("nesterov", True), **common)
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate, weight_decay=config.get("weight_decay", 0.05),
            beta_1=config.get("beta_1", 0.9),
            beta_2=config.get("beta_2", 0.999), **common)
        # Decoupled decay skips BN/LayerNorm scales and all biases.
        optimizer.exclude_from_weight_decay(
            var_names=["bias", "gamma", "beta", "scale"])
        return optimizer
    raise ValueError(f"optimizer must be rmsprop, sgd or adamw, got {name!r}")


def is_decayed(variable):
    """Reference rule: no decay on batch-norm variables (any other kind is
    decayed, biases included)."""
    path = variable.path
    return not any(tag in path for tag in ("_bn/", "batch_normalization",
                                           "layer_norm", "LayerNorm"))


def l2_regularization(variables, weight_decay):
    """weight_decay * sum(v^2)/2 over decayed variables (tf.nn.l2_loss).

    Keras' `L2(l)` regulariser is l * sum(v^2) with no 1/2: this matches
    the reference's `weight_decay * tf.add_n([tf.nn.l2_loss(v) ...])`.
    """
    decayed = [v for v in variables if is_decayed(v)]
    if not weight_decay or not decayed:
        return tf.constant(0.0)
    return weight_decay * tf.add_n(
        [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in decayed])


def make_optimizer(config, steps_per_epoch, total_steps, batch_size):
    """Schedule + optimizer from one training config."""
    schedule = schedules.build_schedule(
        config, steps_per_epoch, total_steps, batch_size)
    return build_optimizer(config, schedule), schedule
