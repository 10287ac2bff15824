"""SavedModel export for serving, with the eval preprocessing inside.

Two signatures, both returning `probabilities` [N, K], `classes` [N, k]
(top-k class ids) and `scores` [N, k]:

- `serving_default` / `predict_images`: uint8 images [N, H, W, C] of any
  size (C as the model expects);
- `predict_bytes`: encoded PNG/JPEG bytes [N].

Both run the experiment's eval pp string per image (the same registered
ops as training and labeling), then the model with its EMA weights, in
float32 whatever precision it was trained in (`training/precision.py`).
`tf.saved_model.save` stores weights once (half of `model.export`'s size).
"""

import os
import uuid

import tensorflow as tf

from noisy_student_tf.data import preprocess
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import precision


class ServingModule(tf.Module):
    """Model + eval preprocessing as a tf.Module with serving signatures."""

    def __init__(self, model, pp_string, channels, top_k=5):
        super().__init__(name="serving")
        self.model = model
        self.pp_string = tf.Variable(pp_string, trainable=False,
                                     name="pp_string")
        self._pp = preprocess.get_preprocess_fn(pp_string)
        self._top_k = min(top_k, model.output_shape[-1])
        height, width, _ = model.input_shape[1:]
        self._image_spec = tf.TensorSpec([height, width, channels],
                                         tf.float32)
        self.predict_images = tf.function(
            self._predict_images,
            input_signature=[tf.TensorSpec([None, None, None, channels],
                                           tf.uint8, name="images")])
        self.predict_bytes = tf.function(
            self._predict_bytes,
            input_signature=[tf.TensorSpec([None], tf.string,
                                           name="encoded_images")])

    def _preprocess(self, image):
        out = self._pp({"image": image})["image"]
        return tf.cast(out, tf.float32)

    def _outputs(self, images):
        logits = tf.cast(self.model(images, training=False), tf.float32)
        probabilities = tf.nn.softmax(logits)
        scores, classes = tf.math.top_k(probabilities, k=self._top_k)
        return {"probabilities": probabilities, "classes": classes,
                "scores": scores}

    def _predict_images(self, images):
        batch = tf.map_fn(self._preprocess, images,
                          fn_output_signature=self._image_spec)
        return self._outputs(batch)

    def _predict_bytes(self, encoded_images):
        batch = tf.map_fn(self._preprocess, encoded_images,
                          fn_output_signature=self._image_spec)
        return self._outputs(batch)


def serving_pp_string(pp_string, channels):
    """The eval pp string minus `keep` ops (serving has no labels), with a
    leading `decode` (uint8 passes through it, bytes need it)."""
    ops = [op for op in preprocess.parse_pp_string(pp_string)
           if op.name != "keep"]
    if not ops or ops[0].name != "decode":
        ops.insert(0, f"decode(channels={channels})")
    return "|".join(str(op) for op in ops)


def export_saved_model(model_path, pp_string, export_dir, top_k=5):
    """Exports the `.keras` model at `model_path` to `export_dir`.

    Written to a temporary directory and renamed, so `export_dir` is either
    absent or complete. Returns `export_dir`.
    """
    # Serving is float32: a model file that kept a mixed policy is rebuilt.
    model = precision.to_float32(checkpoints.load_model(model_path))
    channels = model.input_shape[-1]
    pp_string = serving_pp_string(pp_string, channels)
    module = ServingModule(model, pp_string, channels, top_k)
    parent = os.path.dirname(os.path.abspath(export_dir))
    tf.io.gfile.makedirs(parent)
    tmp = os.path.join(parent, f".tmp-export-{uuid.uuid4().hex[:8]}")
    tf.saved_model.save(
        module, tmp,
        signatures={"serving_default": module.predict_images,
                    "predict_images": module.predict_images,
                    "predict_bytes": module.predict_bytes})
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)
    return export_dir


def load_serving(export_dir):
    """Loads an exported SavedModel (for checks and clients)."""
    if not tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel in {export_dir!r}")
    return tf.saved_model.load(export_dir)
