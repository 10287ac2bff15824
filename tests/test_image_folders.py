"""Noisy Student on a user's own image files, from a teacher file.

A small tree of real PNG/JPEG/GIF files from Fashion-MNIST (class folders
and a nested unlabeled pile with odd files) runs through
`scripts/noisy_student.py` with `configs/image_folders.py:...,teacher=,quick`;
bad inputs each end with one `error:` line and leave nothing marked done.
"""

import csv
import json
import os

import pytest

from noisy_student_tf import models
from tests import image_tree
from tests import testing

CONFIG = "noisy_student_tf/configs/image_folders.py"


def _teacher(path, num_classes=3, size=32):
    """A tiny untrained B0 saved as a .keras teacher file."""
    model = models.create_model(
        "efficientnet_b0", num_classes=num_classes,
        input_shape=(size, size, 3), width_coefficient=0.25,
        depth_coefficient=0.25)
    model.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    info = image_tree.make_tree(str(root))
    info["teacher"] = _teacher(root / "teacher.keras")
    return info


def _run(tree, workdir, extra="", flags=()):
    arg = (f"labeled={tree['labeled']},unlabeled={tree['pile']},"
           f"quick{extra}")
    return testing.run_script(["scripts/noisy_student.py",
                               f"--config={CONFIG}:{arg}",
                               f"--workdir={workdir}", "--no_progress",
                               *flags])


def test_own_images_from_a_teacher_file_end_to_end(tree, tmp_path):
    workdir = tmp_path / "run"
    proc = _run(tree, workdir, f",teacher={tree['teacher']}", flags=[
        "--config.students.iter1.unlabel_ratio=2",
        "--config.defaults.clip_global_norm=5",
        "--config.filter.max_prob=1.0"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # No teacher was trained: the stage records the file and its eval.
    teacher = json.loads((workdir / "teacher" / "result.json").read_text())
    assert teacher["from_file"] == tree["teacher"]
    assert not (workdir / "teacher" / "checkpoints").exists()
    assert "teacher: from file" in proc.stdout
    # Every decodable pile image is labeled; the corrupt one is counted.
    labels = json.loads((workdir / "iter1" / "labels" /
                         "result.json").read_text())
    assert labels["num_records"] == tree["decodable"]
    assert labels["skipped_corrupt"] == 1
    stats = json.loads((workdir / "iter1" / "filter" /
                        "stats.json").read_text())
    # min_threshold 0 (quick): every labeled image passes the filter.
    assert sum(stats["per_class_kept_unique"]) == tree["decodable"]
    student = json.loads((workdir / "iter1" / "student" /
                          "config.json").read_text())
    assert student["unlabel_ratio"] == 2
    assert student["clip_global_norm"] == 5.0
    assert json.loads((workdir / "config.json").read_text())[
        "filter"]["max_prob"] == 1.0
    report = json.loads((workdir / "report.json").read_text())
    assert report["class_names"] == sorted(image_tree.CLASSES)
    assert report["teacher"]["from_file"]
    assert report["teacher"]["top1"] == teacher["eval"]["top1"]
    assert "held out" in report["eval_data"]
    assert report["iterations"][0]["num_labeled_by_teacher"] == \
        tree["decodable"]
    assert 0.0 <= report["iterations"][0]["student"]["top1"] <= 1.0
    # The export lands in TF Serving's version folder, with class names.
    assert report["export_dir"] == str(workdir / "export" / "1")
    assert (workdir / "export" / "1" / "saved_model.pb").exists()
    # predict.py on the pile with the export: one row per decodable image.
    output = tmp_path / "pile.csv"
    proc = testing.run_script([
        "scripts/predict.py", f"--model={workdir / 'export'}",
        f"--images={tree['pile']}", f"--output={output}", "--top_k=2",
        "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(output.open()))
    assert sorted(row["path"] for row in rows) == tree["pile_files"]
    assert {row["class_1"] for row in rows} <= set(image_tree.CLASSES)
    assert "a_corrupt.jpg" in testing.last_line(proc.stdout)


def _fails(proc, *words):
    assert proc.returncode != 0
    line = testing.last_line(proc.stderr)
    assert line.startswith("error:"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in line, line
    return line


def test_teacher_file_missing(tree, tmp_path):
    proc = _run(tree, tmp_path / "w", f",teacher={tmp_path}/nope.keras")
    _fails(proc, "nope.keras", "does not exist")
    assert not (tmp_path / "w" / "teacher" / "result.json").exists()


def test_teacher_file_with_wrong_class_count(tree, tmp_path):
    teacher = _teacher(tmp_path / "four.keras", num_classes=4)
    proc = _run(tree, tmp_path / "w", f",teacher={teacher}")
    _fails(proc, "four.keras", "predicts 4 classes", "has 3")
    assert not (tmp_path / "w" / "teacher" / "result.json").exists()


def test_teacher_file_with_wrong_input_size(tree, tmp_path):
    teacher = _teacher(tmp_path / "big.keras", size=48)
    proc = _run(tree, tmp_path / "w", f",teacher={teacher}")
    _fails(proc, "big.keras", "(32, 32, 3)", "(48, 48, 3)")
    assert not (tmp_path / "w" / "teacher" / "result.json").exists()


def test_pile_without_images(tree, tmp_path):
    pile = tmp_path / "pile" / "sub"
    pile.mkdir(parents=True)
    (pile / "readme.txt").write_text("no images here")
    proc = testing.run_script([
        "scripts/noisy_student.py",
        f"--config={CONFIG}:labeled={tree['labeled']},"
        f"unlabeled={tmp_path / 'pile'},quick",
        f"--workdir={tmp_path / 'w'}"])
    _fails(proc, "no image files", str(tmp_path / "pile"))


def test_eval_folder_with_other_classes(tree, tmp_path):
    for name in ("ankle_boot", "bag", "shirt"):
        (tmp_path / "eval" / name).mkdir(parents=True)
        source = os.path.join(tree["labeled"], "bag", "0.png")
        with open(source, "rb") as handle:
            (tmp_path / "eval" / name / "0.png").write_bytes(handle.read())
    proc = _run(tree, tmp_path / "w", f",eval={tmp_path / 'eval'}")
    _fails(proc, "eval folder", "missing ['trouser']", "extra ['shirt']")


def test_per_stage_binaries_find_the_teacher_file(tree, tmp_path):
    workdir = tmp_path / "staged"
    common = [f"--config={CONFIG}:labeled={tree['labeled']},"
              f"unlabeled={tree['pile']},teacher={tree['teacher']},quick",
              f"--workdir={workdir}"]
    # Labeling first: the teacher stage is recorded on first use.
    proc = testing.run_script(["scripts/pseudo_label.py", *common,
                               "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((workdir / "teacher" / "result.json").read_text())[
        "from_file"] == tree["teacher"]
    proc = testing.run_script(["scripts/filter.py", *common])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # "Training" the teacher is the recorded file: skipped, not trained.
    proc = testing.run_script(["scripts/train.py", *common,
                               "--stage=teacher", "--no_progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "teacher: complete (from file), skipped" in proc.stdout
    assert not (workdir / "teacher" / "checkpoints").exists()
    labels = json.loads((workdir / "iter1" / "labels" /
                         "result.json").read_text())
    assert labels["num_records"] == tree["decodable"]


def test_corrupt_labeled_image_is_named(tree, tmp_path):
    import shutil

    evaluation = tmp_path / "eval"
    shutil.copytree(tree["eval"], evaluation)
    (evaluation / "bag" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    proc = _run(tree, tmp_path / "w",
                f",eval={evaluation},teacher={tree['teacher']}")
    _fails(proc, "broken.png", "corrupt image")
    assert not (tmp_path / "w" / "teacher" / "result.json").exists()
