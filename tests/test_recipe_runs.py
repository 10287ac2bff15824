"""The recipe configs' `:quick` variants run end to end (slow).

Same stages and code paths as the real recipes, on tiny data: ImageNet-
layout JPEG shards written here (1-based labels) for imagenet_b7_to_l2
(B7 -> L2 x 3 offline -> 800-style finetune -> export) and mixer_b16, and
tfds' mock `svhn_cropped` for svhn_b0 (online teacher, dev validation).
A few minutes each on 2 CPU cores.
"""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.experiment import noisy_student
from noisy_student_tf.configs import imagenet_b7_to_l2
from noisy_student_tf.configs import mixer_b16
from noisy_student_tf.configs import svhn_b0
from noisy_student_tf.data import features


def _write_shard(path, num, label_offset, rng):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(num):
            shape = (int(rng.integers(40, 70)), int(rng.integers(40, 70)), 3)
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            writer.write(features.labeled_example(
                tf.io.encode_jpeg(image).numpy(), int(rng.integers(0, 5)),
                label_offset=label_offset))


@pytest.fixture
def imagenet_dir(tmp_path):
    """train-*/validation-* (1-based labels) and unl-* shards."""
    rng = np.random.default_rng(0)
    for name, num, offset in (
            ("train-00000-of-00002", 40, 1), ("train-00001-of-00002", 40, 1),
            ("validation-00000-of-00001", 40, 1),
            ("unl-00000-of-00002", 60, 0), ("unl-00001-of-00002", 60, 0)):
        _write_shard(tmp_path / name, num, offset, rng)
    return tmp_path


def _check(report, num_students):
    assert len(report["iterations"]) == num_students
    for iteration in report["iterations"]:
        assert iteration["student"]["steps"] > 0
    assert report["export_dir"]


@pytest.mark.slow
def test_imagenet_b7_to_l2_quick(imagenet_dir, tmp_path):
    config = imagenet_b7_to_l2.get_config(
        f"quick,data_dir={imagenet_dir},unlabeled={imagenet_dir}/unl-*")
    report = noisy_student.run(config, str(tmp_path / "run"), progress=False)
    _check(report, 3)
    assert report["finetune"]["model"] == "efficientnet_l2"
    assert report["iterations"][0]["num_pseudo_labeled"] > 0


@pytest.mark.slow
def test_mixer_b16_quick(imagenet_dir, tmp_path):
    config = mixer_b16.get_config(
        f"quick,data_dir={imagenet_dir},unlabeled={imagenet_dir}/unl-*")
    _check(noisy_student.run(config, str(tmp_path / "run"), progress=False), 1)


@pytest.mark.slow
def test_svhn_b0_quick_online(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=200):
        report = noisy_student.run(svhn_b0.get_config("quick"), str(tmp_path / "run"),
                          progress=False)
    _check(report, 1)
    assert report["iterations"][0]["mode"] == "online"
    # The dev split picked a checkpoint (never the test split).
    assert (tmp_path / "run" / "teacher" / "best.json").exists()
