"""SavedModel export: both signatures equal in-process predictions."""

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
    assert (tmp / "script_export" / "saved_model.pb").exists()
    missing = testing.run_script([
        "scripts/export.py", f"--model={tmp / 'nope.keras'}",
        f"--pp={EVAL_PP}", f"--export_dir={tmp / 'x'}"])
    assert missing.returncode == 1
    assert testing.last_line(missing.stderr).startswith("error: ")
    assert "does not exist" in testing.last_line(missing.stderr)
