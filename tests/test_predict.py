"""scripts/predict.py and `inference`: a folder of real images (Fashion-MNIST
written as PNG/JPEG/GIF/TIFF in odd modes, nested, with an undecodable file)
through a `.keras` model and its export (base and version folder)."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from noisy_student_tf import export
from noisy_student_tf import inference
from noisy_student_tf import io_utils
from noisy_student_tf.data import fashion_mnist
from noisy_student_tf.data import image_decode
from noisy_student_tf.data import preprocess
from noisy_student_tf.data import sources
from noisy_student_tf.training import checkpoints
from tests import testing

NAMES = list(fashion_mnist.CLASS_NAMES)
EVAL_PP = testing.PP + '|keep("image", "label")'


def _write_pile(root, images):
    """Real images in every odd mode, nested; returns the decodable paths."""
    pile = root / "pile"
    (pile / "a" / "deeper").mkdir(parents=True)
    (pile / "b").mkdir()
    gray = [Image.fromarray(image[..., 0]) for image in images]
    writers = [
        ("a/gray.png", lambda i: i.save(pile / "a/gray.png")),
        ("a/rgb.JPG", lambda i: i.convert("RGB").save(pile / "a/rgb.JPG")),
        ("a/deeper/rgba.PNG",
         lambda i: i.convert("RGBA").save(pile / "a/deeper/rgba.PNG")),
        ("a/deeper/cmyk.jpeg",
         lambda i: i.convert("CMYK").save(pile / "a/deeper/cmyk.jpeg")),
        ("b/palette.gif",
         lambda i: i.convert("P").save(pile / "b/palette.gif")),
        ("b/gray.tiff", lambda i: i.save(pile / "b/gray.tiff")),
    ]
    for (name, write), image in zip(writers, gray):
        write(image)
    wide = images[len(writers)].astype(np.uint16) * 257
    (pile / "b" / "sixteen.png").write_bytes(
        tf.io.encode_png(tf.constant(wide)).numpy())
    Image.fromarray(images[0][:1, :1, 0]).save(pile / "b" / "tiny.png")
    (pile / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (pile / "b" / "notes.txt").write_text("not an image, not listed")
    names = [name for name, _ in writers] + ["b/sixteen.png", "b/tiny.png"]
    return pile, sorted(str(pile / name) for name in names)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run's layout: config.json with class names, teacher/model.keras
    with its stage config.json, and an export with version 1."""
    root = tmp_path_factory.mktemp("predict")
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, name="logits")(
        keras.layers.Flatten()(inputs))
    stage = root / "run" / "teacher"
    stage.mkdir(parents=True)
    model = keras.Model(inputs, outputs)
    path = checkpoints.save_model_atomic(model, str(stage / "model.keras"))
    io_utils.atomic_write_json(str(stage / "config.json"),
                               {"pp": {"eval": EVAL_PP}})
    io_utils.atomic_write_json(str(root / "run" / "config.json"),
                               {"class_names": NAMES})
    version = export.export_saved_model(path, EVAL_PP,
                                        str(root / "run" / "export"),
                                        class_names=NAMES)
    images = fashion_mnist.load_arrays("test")[0][:8]
    pile, decodable = _write_pile(root, images)
    return dict(root=root, model=model, path=path, version=version,
                pile=pile, decodable=decodable)


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _expected(model, path):
    """In-process probabilities for one file (Pillow decode + eval pp)."""
    image = image_decode.decode_file(path, channels=1)
    pp = preprocess.get_preprocess_fn(testing.PP)
    batch = pp({"image": tf.constant(image)})["image"][None]
    return tf.nn.softmax(model(batch, training=False)).numpy()[0]


def test_lister_walks_any_depth_and_ignores_other_files(run):
    listed = inference.list_images(str(run["pile"]))
    assert listed == sorted(run["decodable"]
                            + [str(run["pile"] / "b/broken.jpg")])
    with pytest.raises(sources.DataError, match="no image files"):
        inference.list_images(str(run["root"] / "run" / "teacher"))
    with pytest.raises(sources.DataError, match="no image files"):
        inference.list_images([str(run["root"] / "*.nope")])


def test_keras_model_via_the_script(run, tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    proc = testing.run_script([
        "scripts/predict.py", f"--model={run['path']}",
        f"--images={run['pile']}", f"--output={output}", "--top_k=3",
        "--batch_size=4", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    broken = str(run["pile"] / "b" / "broken.jpg")
    assert f"skipped 1 undecodable file(s): {broken}" in proc.stdout
    rows = _read_csv(output)
    assert sorted(row["path"] for row in rows) == run["decodable"]
    assert list(rows[0]) == ["path", "class_1", "prob_1", "class_2",
                             "prob_2", "class_3", "prob_3"]
    for row in rows:
        probs = [float(row[f"prob_{i}"]) for i in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0
        expected = _expected(run["model"], row["path"])
        top = np.argsort(-expected)[:3]
        assert [row[f"class_{i}"] for i in (1, 2, 3)] == [
            NAMES[c] for c in top]
        np.testing.assert_allclose(probs, expected[top], atol=1e-5)
    assert [p for p in os.listdir(output.parent) if "tmp" in p] == []


def test_a_models_own_stage_pp_beats_the_configs(run, tmp_path):
    # The run's teacher has its stage config.json: a --config default
    # (here another value range) must not replace it.
    other = 'decode(channels=1)|pad_to_size(32)|value_range(0, 1)'
    path = run["decodable"][0]
    own = inference.load_predictor(run["path"], fallback_pp=other)
    image = image_decode.decode_file(path, channels=1)
    np.testing.assert_allclose(
        own(own.prepare(image)[None])[0], _expected(run["model"], path),
        atol=1e-5)
    # Without a stage config the fallback is used; --pp beats both.
    bare = tmp_path / "converted.keras"
    checkpoints.save_model_atomic(run["model"], str(bare))
    fallback = inference.load_predictor(str(bare), fallback_pp=other)
    np.testing.assert_allclose(
        fallback.prepare(image), preprocess.get_preprocess_fn(other)(
            {"image": tf.constant(image)})["image"], atol=1e-6)
    given = inference.load_predictor(str(bare), testing.PP,
                                     fallback_pp=other)
    np.testing.assert_allclose(
        given(given.prepare(image)[None])[0], _expected(run["model"], path),
        atol=1e-5)


@pytest.mark.parametrize("which", ["base", "version"])
def test_export_equals_the_model_file(run, tmp_path, which):
    model = str(run["root"] / "run" / "export") if which == "base" \
        else run["version"]
    output = str(tmp_path / "predictions.jsonl")
    summary = inference.predict_files(
        inference.load_predictor(model), [str(run["pile"])], output,
        top_k=2, batch_size=3, progress=False)
    assert summary["num_predicted"] == len(run["decodable"])
    assert summary["skipped"] == [str(run["pile"] / "b" / "broken.jpg")]
    with open(output) as handle:
        rows = [json.loads(line) for line in handle]
    assert sorted(row["path"] for row in rows) == run["decodable"]
    for row in rows:
        expected = _expected(run["model"], row["path"])
        assert row["classes"] == [NAMES[c] for c in np.argsort(-expected)[:2]]
        assert sum(row["probabilities"]) <= 1.0 + 1e-6
        np.testing.assert_allclose(row["probabilities"],
                                   np.sort(expected)[::-1][:2], atol=1e-5)


def test_globs_names_by_index_and_bad_input(run, tmp_path):
    # A bare model file with --pp: no config.json, so classes are indices.
    bare = tmp_path / "bare.keras"
    checkpoints.save_model_atomic(run["model"], str(bare))
    with pytest.raises(ValueError, match="no eval preprocessing"):
        inference.load_predictor(str(bare))
    predictor = inference.load_predictor(str(bare), EVAL_PP)
    output = str(tmp_path / "glob.csv")
    summary = inference.predict_files(
        predictor, [str(run["pile"] / "a" / "*.*"),
                    str(run["pile"] / "b" / "*.txt")], output,
        progress=False)
    # Globs list image files only, as directories do: the .txt is not
    # an image name, so it is neither predicted nor counted as skipped.
    assert summary["num_predicted"] == 2 and summary["num_skipped"] == 0
    assert {row["class_1"] for row in _read_csv(output)} <= {
        str(c) for c in range(10)}
    # Nothing decodable: an empty output, the file named as skipped.
    summary = inference.predict_files(
        predictor, [str(run["pile"] / "b" / "broken.*")],
        str(tmp_path / "none.csv"), progress=False)
    assert (tmp_path / "none.csv").read_text() == ""
    assert inference.skipped_line(summary) == (
        "skipped 1 undecodable file(s): "
        f"{run['pile'] / 'b' / 'broken.jpg'}")
    with pytest.raises(ValueError, match="must end in .csv or .jsonl"):
        inference.predict_files(predictor, [str(run["pile"])],
                                str(tmp_path / "x.txt"), progress=False)
    proc = testing.run_script([
        "scripts/predict.py", f"--model={tmp_path / 'missing.keras'}",
        f"--images={run['pile']}", f"--output={tmp_path / 'y.csv'}"])
    assert proc.returncode == 1
    assert testing.last_line(proc.stderr) == (
        f"error: model {str(tmp_path / 'missing.keras')!r} does not exist "
        "(give a .keras file or an export folder)")
    assert not (tmp_path / "y.csv").exists()


def test_rows_reach_the_file_batch_by_batch(run, tmp_path):
    """Streaming: when the model sees batch n, the rows of batches before
    it are already in the (temporary) output file."""
    predictor = inference.load_predictor(run["path"])
    output = tmp_path / "stream.jsonl"
    seen = []

    class Watching:
        channels = predictor.channels
        class_names = predictor.class_names
        prepare = staticmethod(predictor.prepare)

        def __call__(self, batch):
            # GFile creates the file at its first write.
            tmp = list(tmp_path.glob("stream.jsonl.tmp-*"))
            seen.append(len(tmp[0].read_text().splitlines()) if tmp else 0)
            return predictor(batch)

    summary = inference.predict_files(Watching(), [str(run["pile"])],
                                      str(output), batch_size=2,
                                      progress=False)
    assert seen == [0, 2, 4, 6] and summary["num_predicted"] == 8
    assert not list(tmp_path.glob("*.tmp-*"))
