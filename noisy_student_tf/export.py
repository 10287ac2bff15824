"""SavedModel export for serving, with the eval preprocessing inside.

The export goes into `<export_dir>/<version>/` (an integer, the next free
one), the layout TF Serving watches: point its `--model_base_path` at
`export_dir` and it serves the highest version. Two signatures, both
returning `probabilities` [N, K], `classes` [N, k] (top-k class ids),
`scores` [N, k] and `class_names` [N, k] (the experiment's `class_names`,
else the class ids as strings):

- `serving_default` / `predict_images`: uint8 images [N, H, W, C] of any
  size (C as the model expects);
- `predict_bytes`: encoded PNG/JPEG bytes [N].

Both run the experiment's eval pp string per image (the same registered
ops as training and labeling), then the model with its EMA weights, in
float32 whatever precision it was trained in (`training/precision.py`).
`tf.saved_model.save` stores weights once (half of `model.export`'s size).
"""

import hashlib
import json
import os
import uuid

import tensorflow as tf

from noisy_student_tf.data import preprocess
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import precision

# Beside the SavedModel, not in it: what it was exported from.
INFO_FILE = os.path.join("assets.extra", "export.json")


class ServingModule(tf.Module):
    """Model + eval preprocessing as a tf.Module with serving signatures."""

    def __init__(self, model, pp_string, channels, top_k=5,
                 class_names=None):
        super().__init__(name="serving")
        self.model = model
        self.pp_string = tf.Variable(pp_string, trainable=False,
                                     name="pp_string")
        num_classes = model.output_shape[-1]
        names = check_class_names(class_names, num_classes)
        self.class_names = tf.Variable(names, trainable=False,
                                       name="class_names")
        self._pp = preprocess.get_preprocess_fn(pp_string)
        self._top_k = min(top_k, num_classes)
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
                "scores": scores,
                "class_names": tf.gather(self.class_names, classes)}

    def _predict_images(self, images):
        batch = tf.map_fn(self._preprocess, images,
                          fn_output_signature=self._image_spec)
        return self._outputs(batch)

    def _predict_bytes(self, encoded_images):
        batch = tf.map_fn(self._preprocess, encoded_images,
                          fn_output_signature=self._image_spec)
        return self._outputs(batch)


def check_class_names(class_names, num_classes):
    """`class_names` as a list of K strings (class ids when None).

    Raises:
      ValueError: a name count that is not the model's class count.
    """
    if not class_names:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for a model with "
                         f"{num_classes} classes")
    return names


def serving_pp_string(pp_string, channels):
    """The eval pp string minus `keep` ops (serving has no labels), with a
    leading `decode` (uint8 passes through it, bytes need it)."""
    ops = [op for op in preprocess.parse_pp_string(pp_string)
           if op.name != "keep"]
    if not ops or ops[0].name != "decode":
        ops.insert(0, f"decode(channels={channels})")
    return "|".join(str(op) for op in ops)


def versions(export_dir):
    """Complete version numbers under `export_dir`, ascending.

    A version folder is renamed into place only when complete, so every
    integer-named folder holding a `saved_model.pb` is a whole export.
    """
    if not tf.io.gfile.isdir(export_dir):
        return []
    found = []
    for name in tf.io.gfile.listdir(export_dir):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(
                os.path.join(export_dir, name, "saved_model.pb")):
            found.append(int(name))
    return sorted(found)


def _next_version(export_dir):
    """One past the highest integer-named entry (complete or not)."""
    if not tf.io.gfile.isdir(export_dir):
        return 1
    taken = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(export_dir)
             if name.rstrip("/").isdigit()]
    return max(taken, default=0) + 1


def resolve(path):
    """The SavedModel folder for `path`: a version folder, or the highest
    complete version under a base export folder.

    Raises:
      FileNotFoundError: no SavedModel there.
    """
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    found = versions(path)
    if not found:
        raise FileNotFoundError(
            f"no SavedModel in {path!r} (neither saved_model.pb nor a "
            "numbered version folder holding one)")
    return os.path.join(path, str(found[-1]))


def export_info(version_dir):
    """What `export_saved_model` recorded about a version (model path, pp,
    top_k, class names), or None for exports without the record."""
    path = os.path.join(version_dir, INFO_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def find_export(export_dir, model_path):
    """The highest complete version exported from `model_path`, or None
    (how the driver recognises an export it already made)."""
    wanted = _relpath(model_path, export_dir)
    digest = None
    for version in reversed(versions(export_dir)):
        version_dir = os.path.join(export_dir, str(version))
        info = export_info(version_dir) or {}
        if info.get("model_relpath") != wanted:
            continue
        # Same path, but maybe another model since (a stage retrained in
        # place): only the same bytes count. Exports written before the
        # digest was recorded match by path alone.
        if "model_sha256" in info:
            digest = digest or file_sha256(model_path)
            if info["model_sha256"] != digest:
                continue
        return version_dir
    return None


def file_sha256(path):
    """Hex SHA-256 of a file (local or gs://), read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(16 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _absolute(path):
    # gs:// and other URLs are absolute already; abspath would mangle them.
    return path if "://" in path else os.path.abspath(path)


def _relpath(model_path, export_dir):
    # Relative to the export folder, so a moved workdir still matches.
    return os.path.relpath(_absolute(model_path), _absolute(export_dir))


def _save_module(model_path, pp_string, top_k, class_names, tmp,
                 export_dir):
    # Serving is float32: a model file that kept a mixed policy is rebuilt.
    model = precision.to_float32(checkpoints.load_model(model_path))
    channels = model.input_shape[-1]
    pp_string = serving_pp_string(pp_string, channels)
    module = ServingModule(model, pp_string, channels, top_k, class_names)
    tf.saved_model.save(
        module, tmp,
        signatures={"serving_default": module.predict_images,
                    "predict_images": module.predict_images,
                    "predict_bytes": module.predict_bytes})
    # assets.extra/ is where TF Serving expects files beside a SavedModel
    # that are not part of it.
    tf.io.gfile.makedirs(os.path.dirname(os.path.join(tmp, INFO_FILE)))
    with tf.io.gfile.GFile(os.path.join(tmp, INFO_FILE), "w") as handle:
        json.dump({"model_path": _absolute(model_path),
                   "model_relpath": _relpath(model_path, export_dir),
                   "model_sha256": file_sha256(model_path),
                   "pp": pp_string, "top_k": module._top_k,
                   "class_names": module.class_names.numpy().astype(
                       str).tolist()}, handle, indent=2)


def export_saved_model(model_path, pp_string, export_dir, top_k=5,
                       class_names=None):
    """Exports the `.keras` model at `model_path` as a new version.

    Written to a temporary folder beside `export_dir`, then renamed to
    `export_dir/<next free version>`, so a version folder is either absent
    or complete (TF Serving never sees half an export).

    Args:
      model_path: a `.keras` model file.
      pp_string: the eval pp string (its `keep` ops are dropped).
      export_dir: the base folder (TF Serving's model base path).
      top_k: classes per image in `classes`/`scores`/`class_names`.
      class_names: K names for the signatures' `class_names` output.

    Returns:
      The version folder written.

    Raises:
      FileNotFoundError, CheckpointError: a missing or bad model file.
      ValueError: a class name count that is not the model's.
    """
    parent = os.path.dirname(_absolute(export_dir.rstrip("/")))
    tmp = os.path.join(parent, f".tmp-export-{uuid.uuid4().hex[:8]}")
    try:
        _save_module(model_path, pp_string, top_k, class_names, tmp,
                     export_dir)
        tf.io.gfile.makedirs(export_dir)
        while True:
            target = os.path.join(export_dir, str(_next_version(export_dir)))
            try:
                tf.io.gfile.rename(tmp, target)
                return target
            except tf.errors.AlreadyExistsError:
                continue  # another exporter took that number first
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)


def load_serving(export_dir):
    """Loads an export (a base folder: its highest version) for checks and
    clients."""
    return tf.saved_model.load(resolve(export_dir))
