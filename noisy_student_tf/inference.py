"""Top-k predictions for a pile of image files, from a model or an export.

The model is a `.keras` file written by this project (a stage's
`model.keras`, or `scripts/convert_weights.py` output) or an export
(`export.py`: a base folder, whose highest version is used, or one version
folder). A `.keras` model's eval preprocessing and class names come from the
stage's `config.json` beside it and the experiment's `config.json` above it
(its `class_names`); an export carries both. Without class names a class is
named by its index.

Images are read lazily, decoded in parallel (Pillow, any mode: see
`data.image_files`) and predicted in batches; each batch's rows are written
as soon as it completes, so memory does not grow with the pile. The output
(CSV or JSON lines, one row per decodable image) is written under a
temporary name and renamed when complete. Undecodable files are skipped,
counted and named.
"""

import csv
import io
import json
import os
import uuid

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf import export
from noisy_student_tf import io_utils
from noisy_student_tf.data import image_decode
from noisy_student_tf.data import image_files
from noisy_student_tf.data import preprocess
from noisy_student_tf.training import checkpoints

# Skipped files named in the summary (all of them are counted).
MAX_NAMED_SKIPS = 20


class RowWriter:
    """Streams rows to a temporary file; renamed to `path` on success,
    deleted on failure (a context manager)."""

    FORMATS = (".csv", ".jsonl")

    def __init__(self, path, top_k):
        self.format = os.path.splitext(path)[1].lower()
        if self.format not in self.FORMATS:
            raise ValueError(f"output {path!r} must end in .csv or .jsonl")
        self.path, self.top_k, self.count = path, top_k, 0
        self._tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        self._handle = None
        self._header = self.format == ".csv"

    def __enter__(self):
        directory = os.path.dirname(_absolute(self.path))
        tf.io.gfile.makedirs(directory)
        self._handle = tf.io.gfile.GFile(self._tmp, "w")
        return self

    def __exit__(self, kind, value, trace):
        self._handle.close()
        if kind is None and not tf.io.gfile.exists(self._tmp):
            io_utils.atomic_write_bytes(self.path, b"")  # no decodable image
        elif kind is None:
            tf.io.gfile.rename(self._tmp, self.path, overwrite=True)
        elif tf.io.gfile.exists(self._tmp):  # GFile creates on 1st write
            tf.io.gfile.remove(self._tmp)

    def write_batch(self, paths, probabilities, class_names):
        """One row per image: path, top-k names and probabilities."""
        k = min(self.top_k, probabilities.shape[-1])
        top = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
        if self._header:
            columns = ["path"] + [f"{kind}_{i}" for i in range(1, k + 1)
                                  for kind in ("class", "prob")]
            self._write_csv([columns])
            self._header = False
        rows = []
        for path, classes, probs in zip(paths, top, probabilities):
            names = [class_names[c] for c in classes]
            values = [round(float(probs[c]), 6) for c in classes]
            rows.append((path.decode(), names, values))
        if self.format == ".csv":
            self._write_csv([[path] + [item for pair in zip(names, values)
                                       for item in pair]
                             for path, names, values in rows])
        else:
            self._handle.write("".join(
                json.dumps({"path": path, "classes": names,
                            "probabilities": values}) + "\n"
                for path, names, values in rows))
        self.count += len(rows)
        # Rows on disk per batch: nothing accumulates in memory.
        self._handle.flush()

    def _write_csv(self, rows):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        self._handle.write(buffer.getvalue())


def _absolute(path):
    # gs:// and other URLs are absolute already; abspath would mangle them.
    return path if "://" in path else os.path.abspath(path)


def model_metadata(model_path):
    """(eval pp string or None, class names or None) for a `.keras` file.

    The stage's `config.json` beside the model holds its `pp.eval`; the
    experiment's `config.json` (one or two folders up: `teacher/`,
    `iter1/student/`) holds `class_names`.
    """
    pp, names = None, None
    directory = os.path.dirname(_absolute(model_path))
    for depth in range(3):
        path = os.path.join(directory, "config.json")
        if tf.io.gfile.exists(path):
            config = io_utils.read_json(path)
            if depth == 0:
                pp = (config.get("pp") or {}).get("eval")
            names = names or config.get("class_names")
        directory = os.path.dirname(directory)
    return pp, names


class KerasPredictor:
    """A `.keras` model with its eval preprocessing."""

    def __init__(self, model_path, pp_string=None, class_names=None,
                 fallback_pp=None):
        stored_pp, stored_names = model_metadata(model_path)
        # The model's own stage config beats an experiment-wide default:
        # a student or a finetune may see a view unlike the teacher's.
        pp_string = pp_string or stored_pp or fallback_pp
        if not pp_string:
            raise ValueError(
                f"no eval preprocessing for {model_path!r}: it has no stage "
                "config.json beside it; give --pp or --config")
        self.model = checkpoints.load_model(model_path)
        self.channels = self.model.input_shape[-1]
        num_classes = self.model.output_shape[-1]
        self.class_names = export.check_class_names(
            class_names or stored_names, num_classes)
        self._pp = preprocess.get_preprocess_fn(
            export.serving_pp_string(pp_string, self.channels))
        self._step = tf.function(self._probabilities, reduce_retracing=True)

    def prepare(self, image):
        """uint8 [H, W, C] -> the model's input (a tf.data map)."""
        return tf.cast(self._pp({"image": image})["image"], tf.float32)

    def _probabilities(self, images):
        logits = tf.cast(self.model(images, training=False), tf.float32)
        return tf.nn.softmax(logits)

    def __call__(self, batch):
        return self._step(batch).numpy()


class ExportPredictor:
    """An exported SavedModel (`export.py`); its `predict_bytes` signature
    runs the preprocessing it was exported with."""

    def __init__(self, export_dir, class_names=None):
        self.path = export.resolve(export_dir)
        self.served = tf.saved_model.load(self.path)
        signature = self.served.signatures["predict_images"]
        images_spec = signature.structured_input_signature[1]["images"]
        self.channels = images_spec.shape[-1]
        self._predict = self.served.signatures["predict_bytes"]
        stored = getattr(self.served, "class_names", None)
        if stored is not None:
            stored = stored.numpy().astype(str).tolist()
        self._names = class_names or stored
        self.class_names = None  # known after the first batch (K)

    def prepare(self, image):
        # Decoded by Pillow (any mode), re-encoded as an uncompressed PNG
        # that the export decodes: a batch of bytes needs no common size.
        return tf.io.encode_png(image, compression=0)

    def __call__(self, batch):
        probabilities = self._predict(encoded_images=batch)[
            "probabilities"].numpy()
        if self.class_names is None:
            self.class_names = export.check_class_names(
                self._names, probabilities.shape[-1])
        return probabilities


def load_predictor(model, pp_string=None, class_names=None,
                   fallback_pp=None):
    """A predictor for a `.keras` file or an export folder.

    A `.keras` model is preprocessed with `pp_string`, else its stage's
    `pp.eval` (config.json beside it), else `fallback_pp`.

    Raises:
      FileNotFoundError: neither a model file nor an export.
      ValueError: no preprocessing known, or a class name count that is
        not the model's.
    """
    if tf.io.gfile.isdir(model):
        return ExportPredictor(model, class_names)
    if not tf.io.gfile.exists(model):
        raise FileNotFoundError(f"model {model!r} does not exist (give a "
                                ".keras file or an export folder)")
    return KerasPredictor(model, pp_string, class_names, fallback_pp)


def list_images(specs):
    """The sorted image files of directories and/or globs (one list: a
    pile's paths, not its images, are held in memory)."""
    if isinstance(specs, str):
        specs = [specs]
    return image_files.list_image_files(";".join(specs),
                                        image_decode.IMAGE_EXTENSIONS)


def _dataset(predictor, paths, batch_size, skipped):
    """Batches of {"path", "image"}; undecodable paths go to `skipped`."""

    def decode(path):
        path = path.decode()
        try:
            return image_decode.decode_file(path, predictor.channels), True
        except image_decode.ImageFileError:
            skipped.append(path)  # list.append is atomic across threads
            return np.zeros((1, 1, predictor.channels), np.uint8), False

    def load(path):
        image, ok = tf.numpy_function(decode, [path], [tf.uint8, tf.bool])
        image.set_shape([None, None, predictor.channels])
        return {"path": path, "image": image, "ok": ok}

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = ds.filter(lambda r: r["ok"])
    ds = ds.map(lambda r: {"path": r["path"],
                           "image": predictor.prepare(r["image"])},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(2)


def predict_files(predictor, specs, output, *, top_k=5, batch_size=64,
                  progress=True):
    """Writes one row of top-k predictions per decodable image to `output`.

    Args:
      predictor: from `load_predictor`.
      specs: directories and/or globs (`list_images`).
      output: a `.csv` or `.jsonl` file, written atomically.
      top_k: classes per row (at most the class count).
      batch_size: images per model call.
      progress: show a progress bar.

    Returns:
      {"output", "num_predicted", "num_skipped", "skipped"}: `skipped`
      names the first MAX_NAMED_SKIPS undecodable files.

    Raises:
      DataError: no image file in `specs`.
      ValueError: an output that is neither .csv nor .jsonl.
    """
    paths = list_images(specs)
    total = len(paths)
    bar = keras.utils.Progbar(total, unit_name="image") if progress \
        else None
    skipped = []
    with RowWriter(output, top_k) as writer:
        for batch in _dataset(predictor, paths, batch_size, skipped):
            probabilities = predictor(batch["image"])
            writer.write_batch(batch["path"].numpy(), probabilities,
                               predictor.class_names)
            if bar is not None:
                bar.update(writer.count + len(skipped))
        num = writer.count
    if bar is not None and num + len(skipped) < total:
        bar.update(total)  # files skipped after the last batch
    return {"output": output, "num_predicted": num,
            "num_skipped": len(skipped),
            "skipped": sorted(skipped)[:MAX_NAMED_SKIPS]}


def skipped_line(summary):
    """One log line counting and naming the skipped files."""
    count = summary["num_skipped"]
    if not count:
        return "skipped no files"
    named = ", ".join(summary["skipped"])
    more = count - len(summary["skipped"])
    return (f"skipped {count} undecodable file(s): {named}"
            + (f" and {more} more" if more > 0 else ""))
