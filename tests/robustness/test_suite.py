"""run_robustness_suite report, loaders and the comparison plot."""

import gzip
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.robustness import datasets
from noisy_student_tf.robustness import frost
from noisy_student_tf.robustness import metrics
from noisy_student_tf.robustness import model_suite
from noisy_student_tf.robustness import suite

KEYS = {"num_examples", "settings", "clean", "corruptions", "perturbations",
        "adversarial"}


def _data(n=8):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, np.arange(n) % 3


def _model_fn():
    model = keras.Sequential([
        keras.layers.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    return lambda x: model(x, training=False)


def _always_class_0(x):
    return tf.tile(tf.constant([[1.0, 0.0, 0.0]]), [tf.shape(x)[0], 1])


def test_suite_report_has_every_part_and_is_json():
    images, labels = _data()
    report = suite.run_robustness_suite(
        _model_fn(), images, labels, corruptions=("gaussian_noise", "fog"),
        severities=(1, 5), perturbations=("gaussian_noise", "rotate"),
        num_perturbation_sequences=3, num_frames=4, epsilons=(1, 8),
        pgd_steps=2, batch_size=4, progress=False)
    assert set(report) == KEYS
    json.dumps(report)
    corr = report["corruptions"]
    assert set(corr["accuracy"]) == {"gaussian_noise", "fog"}
    assert set(corr["accuracy"]["fog"]) == {"1", "5"}
    assert corr["mce"] is None  # CIFAR constants: no AlexNet baseline
    assert 0 <= corr["mean_corruption_error"] <= 100
    pert = report["perturbations"]
    assert set(pert["flip_probability"]) == {"gaussian_noise", "rotate"}
    assert pert["num_sequences"] == 3
    assert set(report["adversarial"]["fgsm"]) == {"1", "8"}
    assert set(report["adversarial"]["pgd"]) == {"1", "8"}
    assert report["settings"]["frost"] is None  # frost not evaluated


def test_suite_states_which_frost_it_used():
    images, labels = _data(n=4)
    report = suite.run_robustness_suite(
        _always_class_0, images, labels, corruptions=("frost",),
        severities=(1,), perturbations=(), epsilons=(), progress=False)
    assert report["settings"]["frost"] == frost.describe()
    assert report["settings"]["frost"].startswith(
        ("photographs (imagecorruptions", "synthetic"))
    lines = "\n".join(model_suite.report_lines(
        {"models": {"m": json.loads(json.dumps(report))}}))
    assert f"frost from {report['settings']['frost']}" in lines


def test_suite_values_for_a_constant_classifier():
    # Always class 0, labels 0,1,2,...: every accuracy is 3/8, no flips,
    # and a zero input gradient leaves the attacks powerless.
    images, labels = _data()
    report = suite.run_robustness_suite(
        _always_class_0, images, labels, corruptions=("contrast",),
        perturbations=("translate",), num_perturbation_sequences=4,
        epsilons=(16,), pgd_steps=2, progress=False)
    assert report["clean"]["top1"] == pytest.approx(3 / 8)
    assert all(a == pytest.approx(3 / 8)
               for a in report["corruptions"]["accuracy"]["contrast"].values())
    assert report["corruptions"]["mean_corruption_error"] == pytest.approx(
        62.5)
    assert report["perturbations"]["flip_probability"]["translate"] == 0.0
    assert report["adversarial"]["fgsm"]["16"] == pytest.approx(3 / 8)
    assert report["adversarial"]["pgd"]["16"] == pytest.approx(3 / 8)


def test_suite_parts_switch_off_and_imagenet_mce():
    images, labels = _data(n=2)
    report = suite.run_robustness_suite(
        _always_class_0, images, labels, constants="imagenet",
        perturbations=None, epsilons=(), progress=False)
    assert report["perturbations"] is None and report["adversarial"] is None
    corr = report["corruptions"]
    assert len(corr["accuracy"]) == 15
    # Error 0.5 everywhere: mCE = 100 * mean_c 2.5 / sum_s E^AlexNet_sc.
    expected = 100 * np.mean([2.5 / np.sum(v) for v in
                              metrics.ALEXNET_ERRORS.values()])
    assert corr["mce"] == pytest.approx(expected)
    assert corr["relative_mce"] is not None
    report = suite.run_robustness_suite(
        _always_class_0, images, labels, corruptions=None,
        perturbations=(), epsilons=None, progress=False)
    assert report["corruptions"] is None


def test_suite_uses_released_corruptions(tmp_path):
    labels = np.zeros(50000, np.uint8)
    labels[:10000:2] = 1  # severity 1: half the labels are class 1
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "fog.npy", np.zeros((50000, 32, 32, 3), np.uint8))
    data = datasets.load_cifar10_c(str(tmp_path), ("fog",), (1, 2))
    assert set(data["fog"]) == {1, 2}
    assert data["fog"][1][0].shape == (10000, 32, 32, 3)
    images, clean_labels = _data()
    report = suite.run_robustness_suite(
        _always_class_0, images, clean_labels, corruptions=("fog",),
        severities=(1, 2), corrupted_data=data, perturbations=None,
        epsilons=None, batch_size=4096, progress=False)
    assert report["corruptions"]["accuracy"]["fog"] == {"1": 0.5, "2": 1.0}
    with pytest.raises(FileNotFoundError, match="frost"):
        datasets.load_cifar10_c(str(tmp_path), ("frost",))


def test_tfds_loader_names_a_missing_dataset(tmp_path):
    assert datasets.tfds_corruption_name(
        "cifar10_corrupted", "glass_blur", 3) == (
            "cifar10_corrupted/frosted_glass_blur_3")
    name = datasets.tfds_corruption_name("imagenet2012_corrupted",
                                         "glass_blur", 3)
    assert name == "imagenet2012_corrupted/glass_blur_3"
    with pytest.raises(FileNotFoundError, match="cifar10_corrupted/fog_1"):
        datasets.load_tfds_robustness("cifar10_corrupted/fog_1",
                                      data_dir=str(tmp_path))


def test_plot_robustness_writes_a_png(tmp_path):
    images, labels = _data()
    reports = {
        name: suite.run_robustness_suite(
            fn, images, labels, corruptions=("contrast",), severities=(1, 3),
            perturbations=None, epsilons=(2, 8), pgd_steps=1,
            progress=False)
        for name, fn in (("teacher", _always_class_0),
                         ("student_1", _model_fn()))}
    path = suite.plot_robustness(reports,
                                 str(tmp_path / "plots" / "r.png"))
    assert os.path.getsize(path) > 1000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        suite.plot_robustness({"empty": {"clean": {"top1": 1.0}}},
                              str(tmp_path / "x.png"))


@pytest.mark.slow
def test_suite_on_a_trained_fashion_mnist_model(fashion_mnist_dir):
    """1-channel end to end: a briefly trained CNN degrades as it should."""
    def read(name, offset):
        with gzip.open(os.path.join(fashion_mnist_dir, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    x_train = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_train = read("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_test = read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    model = keras.Sequential([
        keras.layers.Input((28, 28, 1)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train[:20000].astype(np.float32), y_train[:20000],
              batch_size=128, epochs=3, verbose=0)
    report = suite.run_robustness_suite(
        lambda x: model(x, training=False), x_test[:500], y_test[:500],
        num_perturbation_sequences=100, progress=False)
    clean = report["clean"]["top1"]
    assert clean > 0.5
    per_severity = report["corruptions"]["mean_accuracy_per_severity"]
    assert per_severity["5"] < per_severity["1"] < clean
    fgsm, pgd = report["adversarial"]["fgsm"], report["adversarial"]["pgd"]
    assert pgd["16"] <= fgsm["16"] < fgsm["1"] <= clean
    assert 0 < report["perturbations"]["mean_flip_probability"] < 50


def test_plot_curves_are_in_numeric_order_after_sorted_json():
    # JSON written with sort_keys puts epsilon "16" before "2".
    report = json.loads(json.dumps({
        "clean": {"top1": 0.9},
        "corruptions": {"mean_accuracy_per_severity": {"3": 0.5, "1": 0.7}},
        "adversarial": {"fgsm": {"2": 0.5, "16": 0.1, "8": 0.2}},
    }, sort_keys=True))
    xs, ys = suite._epsilon_curve(report, "fgsm")
    assert xs == [0.0, 2.0, 8.0, 16.0]
    assert ys == pytest.approx([90, 50, 20, 10])
    assert suite._severity_curve(report)[0] == [0, 1, 3]
