"""MEAL V2 (Shen & Savvides 2020): ensemble distillation with a
discriminator, as an objective (szq0214/MEAL-V2 @ 59e6bca).

    p_e    = (1/K) sum_k softmax(z_k)                 K frozen teachers
    L_sim  = mean_b( -sum_c p_e(c) log softmax(z_s)(c) )   T = 1, no labels
    L_D    = BCEWithLogits(D([z_s; mean_k z_k]), [[1, 0]]*B + [[0, 1]]*B)
    loss   = L_sim + L_D    (one optimizer over student + discriminator)

Reference semantics kept: the teachers run on the same batch as the
student in inference mode; the discriminator sees *raw logits* (the mean of
the teachers' logits, not of their softmaxes: `soft_no_softmax`); student
rows are labeled [1, 0], teacher rows [0, 1]; the optimisation is joint,
not min-max: no gradient reversal, the D loss also flows into the student
through its logits, exactly as `train.py` backpropagates `g_loss + d_loss`;
weight decay is 0 by default; true labels are never used in training.
The student should start from a pretrained model of its architecture
(`model.init`; the paper: initialisation is critical).

Config (stage): teacher.paths (list of `.keras` files), model.init,
discriminator_loss_weight (default 1), discriminator_reduction (8),
discriminator_min_width (8), weight_decay.
"""

import keras
import tensorflow as tf

from noisy_student_tf.training import losses
from noisy_student_tf.training.objectives import base
from noisy_student_tf.training import optimizers


def discriminator_widths(num_classes, reduction=8, min_width=8):
    """Hidden widths C // r and C // r^2, each at least `min_width`.

    The reference hard-codes C = 1000, r = 8: 1000 -> 125 -> 15 -> 2. With
    10 classes that rule gives 1 and 0 units, so widths are floored; the
    default floor 8 (not 2) keeps a 10-class discriminator from being a
    2-unit ReLU bottleneck that dies early.

    Args:
      num_classes: C, the logits width (the discriminator's input).
      reduction: r, the width divisor per layer (8 in the reference).
      min_width: floor of each hidden width.

    Returns:
      (first, second) hidden widths.
    """
    first = max(min_width, num_classes // reduction)
    second = max(min_width, num_classes // reduction ** 2)
    return first, second


def build_discriminator(num_classes, reduction=8, min_width=8):
    """The reference's three FC layers, ReLU after each (output included).

    `models/discriminator.py` writes them as 1x1 convolutions on a
    [B, C, 1, 1] view, which are dense layers. The ReLU on the 2 output
    logits (then fed to BCE-with-logits) is a reference quirk, kept.

    Args:
      num_classes: C, the logits width.
      reduction: see `discriminator_widths`.
      min_width: see `discriminator_widths`.

    Returns:
      A `keras.Sequential` mapping [N, C] logits to [N, 2] scores.
    """
    first, second = discriminator_widths(num_classes, reduction, min_width)
    # Keras' Glorot-uniform init, not PyTorch's conv default (Kaiming a=5).
    return keras.Sequential([
        keras.Input((num_classes,), dtype="float32"),
        keras.layers.Dense(first, activation="relu", name="fc1"),
        keras.layers.Dense(second, activation="relu", name="fc2"),
        keras.layers.Dense(2, activation="relu", name="fc3"),
    ], name="discriminator")


def ensemble_targets(teacher_logits):
    """(mean of softmaxes, mean of logits) over a list of [B, C] logits."""
    stacked = tf.stack([tf.cast(z, tf.float32) for z in teacher_logits])
    return (tf.reduce_mean(tf.nn.softmax(stacked), axis=0),
            tf.reduce_mean(stacked, axis=0))


def similarity_loss(ensemble_probs, student_logits):
    """-sum_c p_e log softmax(z_s), batch mean (= KL(p_e||p_s) + H(p_e))."""
    return losses.soft_cross_entropy(tf.stop_gradient(ensemble_probs),
                                     student_logits)


def discriminator_targets(batch_size):
    """[[1, 0]] * B for the student rows, then [[0, 1]] * B (teacher)."""
    student = tf.tile([[1.0, 0.0]], [batch_size, 1])
    teacher = tf.tile([[0.0, 1.0]], [batch_size, 1])
    return tf.concat([student, teacher], axis=0)


def discriminator_loss(discriminator, student_logits, teacher_logits):
    """BCE-with-logits of D on [student; teacher] rows, mean over all
    2B x 2 entries (PyTorch `BCEWithLogitsLoss` default).

    Args:
      discriminator: callable [2B, C] -> [2B, 2].
      student_logits: [B, C]; gradients flow back into the student.
      teacher_logits: [B, C] mean teacher logits (constants).

    Returns:
      (loss, accuracy of D's argmax on the 2B rows).
    """
    inputs = tf.concat([tf.cast(student_logits, tf.float32),
                        tf.stop_gradient(teacher_logits)], axis=0)
    scores = tf.cast(discriminator(inputs), tf.float32)
    targets = discriminator_targets(tf.shape(student_logits)[0])
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=targets, logits=scores))
    accuracy = base.accuracy(tf.argmax(targets, -1), scores)
    return loss, accuracy


class MealV2Objective(base.SupervisedObjective):
    """Student distilled from a frozen ensemble plus a joint discriminator.

    The discriminator's variables join the trainer's optimizer through
    `extra_trainable_variables` and its checkpoint through `trackables`
    (the reference saves only the student, so its resume restarts D).
    """

    # Stage keys beyond the trainer's (it rejects unknown ones).
    CONFIG_KEYS = ("discriminator_loss_weight", "discriminator_reduction",
                   "discriminator_min_width", "nesterov")

    def __init__(self, config):
        super().__init__(config)
        teacher = config.get("teacher") or {}
        paths = list(teacher.get("paths") or [])
        if not paths:
            raise ValueError("method 'meal_v2' needs teacher.paths (a list "
                             "of .keras model files)")
        self.teacher_paths = paths
        self.d_weight = float(config.get("discriminator_loss_weight", 1.0))
        self.teachers = []
        self.discriminator = None

    def build(self, trainer):
        self.teachers = [base.load_frozen_teacher(path, trainer.model)
                         for path in self.teacher_paths]
        self.discriminator = build_discriminator(
            trainer.model.output_shape[-1],
            self.config.get("discriminator_reduction", 8),
            self.config.get("discriminator_min_width", 8))

    def trackables(self):
        return {"discriminator": self.discriminator}

    def extra_trainable_variables(self):
        return list(self.discriminator.trainable_variables)

    def regularization(self, trainer):
        # MEAL V2 trains with weight decay 0; a configured decay covers the
        # student and the discriminator, like the one SGD over both.
        return optimizers.l2_regularization(
            trainer.trainable_variables, self.config.get("weight_decay", 0.0)
            if self.config.get("optimizer", "sgd") != "adamw" else 0.0)

    def replica_step(self, trainer, batch):
        images, labels = batch["image"], batch["label"]
        probs, mean_logits = ensemble_targets(
            [base.teacher_logits(t, images) for t in self.teachers])
        with tf.GradientTape() as tape:
            logits = tf.cast(trainer.model(images, training=True),
                             tf.float32)
            sim = similarity_loss(probs, logits)
            d_loss, d_acc = discriminator_loss(self.discriminator, logits,
                                               mean_logits)
            loss = sim + self.d_weight * d_loss + self.regularization(
                trainer)
            scaled = loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape)
        return {
            "loss": loss, "sim_loss": sim, "d_loss": d_loss, "d_acc": d_acc,
            "lab_acc": base.accuracy(labels, logits),
            "ensemble_acc": base.accuracy(labels, probs),
        }
