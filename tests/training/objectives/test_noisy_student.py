"""The Noisy Student training step against hand-computed losses.

A recording student and a fake teacher check what the paper's step must
do (Xie et al. 2020, Algorithm 1; noisystudent `main.py`): the teacher runs
in inference mode, the student makes one forward pass over
[labeled; unlabeled] (so batch norm sees the mixed batch), and the loss is
labeled CE + unlabeled_weight * CE(teacher targets), soft or hard.
"""

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.training.objectives import noisy_student

NUM_CLASSES = 3
SMOOTHING = 0.1
RNG = np.random.RandomState(0)
LABELED = RNG.normal(size=(4, 5)).astype(np.float32)
UNLABELED = RNG.normal(size=(6, 5)).astype(np.float32)
LABELS = np.array([0, 2, 1, 2])
KERNEL = RNG.normal(size=(5, NUM_CLASSES)).astype(np.float32)
TEACHER_LOGITS = RNG.normal(size=(6, NUM_CLASSES)).astype(np.float32)


class RecordingStudent(keras.Model):
    """Linear logits; records (batch size, training) of every call."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(NUM_CLASSES, use_bias=False)
        self.calls = []

    def call(self, images, training=False):
        self.calls.append((int(images.shape[0]), bool(training)))
        return self.dense(images)


class ModeSensitiveTeacher(keras.Model):
    """Known logits in inference mode, different ones in training mode."""

    def call(self, images, training=False):
        logits = tf.constant(TEACHER_LOGITS)
        return -3.0 * logits if training else logits


class FakeTrainer:
    """What an objective's step uses of the Trainer."""

    num_replicas = 1

    def __init__(self, model):
        self.model = model
        self.scaled_loss = None

    def apply_gradients(self, scaled_loss, tape):
        self.scaled_loss = float(scaled_loss)
        grads = tape.gradient(scaled_loss, self.model.trainable_variables)
        assert all(g is not None for g in grads)


def _student():
    model = RecordingStudent()
    model(tf.zeros((1, 5)))
    model.dense.kernel.assign(KERNEL)
    model.calls.clear()
    return model


def _objective(label_type, weight=None, online=False):
    config = ml_collections.ConfigDict(dict(
        batch_size=4, unlabel_ratio=1.5, unlabeled_loss_weight=weight,
        label_type=label_type, temperature=1.0, label_smoothing=SMOOTHING,
        weight_decay=0.0, optimizer="sgd"))
    objective = noisy_student.NoisyStudentObjective(config)
    if online:
        objective.online = True
        objective.teacher = ModeSensitiveTeacher()
    return objective


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _cross_entropy(targets, logits):
    log_p = np.log(_softmax(logits))
    return float(np.mean(-(targets * log_p).sum(-1)))


def _smoothed(labels):
    return (np.eye(NUM_CLASSES)[labels] * (1 - SMOOTHING)
            + SMOOTHING / NUM_CLASSES)


def _expected_loss(unlabeled_targets, weight):
    lab = _cross_entropy(_smoothed(LABELS), LABELED @ KERNEL)
    unl = _cross_entropy(unlabeled_targets, UNLABELED @ KERNEL)
    return lab + weight * unl


def _batch(probabilities=None, online=False):
    unlabeled = {"image": tf.constant(UNLABELED)}
    if probabilities is not None:
        unlabeled["probabilities"] = tf.constant(probabilities)
    if online:
        unlabeled["teacher_image"] = tf.constant(UNLABELED)
    return {"labeled": {"image": tf.constant(LABELED),
                        "label": tf.constant(LABELS)},
            "unlabeled": unlabeled}


@pytest.mark.parametrize("label_type", ["soft", "hard"])
def test_online_step_matches_hand_loss(label_type):
    student = _student()
    trainer = FakeTrainer(student)
    objective = _objective(label_type, online=True)
    metrics = objective.replica_step(trainer, _batch(online=True))
    # The teacher's inference-mode logits, never its training-mode ones.
    teacher_probs = _softmax(TEACHER_LOGITS)
    targets = teacher_probs if label_type == "soft" else \
        _smoothed(teacher_probs.argmax(-1))
    # unlabeled_loss_weight defaults to unlabel_ratio (the reference).
    expected = _expected_loss(targets, weight=1.5)
    assert trainer.scaled_loss == pytest.approx(expected, rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    # One noised forward pass over the concatenated 4 + 6 images.
    assert student.calls == [(10, True)]


@pytest.mark.parametrize("label_type", ["soft", "hard"])
def test_offline_step_uses_stored_probabilities(label_type):
    probabilities = _softmax(TEACHER_LOGITS * 2).astype(np.float32)
    student = _student()
    trainer = FakeTrainer(student)
    objective = _objective(label_type, weight=4.0)
    objective.replica_step(trainer, _batch(probabilities))
    targets = probabilities if label_type == "soft" else \
        _smoothed(probabilities.argmax(-1))
    assert trainer.scaled_loss == pytest.approx(
        _expected_loss(targets, weight=4.0), rel=1e-5)
    assert student.calls == [(10, True)]


def test_unlabeled_weight_scales_only_the_unlabeled_term():
    probabilities = _softmax(TEACHER_LOGITS).astype(np.float32)
    losses = {}
    for weight in (0.0, 1.0, 3.0):
        trainer = FakeTrainer(_student())
        _objective("soft", weight=weight).replica_step(
            trainer, _batch(probabilities))
        losses[weight] = trainer.scaled_loss
    unlabeled_term = losses[1.0] - losses[0.0]
    assert unlabeled_term > 0
    assert losses[3.0] - losses[0.0] == pytest.approx(3 * unlabeled_term,
                                                      rel=1e-5)
