"""The robustness stage: pixel view of a model, cache, report, script."""

import json
import os

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import models
from noisy_student_tf import robustness
from noisy_student_tf import robustness_data
from noisy_student_tf import robustness_stage
from noisy_student_tf.configs import fashion_mnist_demo
from noisy_student_tf.data import value_ops
from noisy_student_tf.robustness import datasets
from noisy_student_tf.robustness import metrics
from noisy_student_tf.training import checkpoints
from tests import testing

DEMO_EVAL_PP = fashion_mnist_demo.CLEAN + fashion_mnist_demo.LABELED_KEYS


def _small_model(size=32, channels=1, classes=10):
    return keras.Sequential([
        keras.layers.Input((size, size, channels)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes),
    ])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Two tiny untrained EfficientNets saved as a teacher and a student."""
    root = tmp_path_factory.mktemp("run")
    paths = []
    for index, stage in enumerate(("teacher", "iter1/student")):
        keras.utils.set_random_seed(index)
        model = models.create_model(
            "efficientnet_b0", num_classes=10, input_shape=(32, 32, 1),
            width_coefficient=0.25, depth_coefficient=0.25)
        os.makedirs(root / stage)
        paths.append(checkpoints.save_model_atomic(
            model, str(root / stage / "model.keras")))
    return root, paths


def test_split_of_the_demo_eval_pp():
    pixel, model_side = robustness_stage.split_pp_string(DEMO_EVAL_PP)
    assert pixel == "decode(channels=1)|pad_to_size(32)"
    assert model_side == "normalize('fashion_mnist')"
    assert robustness_stage.split_pp_string(
        "decode|center_crop(224)|value_range(-1, 1)|onehot(10)") == (
            "decode()|center_crop(224)", "value_range(-1, 1)")
    assert robustness_stage.split_pp_string("decode|resize(32)") == (
        "decode()|resize(32)", "")
    for bad in ('decode|normalize("imagenet")|resize(32)',
                'decode|normalize("imagenet", key="other")'):
        with pytest.raises(ValueError, match="batched inside the model"):
            robustness_stage.split_pp_string(bad)


def test_logits_fn_is_model_of_normalized_pixels_with_gradients():
    model = _small_model()
    pp_fn, logits_fn = robustness_stage.logits_fn_for(model, DEMO_EVAL_PP)
    raw = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1),
                                            dtype=np.uint8)
    pixels = np.stack([pp_fn(image).numpy() for image in raw])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 32, 32, 1)
    np.testing.assert_array_equal(pixels[:, 2:30, 2:30], raw)
    x = tf.constant(pixels, tf.float32)
    normalize = value_ops.normalize("fashion_mnist")
    expected = model(np.stack([normalize({"image": p})["image"]
                               for p in pixels]), training=False)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_fn(x)
        loss = tf.reduce_sum(logits[:, 0])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    gradient = tape.gradient(loss, x)
    assert gradient is not None and float(tf.reduce_max(
        tf.abs(gradient))) > 0
    # Pixels of the wrong size for the model: a clear error.
    pp_fn, _ = robustness_stage.logits_fn_for(_small_model(28),
                                              DEMO_EVAL_PP)
    with pytest.raises(ValueError, match="model expects"):
        pp_fn(raw[0])


def test_run_for_report_caches_and_reports(saved_models, fashion_mnist_dir,
                                           monkeypatch):
    root, (teacher, student) = saved_models
    config = fashion_mnist_demo.get_config("quick")
    config.robustness = robustness_stage.default_config(quick=True)
    report = {"teacher": {"model_path": teacher},
              "iterations": [{"student": {"model_path": student}}]}
    calls = []
    suite = robustness.run_robustness_suite

    def counting_suite(*args, **kwargs):
        calls.append(kwargs)
        return suite(*args, **kwargs)

    monkeypatch.setattr(robustness, "run_robustness_suite", counting_suite)
    result = robustness_stage.run_for_report(config, report, str(root),
                                             progress=False)
    json.dumps(result)
    assert result["names"] == ["teacher", "student 1"]
    assert result["plot"] == "robustness.png"
    assert os.path.getsize(root / "robustness.png") > 1000
    teacher_report = result["models"]["teacher"]
    assert teacher_report["num_examples"] == 64
    assert teacher_report["settings"]["constants"] == "cifar"  # 32 px
    assert set(teacher_report["adversarial"]["pgd"]) == {"2", "8"}
    cache = root / "teacher" / "robustness.json"
    mtime = os.path.getmtime(cache)
    assert len(calls) == 2

    # A resumed run reads both caches; other settings recompute.
    again = robustness_stage.run_for_report(config, report, str(root),
                                            progress=False)
    assert again["models"] == json.loads(json.dumps(result["models"]))
    assert len(calls) == 2 and os.path.getmtime(cache) == mtime
    config.robustness.epsilons = [4]
    robustness_stage.evaluate_model_robustness(
        teacher, config.data.eval, DEMO_EVAL_PP, config.robustness,
        str(root / "teacher"), progress=False)
    assert len(calls) == 3

    lines = "\n".join(robustness_stage.report_lines(result))
    assert "## Robustness" in lines
    assert "| model | clean top-1 | corruption error | mCE |" in lines
    assert "| teacher |" in lines and "| student 1 |" in lines
    assert "FGSM ε=8" in lines and "PGD ε=2" in lines
    assert "![robustness](robustness.png)" in lines


def test_settings_are_checked():
    with pytest.raises(ValueError, match="num_exampels"):
        robustness_stage.resolve_config({"num_exampels": 10})
    config = robustness_stage.resolve_config({"epsilons": [1]})
    assert config.epsilons == [1] and config.pgd_steps == 10


def test_released_cifar10_c_blocks_go_through_the_pixel_pp(tmp_path):
    # Sparse files of the released shape; only the first images are set.
    labels = np.lib.format.open_memmap(tmp_path / "labels.npy", "w+",
                                       np.uint8, (50000,))
    labels[10000:10003] = [7, 8, 9]
    fog = np.lib.format.open_memmap(tmp_path / "fog.npy", "w+", np.uint8,
                                    (50000, 32, 32, 3))
    fog[10000:10003] = 200
    del labels, fog
    rcfg = robustness_stage.resolve_config(dict(
        cifar10_c_dir=str(tmp_path), corruptions=["fog"], severities=[2]))
    data = robustness_data.released_corruptions(
        rcfg, lambda image: image[:, :, :1], num_examples=3)
    images, block_labels = data["fog"][2]
    assert images.shape == (3, 32, 32, 1) and images.max() == 200
    np.testing.assert_array_equal(block_labels, [7, 8, 9])
    rcfg.tfds_name = "cifar10_corrupted"
    with pytest.raises(ValueError, match="not both"):
        robustness_data.released_corruptions(rcfg, None, 3)


def test_imagenet_a_maps_the_200_classes_back_to_imagenet(monkeypatch):
    # TFDS labels ImageNet-A with 1k indices; a model right on 2 of 3.
    k = [0, 5, 199]
    labels = [metrics.IMAGENET_A_CLASS_INDICES[i] for i in k]
    labels[2] = 1  # not an ImageNet-A class: never predicted
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = k
    monkeypatch.setattr(datasets, "load_tfds_robustness", lambda *a: (
        tf.data.Dataset.from_tensor_slices((images, np.int64(labels)))))

    def logits_fn(x):
        index = tf.gather(metrics.IMAGENET_A_CLASS_INDICES,
                          tf.cast(x[:, 0, 0, 0], tf.int32))
        return tf.one_hot(index, 1000)

    result = robustness_data.imagenet_a_accuracy(logits_fn, lambda x: x)
    assert result == {"top1": pytest.approx(2 / 3), "num_examples": 3}


def test_script_end_to_end_and_missing_model(saved_models, tmp_path,
                                             fashion_mnist_dir):
    _, (teacher, student) = saved_models
    out = tmp_path / "out"
    proc = testing.run_script([
        "scripts/robustness.py", "--source=fashion_mnist",
        f"--pp={DEMO_EVAL_PP}", f"--model={teacher},{student}",
        "--names=teacher,student", f"--output_dir={out}", "--quick",
        "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.load(open(out / "robustness.json"))
    assert result["names"] == ["teacher", "student"]
    assert result["settings"]["num_examples"] == 64
    assert os.path.exists(out / "robustness.png")
    assert "| teacher |" in proc.stdout

    proc = testing.run_script([
        "scripts/robustness.py",
        "--config=noisy_student_tf/configs/fashion_mnist_demo.py:quick",
        f"--model={tmp_path / 'missing.keras'}", f"--output_dir={out}",
        "--quick"])
    assert proc.returncode == 1
    assert testing.last_line(proc.stderr).startswith("error: model file")
    assert "Traceback" not in proc.stderr


def test_config_dict_settings_round_trip():
    config = robustness_stage.default_config()
    assert isinstance(config, ml_collections.ConfigDict)
    assert len(config.corruptions) == 15 and config.epsilons == [
        1, 2, 4, 8, 16]
    quick = robustness_stage.default_config(quick=True)
    assert (quick.num_examples, len(quick.corruptions),
            len(quick.severities), len(quick.epsilons), quick.pgd_steps,
            quick.num_perturbation_sequences) == (64, 3, 2, 2, 2, 4)
