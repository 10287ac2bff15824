"""Noisy Student losses and pseudo-label targets (noisystudent `main.py`).

total = CE(labels, smoothing 0.1) + w * CE(targets, unlabeled logits)
        + weight_decay * sum(l2_loss(non-BN weights))

with w = unlabel_ratio by default: the reference computes
(lab_loss * B + unl_loss * B * r) / B, i.e. the sum over the concatenated
batch divided by the *labeled* batch size -- not a mean over all images.
Soft targets take no smoothing; hard targets take the same 0.1 smoothing
as labels. No T^2 and no KL (that is knowledge distillation).
"""

import tensorflow as tf


def smoothed_one_hot(labels, num_classes, label_smoothing=0.0):
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
    if label_smoothing:
        one_hot = one_hot * (1.0 - label_smoothing) + (
            label_smoothing / num_classes)
    return one_hot


def soft_cross_entropy(targets, logits):
    """mean_b(-sum_c targets * log_softmax(logits)) in float32."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.reduce_sum(
        -tf.cast(targets, tf.float32) * tf.nn.log_softmax(logits), axis=-1))


def labeled_loss(labels, logits, label_smoothing=0.1):
    num_classes = logits.shape[-1]
    return soft_cross_entropy(
        smoothed_one_hot(labels, num_classes, label_smoothing), logits)


def sharpen(probabilities, temperature):
    """probabilities^(1/T), renormalised (offline tempered soft labels)."""
    if temperature == 1.0:
        return probabilities
    powered = tf.pow(tf.maximum(probabilities, 1e-12), 1.0 / temperature)
    return powered / tf.reduce_sum(powered, axis=-1, keepdims=True)


def targets_from_probabilities(probabilities, label_type="soft",
                               temperature=1.0, label_smoothing=0.1):
    """Offline targets from stored teacher probabilities.

    soft: p^(1/T) renormalised, no smoothing; hard: one-hot(argmax) with
    `label_smoothing` (reference `teacher_softmax_temp=-1`).
    """
    probabilities = tf.cast(probabilities, tf.float32)
    if label_type == "soft":
        return sharpen(probabilities, temperature)
    if label_type == "hard":
        return smoothed_one_hot(tf.argmax(probabilities, -1),
                                probabilities.shape[-1], label_smoothing)
    raise ValueError(f"label_type must be soft or hard, got {label_type!r}")


def targets_from_logits(teacher_logits, label_type="soft", temperature=1.0,
                        label_smoothing=0.1):
    """Online targets: softmax(logits / T), or smoothed one-hot(argmax)."""
    teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
    if label_type == "soft":
        return tf.nn.softmax(teacher_logits / temperature)
    if label_type == "hard":
        return smoothed_one_hot(tf.argmax(teacher_logits, -1),
                                teacher_logits.shape[-1], label_smoothing)
    raise ValueError(f"label_type must be soft or hard, got {label_type!r}")


def noisy_student_loss(labels, labeled_logits, unlabeled_targets,
                       unlabeled_logits, unlabeled_weight,
                       label_smoothing=0.1):
    """lab_loss + unlabeled_weight * unl_loss; returns (total, parts)."""
    lab = labeled_loss(labels, labeled_logits, label_smoothing)
    unl = soft_cross_entropy(unlabeled_targets, unlabeled_logits)
    return lab + unlabeled_weight * unl, {"lab_loss": lab, "unl_loss": unl}
