"""SavedModel export: both signatures equal in-process predictions; the
numbered version folders TF Serving loads."""

import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import export
from noisy_student_tf import models
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import preprocess
from noisy_student_tf.training import checkpoints
from tests import testing

EVAL_PP = testing.PP + '|keep("image", "label")'


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    model = models.create_model(
        "efficientnet_b0", num_classes=10, input_shape=(32, 32, 1),
        **testing.TINY_MODEL["overrides"])
    path = checkpoints.save_model_atomic(model, str(tmp / "model.keras"))
    export_dir = export.export_saved_model(path, EVAL_PP,
                                           str(tmp / "export"), top_k=3)
    return model, export.load_serving(export_dir), path, tmp


def in_process(model, images):
    pp = preprocess.get_preprocess_fn(testing.PP)
    batch = np.stack([pp({"image": tf.constant(i)})["image"] for i in images])
    return tf.nn.softmax(model(batch, training=False)).numpy()


def test_uint8_signature_equals_in_process(exported):
    model, served, _, _ = exported
    images = fashion_mnist.load_arrays("test")[0][:8]
    out = served.signatures["serving_default"](images=tf.constant(images))
    expected = in_process(model, images)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-6)
    np.testing.assert_array_equal(out["classes"][:, 0],
                                  expected.argmax(1))
    assert out["classes"].shape == (8, 3) and out["scores"].shape == (8, 3)


def test_bytes_signature_equals_in_process(exported):
    model, served, _, _ = exported
    images = fashion_mnist.load_arrays("test")[0][8:12]
    encoded = tf.constant([tf.io.encode_png(i).numpy() for i in images])
    out = served.signatures["predict_bytes"](encoded_images=encoded)
    np.testing.assert_allclose(out["probabilities"],
                               in_process(model, images), atol=1e-6)


def test_garbage_bytes_give_a_corrupt_image_error(exported):
    _, served, _, _ = exported
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="corrupt image"):
        served.signatures["predict_bytes"](
            encoded_images=tf.constant([b"not an image at all"]))


def test_export_script_and_serving_pp(exported):
    _, _, path, tmp = exported
    assert export.serving_pp_string(EVAL_PP, 1) == (
        "decode(channels=1)|pad_to_size(32)|normalize('fashion_mnist')")
    proc = testing.run_script([
        "scripts/export.py", f"--model={path}", f"--pp={EVAL_PP}",
        f"--export_dir={tmp / 'script_export'}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    # TF Serving's layout: the first export is version 1.
    assert sorted(os.listdir(tmp / "script_export")) == ["1"]
    assert (tmp / "script_export" / "1" / "saved_model.pb").exists()
    missing = testing.run_script([
        "scripts/export.py", f"--model={tmp / 'nope.keras'}",
        f"--pp={EVAL_PP}", f"--export_dir={tmp / 'x'}"])
    assert missing.returncode == 1
    assert testing.last_line(missing.stderr).startswith("error: ")
    assert "does not exist" in testing.last_line(missing.stderr)


# === Version folders ===


@pytest.fixture
def small_model(tmp_path):
    """A fast-to-export 10-class model on 32x32x1 (no EfficientNet)."""
    import keras

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, name="logits")(
        keras.layers.GlobalAveragePooling2D()(inputs))
    return checkpoints.save_model_atomic(keras.Model(inputs, outputs),
                                         str(tmp_path / "model.keras"))


def test_exports_go_to_the_next_free_version(tmp_path, small_model):
    base = tmp_path / "export"
    names = [f"class {i}" for i in range(10)]
    first = export.export_saved_model(small_model, testing.PP, str(base),
                                      top_k=2, class_names=names)
    second = export.export_saved_model(small_model, testing.PP, str(base))
    assert (first, second) == (str(base / "1"), str(base / "2"))
    assert export.versions(str(base)) == [1, 2]
    # No temporary is left beside or inside the base folder.
    assert sorted(os.listdir(tmp_path)) == ["export", "model.keras"]
    assert sorted(os.listdir(base)) == ["1", "2"]
    # A base folder resolves to its highest version; a version to itself.
    assert export.resolve(str(base)) == second
    assert export.resolve(first) == first
    info = json.loads((base / "1" / "assets.extra" / "export.json")
                      .read_text())
    assert info["class_names"] == names and info["top_k"] == 2
    # The class names travel in the signature's output.
    images = tf.constant(fashion_mnist.load_arrays("test")[0][:3])
    out = export.load_serving(first).signatures["serving_default"](
        images=images)
    top = out["classes"].numpy()
    assert out["class_names"].numpy().astype(str).tolist() == [
        [names[c] for c in row] for row in top]
    # Without names, the class ids as strings.
    out = export.load_serving(str(base)).signatures["serving_default"](
        images=images)
    assert out["class_names"].numpy().astype(str).tolist() == [
        [str(c) for c in row] for row in out["classes"].numpy()]


def test_wrong_class_name_count_and_missing_export(tmp_path, small_model):
    with pytest.raises(ValueError, match="3 class names for a model with "
                       "10 classes"):
        export.export_saved_model(small_model, testing.PP,
                                  str(tmp_path / "export"),
                                  class_names=["a", "b", "c"])
    assert not (tmp_path / "export").exists()
    assert [p for p in os.listdir(tmp_path) if "tmp" in p] == []
    with pytest.raises(FileNotFoundError, match="no SavedModel in"):
        export.load_serving(str(tmp_path))


def test_driver_export_resumes_and_reexports_a_new_model(tmp_path,
                                                         small_model):
    from noisy_student_tf.experiment import stages

    stage = ml_collections.ConfigDict({"pp": {"eval": testing.PP}})
    result = {"model_path": small_model}
    first = stages.export(result, stage, str(tmp_path))
    assert first == str(tmp_path / "export" / "1")
    # Resumed: the version exported from this model file is reused.
    assert stages.export(result, stage, str(tmp_path)) == first
    assert export.versions(str(tmp_path / "export")) == [1]
    # Another final model (e.g. more students) becomes the next version.
    other = checkpoints.save_model_atomic(
        checkpoints.load_model(small_model), str(tmp_path / "other.keras"))
    second = stages.export({"model_path": other}, stage, str(tmp_path))
    assert second == str(tmp_path / "export" / "2")
    # The same path holding another model (retrained in place) is not the
    # model exported before: it becomes a new version too.
    model = checkpoints.load_model(other)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    checkpoints.save_model_atomic(model, other)
    assert stages.export({"model_path": other}, stage, str(tmp_path)) == \
        str(tmp_path / "export" / "3")
    assert stages.export({"model_path": other}, stage, str(tmp_path)) == \
        str(tmp_path / "export" / "3")
