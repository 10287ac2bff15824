"""Knowledge distillation (Hinton, Vinyals & Dean 2015) as an objective.

    L = (1 - alpha) * CE(y, softmax(z_s))
        + alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

The soft term's gradient with respect to a student logit is
(1/T) * (p_s - p_t), which shrinks like 1/T^2 once T is large; the T^2
factor keeps the balance between the two terms stable as T changes. KL is
summed over classes and averaged over the batch, the hard term is plain
cross-entropy on the true labels (optionally label-smoothed).

Unlike Noisy Student, the student is usually smaller than (or equal to)
the teacher and is not noised: the experiment configs leave RandAugment,
dropout and stochastic depth off. The teacher is frozen and runs on the
same batch as the student, in inference mode.

Config (stage): teacher.path (a `.keras` model file), alpha, temperature,
label_smoothing (hard term; 0 in Hinton's form), weight_decay, plus the
supervised objective's data/pp/batch fields.
"""

import tensorflow as tf

from noisy_student_tf.training import losses
from noisy_student_tf.training.objectives import base


def soft_kl(teacher_logits, student_logits, temperature):
    """mean_b KL(softmax(z_t/T) || softmax(z_s/T)), summed over classes."""
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    student_logits = tf.cast(student_logits, tf.float32)
    log_p_t = tf.nn.log_softmax(teacher_logits / temperature)
    log_p_s = tf.nn.log_softmax(student_logits / temperature)
    return tf.reduce_mean(tf.reduce_sum(
        tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1))


def check_hyperparameters(alpha, temperature):
    """Raises ValueError unless 0 <= alpha <= 1 and temperature > 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def distillation_loss(labels, student_logits, teacher_logits, alpha,
                      temperature, label_smoothing=0.0, t2_scaling=True):
    """Hinton's KD loss.

    Args:
      labels: int true labels, [B].
      student_logits: [B, C].
      teacher_logits: [B, C] (treated as constants).
      alpha: weight of the soft term; the hard term gets 1 - alpha.
      temperature: T > 0 for both softmaxes of the soft term.
      label_smoothing: smoothing of the hard term's one-hot targets.
      t2_scaling: multiply the soft term by T^2 (Hinton); False exposes
        the raw 1/T^2 gradient shrinkage (tests, ablations).

    Returns:
      (total, {"hard_loss", "kl_loss"}) with kl_loss before T^2 and alpha.

    Raises:
      ValueError: alpha outside [0, 1] or a non-positive temperature.
    """
    check_hyperparameters(alpha, temperature)
    hard = losses.labeled_loss(labels, student_logits, label_smoothing)
    kl = soft_kl(tf.stop_gradient(teacher_logits), student_logits,
                 temperature)
    scale = temperature ** 2 if t2_scaling else 1.0
    total = (1.0 - alpha) * hard + alpha * scale * kl
    return total, {"hard_loss": hard, "kl_loss": kl}


class DistillationObjective(base.SupervisedObjective):
    """Student trained on labeled batches against a frozen teacher.

    Config adds: teacher.path, alpha (default 0.9), temperature (default
    4.0; note `configs.common.TRAIN_DEFAULTS` sets `temperature=1.0` for
    Noisy Student, so experiment configs set it explicitly).
    """

    # Stage keys beyond the trainer's (it rejects unknown ones).
    CONFIG_KEYS = ("alpha",)

    def __init__(self, config):
        super().__init__(config)
        teacher = config.get("teacher") or {}
        if not teacher.get("path"):
            raise ValueError("method 'kd' needs teacher.path (a .keras "
                             "model file)")
        self.teacher_path = teacher["path"]
        self.alpha = float(config.get("alpha", 0.9))
        self.temperature = float(config.get("temperature", 4.0))
        # Fail at construction, not at the first traced step.
        check_hyperparameters(self.alpha, self.temperature)
        self.teacher = None

    def build(self, trainer):
        self.teacher = base.load_frozen_teacher(
            self.teacher_path, trainer.model)

    def replica_step(self, trainer, batch):
        config = self.config
        images, labels = batch["image"], batch["label"]
        teacher_logits = base.teacher_logits(self.teacher, images)
        with tf.GradientTape() as tape:
            logits = tf.cast(trainer.model(images, training=True),
                             tf.float32)
            data_loss, parts = distillation_loss(
                labels, logits, teacher_logits, self.alpha,
                self.temperature, config.get("label_smoothing", 0.0))
            loss = data_loss + self.regularization(trainer)
            scaled = loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape)
        return {
            "loss": loss, **parts,
            "lab_acc": base.accuracy(labels, logits),
            "teacher_acc": base.accuracy(labels, teacher_logits),
            "agree": base.accuracy(
                tf.argmax(teacher_logits, -1), logits),
        }
