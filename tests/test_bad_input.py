"""Bad input through the absl binaries: one `error: ...` line, nothing lost.

Each case runs a real `scripts/*.py` subprocess on a tiny single-stage
config written into tmp_path and checks: a non-zero exit, the last stderr
line is `error: <one line>` naming the culprit, no Python traceback, and
the workdir keeps what earlier runs finished (no partial files, no stage
marked done). TF's C++ log lines at import are tolerated.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.data import features
from tests import testing
from tests.data import records

PP_GRAY = 'decode(channels=1)|keep("image", "label")'
PP_RGB = 'decode|keep("image", "label")'
CONFIG_FILE = '''"""Single-stage config of a bad-input test (written by the test)."""
import json

from tests import testing

OVERRIDES = json.loads(r\'\'\'{overrides}\'\'\')


def get_config(arg=None):
    return testing.tiny_stage(**OVERRIDES)
'''


def tfrecord(pattern, **kwargs):
    return dict(kind="tfrecord", pattern=str(pattern), **kwargs)


def write_config(tmp_path, name="stage.py", **overrides):
    """A config file over `testing.tiny_stage(**overrides)`."""
    path = tmp_path / name
    path.write_text(CONFIG_FILE.format(overrides=json.dumps(overrides)))
    return path


def shard_config(tmp_path, shards, **overrides):
    """Stage config whose labeled and eval data are the given shards."""
    pattern = shards / "train-*"
    values = dict(data=dict(labeled=tfrecord(pattern, num_classes=10),
                            eval=tfrecord(pattern, num_classes=10)),
                  pp=dict(labeled=PP_GRAY, eval=PP_GRAY), total_steps=4,
                  warmup_steps=0, checkpoint_every_steps=2,
                  log_every_steps=2, eval_batch_size=16)
    values.update(overrides)
    return write_config(tmp_path, **values)


def train(config, workdir, *extra):
    return testing.run_script(["scripts/train.py", f"--config={config}",
                               f"--workdir={workdir}", "--no_progress",
                               *extra])


def error_line(proc, *fragments, status=1):
    """Asserts a clean one-line failure naming `fragments`; returns it."""
    assert proc.returncode == status, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = testing.last_line(proc.stderr)
    assert line.startswith("error: "), proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    print(f"\nERROR LINE: {line}")
    return line


def assert_no_partial_files(workdir):
    """No temporary, no stage marker, no model file after a failure."""
    names = [os.path.join(root, name)
             for root, dirs, files in os.walk(workdir)
             for name in dirs + files]
    assert not [n for n in names if ".tmp-" in n], names
    assert not io_utils.stage_done(str(workdir))
    assert not os.path.exists(os.path.join(workdir, "model.keras"))


@pytest.fixture
def shards(tmp_path):
    """Two clean shards of 24 random 32x32 RGB PNGs (labels 0..9)."""
    directory = tmp_path / "shards"
    records.write_labeled_shards(directory, [24, 24])
    return directory


def _rewrite(path, index, serialized):
    kept = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    kept[index] = serialized
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in kept:
            writer.write(record)


# === Data ===


def test_corrupt_image_bytes_name_file_record_and_id(tmp_path, shards):
    path = shards / "train-00001-of-00002"
    _rewrite(path, 5, features.labeled_example(b"\x89PNG\r\n\x1a\n broken",
                                               3))
    workdir = tmp_path / "run"
    line = error_line(train(shard_config(tmp_path, shards), workdir),
                      f"{path} record 5 (id {1 << 32 | 5}): corrupt image",
                      "skip_corrupt=True")
    assert "\n" not in line
    assert_no_partial_files(workdir)


def test_truncated_shard_is_named(tmp_path, shards):
    path = shards / "train-00000-of-00002"
    records.truncate(str(path))
    workdir = tmp_path / "run"
    error_line(train(shard_config(tmp_path, shards), workdir),
               f"{path} record 23: truncated TFRecord shard (23 records "
               "readable")
    assert_no_partial_files(workdir)


def test_label_out_of_range_is_named(tmp_path):
    directory = tmp_path / "shards"
    written = records.write_labeled_shards(directory, [24, 24],
                                           labels={(1, 7): 12})
    workdir = tmp_path / "run"
    error_line(train(shard_config(tmp_path, directory), workdir),
               f"{written[1][0]} record 7 (id {1 << 32 | 7}): label 12 "
               "outside [0, 10)")
    assert_no_partial_files(workdir)


def test_empty_shard_is_an_empty_dataset(tmp_path):
    directory = tmp_path / "shards"
    directory.mkdir()
    with tf.io.TFRecordWriter(str(directory / "train-00000-of-00001")):
        pass
    workdir = tmp_path / "run"
    error_line(train(shard_config(tmp_path, directory), workdir),
               "labeled data has 0 examples, fewer than one batch (16)")
    assert_no_partial_files(workdir)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    workdir = tmp_path / "run"
    error_line(train(shard_config(tmp_path, missing), workdir),
               f"No files match '{missing / 'train-*'}'")
    assert_no_partial_files(workdir)


# === Model vs data ===


def test_wrong_channels_for_the_model_say_what_each_side_has(tmp_path,
                                                            shards):
    # pp.labeled decodes RGB; the model takes 1-channel 32x32 images.
    config = shard_config(tmp_path, shards, pp=dict(labeled=PP_RGB,
                                                    eval=PP_GRAY))
    workdir = tmp_path / "run"
    error_line(train(config, workdir), "pp.labeled produces images of shape "
               "(None, None, 3), but model efficientnet_b0 expects "
               "(32, 32, 1)")
    assert_no_partial_files(workdir)


def test_online_teacher_with_another_class_count(tmp_path, shards):
    from noisy_student_tf import models
    from noisy_student_tf.training import checkpoints

    teacher = tmp_path / "teacher.keras"
    checkpoints.save_model_atomic(models.create_model(
        "efficientnet_b0", num_classes=5, input_shape=(32, 32, 1),
        **testing.TINY_MODEL["overrides"]), str(teacher))
    pattern = shards / "train-*"
    config = shard_config(
        tmp_path, shards, unlabel_ratio=1, teacher=dict(path=str(teacher)),
        data=dict(labeled=tfrecord(pattern, num_classes=10),
                  unlabeled=tfrecord(pattern),
                  eval=tfrecord(pattern, num_classes=10)),
        pp=dict(labeled=PP_GRAY, eval=PP_GRAY, teacher=PP_GRAY,
                unlabeled='decode(channels=1)|keep("image")'))
    workdir = tmp_path / "run"
    error_line(train(config, workdir), f"teacher {teacher} predicts 5 "
               "classes, the student 10")
    assert_no_partial_files(workdir)


def test_checkpoint_of_another_architecture_in_the_workdir(tmp_path,
                                                           shards):
    from noisy_student_tf.training import trainer

    workdir = tmp_path / "run"
    wider = testing.tiny_stage()
    wider.model.overrides.width_coefficient = 0.5
    trainer.Trainer(wider, str(workdir)).manager.save(0)
    before = sorted(os.listdir(workdir / "checkpoints"))
    line = error_line(train(shard_config(tmp_path, shards), workdir),
                      "checkpoint", "ckpt-0", "does not match this model")
    assert "another architecture" in line
    # The other run's checkpoint is left as it was.
    assert sorted(os.listdir(workdir / "checkpoints")) == before


def test_nan_loss_keeps_the_last_good_checkpoint(tmp_path, shards):
    workdir = tmp_path / "run"
    config = shard_config(tmp_path, shards, schedule="constant",
                          label_smoothing=0.0)
    good = train(config, workdir, "--config.total_steps=2")
    assert good.returncode == 0, good.stderr[-3000:]
    os.remove(workdir / "result.json")  # as if stopped after step 2
    proc = train(config, workdir, "--config.total_steps=12",
                 "--config.learning_rate=1e12")
    error_line(proc, "non-finite", str(workdir),
               f"Last good checkpoint: {workdir / 'checkpoints' / 'ckpt-2'}")
    assert not io_utils.stage_done(str(workdir))
    state = tf.train.get_checkpoint_state(str(workdir / "checkpoints"))
    assert state.model_checkpoint_path.endswith("ckpt-2")
    reader = tf.train.load_checkpoint(state.model_checkpoint_path)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


# === Config and workdir ===


def test_unknown_config_key_in_the_file(tmp_path, shards):
    config = shard_config(tmp_path, shards, learning_rat=0.1)
    workdir = tmp_path / "run"
    error_line(train(config, workdir),
               "unknown config key(s) ['learning_rat'] (did you mean "
               "'learning_rate'?) in the stage config of")
    assert_no_partial_files(workdir)


def test_unknown_config_key_as_a_flag(tmp_path, shards):
    workdir = tmp_path / "run"
    error_line(train(shard_config(tmp_path, shards), workdir,
                     "--config.learning_rat=0.1"),
               "bad flag or config: unknown config key 'learning_rat' (did "
               "you mean 'learning_rate'?)", status=2)
    assert not workdir.exists()


def test_unwritable_workdir(tmp_path, shards):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    workdir = locked / "run"
    if os.access(locked, os.W_OK):
        # Root writes through chmod; a path under a file is unwritable for
        # everybody.
        blocker = tmp_path / "a_file"
        blocker.write_text("not a directory")
        workdir = blocker / "run"
    error_line(train(shard_config(tmp_path, shards), workdir),
               f"workdir {str(workdir)!r} is not writable")
    assert not os.path.exists(workdir)


# === Serving ===


def test_garbage_bytes_to_the_serving_signature(tmp_path):
    import keras

    from noisy_student_tf import export
    from noisy_student_tf.training import checkpoints

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, name="logits")(
        keras.layers.GlobalAveragePooling2D()(inputs))
    path = checkpoints.save_model_atomic(keras.Model(inputs, outputs),
                                         str(tmp_path / "model.keras"))
    served = export.load_serving(export.export_saved_model(
        path, testing.PP, str(tmp_path / "export")))
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt image"):
        served.signatures["predict_bytes"](
            encoded_images=tf.constant([b"\x00garbage\xff" * 8]))
    # The module stays usable: a good image afterwards is served.
    good = tf.io.encode_png(np.zeros((28, 28, 1), np.uint8))
    out = served.signatures["predict_bytes"](encoded_images=good[None])
    assert out["probabilities"].shape == (1, 10)
