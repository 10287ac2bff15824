"""Shared by the methods: frozen teachers and batch accuracy.

KD and MEAL V2 run their teachers inside the training step, in inference
mode (`training=False`: batch-norm moving statistics, no dropout) and with
no trainable weights, on the same preprocessed images as the student
(MEAL V2 `teacher_wrapper.py`: "all teachers on the same crop").
"""

import tensorflow as tf

from noisy_student_tf.training import checkpoints


def load_frozen_teacher(path, student):
    """Loads a `.keras` teacher and checks it fits the student's batches.

    Call inside the strategy scope (an objective's `build`), so the
    teacher's weights are placed like the student's.

    Args:
      path: a model file written by a stage (`model.keras`).
      student: the student `keras.Model` (class count and input shape).

    Returns:
      The teacher with `trainable = False`.

    Raises:
      FileNotFoundError: no file at `path`.
      CheckpointError: unreadable file, or the teacher predicts another
        number of classes or expects another input shape than the student.
    """
    teacher = checkpoints.load_model(path)
    teacher.trainable = False
    student_classes = student.output_shape[-1]
    teacher_classes = teacher.output_shape[-1]
    if student_classes != teacher_classes:
        raise checkpoints.CheckpointError(
            f"teacher {path} predicts {teacher_classes} classes, the student "
            f"{student_classes}")
    # Teachers see the student's own batch, so the input shapes must agree.
    student_shape = tuple(student.input_shape[1:])
    teacher_shape = tuple(teacher.input_shape[1:])
    if student_shape != teacher_shape:
        raise checkpoints.CheckpointError(
            f"teacher {path} expects inputs of shape {teacher_shape}, the "
            f"student {student_shape}: distillation feeds both the same "
            "images, so build the student at the teacher's resolution")
    return teacher


def teacher_logits(teacher, images):
    """Float32 logits of a frozen teacher in inference mode, no gradient."""
    return tf.stop_gradient(tf.cast(teacher(images, training=False),
                                    tf.float32))


def accuracy(labels, logits):
    """Fraction of rows whose argmax equals `labels` (int or argmax ids)."""
    predictions = tf.argmax(logits, -1)
    return tf.reduce_mean(tf.cast(
        tf.equal(predictions, tf.cast(labels, predictions.dtype)),
        tf.float32))
