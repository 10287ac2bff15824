"""What every objective shares: batch accuracy and frozen-teacher loading
(class count, input shape, frozen weights)."""

import numpy as np
import pytest

from noisy_student_tf.training import checkpoints
from noisy_student_tf.training.objectives import base
from tests.training.objectives import fakes


def test_accuracy_takes_labels_or_argmax_ids():
    logits = np.array([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0]], np.float32)
    assert float(base.accuracy(np.array([1, 0, 0]), logits)) == \
        pytest.approx(2 / 3)
    assert float(base.accuracy(np.argmax(logits, -1), logits)) == 1.0


def test_frozen_teacher_checks_classes_and_input(tmp_path):
    student = fakes.image_model(10)
    good = str(tmp_path / "good.keras")
    fakes.image_model(10, seed=1).save(good)
    teacher = base.load_frozen_teacher(good, student)
    assert not teacher.trainable and not teacher.trainable_weights
    five = str(tmp_path / "five.keras")
    fakes.image_model(5).save(five)
    with pytest.raises(checkpoints.CheckpointError, match="5 classes"):
        base.load_frozen_teacher(five, student)
    rgb = str(tmp_path / "rgb.keras")
    fakes.image_model(10, shape=(32, 32, 3)).save(rgb)
    with pytest.raises(checkpoints.CheckpointError, match="input"):
        base.load_frozen_teacher(rgb, student)
    # An online Noisy Student teacher sees its own view: any input shape.
    assert not base.load_frozen_teacher(rgb, student,
                                        same_input=False).trainable
    with pytest.raises(FileNotFoundError):
        base.load_frozen_teacher(str(tmp_path / "none.keras"), student)
