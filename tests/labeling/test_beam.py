"""labeling.engine="beam": the same files as the local engine, on real data.

Fashion-MNIST through the tiny teacher, labeled and filtered by the local
engine and by Beam's in-process runner with one and with two workers; the
shards must be identical. Bad input through the Beam path fails in one line
and leaves no shard behind.
"""

import filecmp
import os

import ml_collections
import pytest
import tensorflow as tf

from noisy_student_tf.data import sources
from noisy_student_tf.labeling import filtering
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import tfrecord_io
from tests import testing
from tests.labeling import test_predict

# CI installs the `dev` extra, which includes apache-beam.
pytest.importorskip("apache_beam")

from noisy_student_tf.labeling import beam_engine  # noqa: E402
from noisy_student_tf.labeling import beam_filter  # noqa: E402

PP = testing.PP
SHARDS = 3
RUNNERS = {
    "1 worker": "",
    "2 workers": "--direct_num_workers=2 "
                 "--direct_running_mode=multi_threading",
    "2 processes": "--direct_num_workers=2 "
                   "--direct_running_mode=multi_processing",
}
FILTER = dict(min_threshold=0.0, num_image=30, seed=3, plots=False)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """200 real images labeled and filtered by the local engine."""
    root = tmp_path_factory.mktemp("local")
    teacher = str(root / "teacher.keras")
    test_predict.tiny_teacher(teacher)
    summary = predict.generate_pseudo_labels(
        teacher, test_predict.source(200), PP, str(root / "labels"),
        num_shards=SHARDS, batch_size=32, has_true_labels=True,
        progress=False)
    stats = filtering.filter_and_balance(
        test_predict.source(200), str(root / "labels"),
        str(root / "filter"), SHARDS, 10, **FILTER)
    return dict(root=root, teacher=teacher, summary=summary, stats=stats)


def _assert_same_shards(dir_a, dir_b, prefix):
    for index in range(SHARDS):
        name = tfrecord_io.shard_name(prefix, index, SHARDS)
        assert filecmp.cmp(os.path.join(dir_a, name),
                           os.path.join(dir_b, name), shallow=False), name
        info_a = tfrecord_io.read_info(dir_a, prefix, index, SHARDS)
        info_b = tfrecord_io.read_info(dir_b, prefix, index, SHARDS)
        assert info_a.keys() == info_b.keys()
        for key, value in info_a.items():
            assert info_b[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("runner", ["1 worker", "2 workers"] + [
    # Worker processes: each imports TensorFlow and loads the teacher.
    pytest.param("2 processes", marks=pytest.mark.slow)])
def test_beam_labels_and_filters_like_the_local_engine(local, tmp_path,
                                                       runner):
    options = RUNNERS[runner]
    labels = str(tmp_path / "labels")
    summary = beam_engine.generate_pseudo_labels(
        local["teacher"], test_predict.source(200), PP, labels,
        num_shards=SHARDS, batch_size=32, has_true_labels=True,
        progress=False, beam_options=options)
    assert summary["num_records"] == 200
    assert summary["beam_counters"]["images_read"] == 200
    for key in ("num_records", "skipped_corrupt"):
        assert summary[key] == local["summary"][key]
    for key in ("mean_confidence", "accuracy_vs_true_labels"):
        assert summary[key] == pytest.approx(local["summary"][key],
                                             rel=1e-6)
    # Same records in the same order, byte for byte (the same traced
    # step serializes them); ids and probabilities follow.
    _assert_same_shards(str(local["root"] / "labels"), labels,
                        tfrecord_io.PREDICTIONS)
    assert sorted(test_predict.read_ids(labels, SHARDS)) == list(range(200))

    stats = beam_filter.filter_and_balance(
        test_predict.source(200), labels, str(tmp_path / "filter"), SHARDS,
        10, beam_options=options, **FILTER)
    assert stats == local["stats"]
    assert stats["num_records"] > 0
    _assert_same_shards(str(local["root"] / "filter" / "data"),
                        str(tmp_path / "filter" / "data"),
                        tfrecord_io.FILTERED)
    # A rerun finds every shard complete and runs no pipeline.
    again = beam_engine.generate_pseudo_labels(
        local["teacher"], test_predict.source(200), PP, labels,
        num_shards=SHARDS, progress=False, beam_options=options)
    assert again["shards_labeled"] == 0 and again["beam_counters"] == {}


def _png_folder(root, corrupt):
    images, _ = sources.fashion_mnist.load_arrays("test")
    for i in range(12):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        data = tf.io.encode_png(images[i]).numpy()
        if i == corrupt:
            data = data[:len(data) // 2]  # a truncated download
        (folder / f"img{i:02d}.png").write_bytes(data)
    return ml_collections.ConfigDict(dict(kind="folder", root=str(root)))


def _shards_left(directory):
    if not os.path.isdir(directory):
        return []
    return [name for name in os.listdir(directory)
            if name.startswith(tfrecord_io.PREDICTIONS)]


def test_corrupt_image_fails_in_one_line_or_is_counted(local, tmp_path):
    config = _png_folder(tmp_path / "images", corrupt=5)
    out = str(tmp_path / "labels")
    with pytest.raises(sources.DataError) as error:
        beam_engine.generate_pseudo_labels(
            local["teacher"], config, PP, out, num_shards=2, batch_size=4,
            progress=False)
    message = str(error.value)
    assert "\n" not in message and "while running" not in message
    assert "img05.png" in message
    assert _shards_left(out) == []
    # skip_corrupt: dropped, counted in the info file and Beam's metrics,
    # as the local engine does.
    beam = beam_engine.generate_pseudo_labels(
        local["teacher"], config, PP, out, num_shards=2, batch_size=4,
        skip_corrupt=True, progress=False)
    here = predict.generate_pseudo_labels(
        local["teacher"], config, PP, str(tmp_path / "local"), num_shards=2,
        batch_size=4, skip_corrupt=True, progress=False)
    assert beam["num_records"] == here["num_records"] == 11
    assert beam["skipped_corrupt"] == here["skipped_corrupt"] == 1
    assert beam["beam_counters"]["corrupt_images_skipped"] == 1


def test_missing_teacher_and_unwritable_output_fail_in_one_line(local,
                                                               tmp_path):
    out = tmp_path / "labels"
    with pytest.raises(FileNotFoundError, match="^teacher model .*nope"
                       r"\.keras' does not exist$"):
        beam_engine.generate_pseudo_labels(
            str(tmp_path / "nope.keras"), test_predict.source(20), PP,
            str(out), num_shards=2, progress=False)
    assert _shards_left(out) == []
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="is not writable"):
        beam_engine.generate_pseudo_labels(
            local["teacher"], test_predict.source(20), PP,
            str(blocker / "labels"), num_shards=2, progress=False)
    # A worker that cannot write its shard (the info folder is a file):
    # the pipeline fails in one line and no shard is left to read.
    out.mkdir(exist_ok=True)
    (out / "info").write_text("in the way")
    with pytest.raises(Exception) as error:
        beam_engine.generate_pseudo_labels(
            local["teacher"], test_predict.source(20), PP, str(out),
            num_shards=2, progress=False)
    assert "while running" not in str(error.value)
    assert _shards_left(out) == []


def test_missing_package_is_one_line(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "apache_beam", None)
    monkeypatch.delitem(sys.modules,
                        "noisy_student_tf.labeling.beam_engine")
    with pytest.raises(ImportError, match=r"noisy-student-tf\[beam\]"):
        importlib.import_module("noisy_student_tf.labeling.beam_engine")


def test_driver_picks_the_engine_from_the_config():
    from noisy_student_tf.experiment import stages

    config = ml_collections.ConfigDict(dict(labeling=dict(
        engine="beam", beam_options="--direct_num_workers=2")))
    label = stages.labeling_engine(config, "generate_pseudo_labels")
    assert label.func is beam_engine.generate_pseudo_labels
    assert label.keywords == {"beam_options": "--direct_num_workers=2"}
    assert stages.labeling_engine(config, "filter_and_balance").func is \
        beam_filter.filter_and_balance
    config.labeling.engine = "local"
    assert stages.labeling_engine(config, "filter_and_balance") is \
        filtering.filter_and_balance
    config.labeling.engine = "spark"
    with pytest.raises(ValueError, match="'local' or 'beam', got 'spark'"):
        stages.labeling_engine(config, "generate_pseudo_labels")
