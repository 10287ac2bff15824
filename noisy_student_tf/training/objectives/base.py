"""The supervised objective every other objective extends, and what they
share: batch accuracy and frozen teachers.

An objective builds its inputs and runs one replica step; the `Trainer`
owns everything else. Losses are computed per replica and divided by the
number of replicas, because gradients are summed across replicas.

Frozen teachers (Noisy Student online, KD, MEAL V2) run inside the
training step in inference mode (`training=False`: batch-norm moving
statistics, no dropout) with no trainable weights; KD and MEAL V2 feed
them the student's own preprocessed batch (MEAL V2 `teacher_wrapper.py`:
"all teachers on the same crop").
"""

import tensorflow as tf

from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import losses
from noisy_student_tf.training import optimizers


class SupervisedObjective:
    """Labeled cross-entropy with label smoothing (the teacher, baselines).

    Config: data.labeled, data.eval, pp.labeled, pp.eval, batch_size,
    label_smoothing, weight_decay, eval_batch_size.
    """

    def __init__(self, config):
        self.config = config
        self._num_labeled = None

    # === Inputs ===

    def num_labeled(self):
        if self._num_labeled is None:
            self._num_labeled = sources.count_records(
                self.config.data.labeled)
            if self._num_labeled < self.config.batch_size:
                raise sources.DataError(
                    f"labeled data has {self._num_labeled} examples, fewer "
                    f"than one batch ({self.config.batch_size})")
        return self._num_labeled

    def micro_batch_size(self):
        """Labeled images per forward pass (and per dataset batch):
        batch_size / accumulation_steps (`accumulation.py`)."""
        return accumulation.micro_batch_size(self.config)

    def images_per_step(self):
        """Images one optimizer step trains on (all micro-batches)."""
        return self.config.batch_size

    def make_dataset(self, input_context, seed):
        config = self.config
        return pipeline.make_train_dataset(
            sources.make_source(config.data.labeled), config.pp.labeled,
            self.micro_batch_size(), seed=seed, cache=config.get("cache", True),
            input_context=input_context,
            skip_corrupt=config.get("skip_corrupt", False))

    def make_eval_dataset(self, split="eval"):
        """Clean eval batches of `data.eval` or `data.validation`."""
        config = self.config
        if not config.data.get(split):
            return None
        return pipeline.make_eval_dataset(
            sources.make_source(config.data[split]), config.pp.eval,
            config.get("eval_batch_size", 256),
            skip_corrupt=config.get("skip_corrupt", False))

    def input_sources(self):
        """(source config, pp string) pairs the training pipeline reads,
        for naming the bad file when it fails (data/diagnose.py)."""
        return [(self.config.data.labeled, self.config.pp.labeled)]

    # === Model state ===

    def build(self, trainer):
        """Creates extra models/variables (called inside strategy.scope)."""

    def trackables(self):
        return {}

    def extra_trainable_variables(self):
        return []

    def finalize(self, trainer):
        """Called once after training (final model saved); returns extra
        entries for the stage result, e.g. MPL's trained teacher."""
        return {}

    # === Step ===

    def regularization(self, trainer):
        return optimizers.l2_regularization(
            trainer.model.trainable_variables,
            self.config.get("weight_decay", 0.0)
            if self.config.get("optimizer", "rmsprop") != "adamw" else 0.0)

    def replica_step(self, trainer, batch):
        config = self.config
        labels = batch["label"]
        with tf.GradientTape() as tape:
            logits = tf.cast(trainer.model(batch["image"], training=True),
                             tf.float32)
            data_loss = losses.labeled_loss(
                labels, logits, config.get("label_smoothing", 0.1))
            loss = data_loss + self.regularization(trainer)
            scaled = loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape)
        return {"loss": loss, "lab_loss": data_loss,
                "lab_acc": accuracy(labels, logits)}


def accuracy(labels, logits):
    """Fraction of rows whose argmax equals `labels` (int or argmax ids)."""
    predictions = tf.argmax(logits, -1)
    return tf.reduce_mean(tf.cast(
        tf.equal(predictions, tf.cast(labels, predictions.dtype)),
        tf.float32))


def load_frozen_teacher(path, student, same_input=True):
    """Loads a `.keras` teacher and checks it fits the student.

    Call inside the strategy scope (an objective's `build`), so the
    teacher's weights are placed like the student's.

    Args:
      path: a model file written by a stage (`model.keras`).
      student: the student `keras.Model` (class count and input shape).
      same_input: the teacher sees the student's own batch (KD, MEAL V2),
        so the input shapes must agree; False for a teacher fed its own
        view at its own resolution (online Noisy Student).

    Returns:
      The teacher with `trainable = False`.

    Raises:
      FileNotFoundError: no file at `path`.
      CheckpointError: unreadable file, or the teacher predicts another
        number of classes or (with `same_input`) expects another input
        shape than the student.
    """
    teacher = checkpoints.load_model(path)
    teacher.trainable = False
    student_classes = student.output_shape[-1]
    teacher_classes = teacher.output_shape[-1]
    if student_classes != teacher_classes:
        raise checkpoints.CheckpointError(
            f"teacher {path} predicts {teacher_classes} classes, the student "
            f"{student_classes}")
    student_shape = tuple(student.input_shape[1:])
    teacher_shape = tuple(teacher.input_shape[1:])
    if same_input and student_shape != teacher_shape:
        raise checkpoints.CheckpointError(
            f"teacher {path} expects inputs of shape {teacher_shape}, the "
            f"student {student_shape}: distillation feeds both the same "
            "images, so build the student at the teacher's resolution")
    return teacher


def teacher_logits(teacher, images):
    """Float32 logits of a frozen teacher in inference mode, no gradient."""
    return tf.stop_gradient(tf.cast(teacher(images, training=False),
                                    tf.float32))
