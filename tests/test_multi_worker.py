"""Two worker processes on 127.0.0.1 train one model in sync.

`TF_CONFIG` lists both workers, so `strategy="auto"` picks
MultiWorkerMirroredStrategy. Both run `trainer.train` on the same workdir,
as on a shared filesystem: the chief (worker 0) writes checkpoints,
metrics and the stage result there; worker 1 takes part in every step and
save but writes into its own scratch directory (TF's multi-worker guide).
Both must end with the same weights, and with the weights and losses of
one process training alone: the data are copies of one image, so each
worker's share of a batch is the whole batch in small, and a gradient or
loss summed instead of averaged over workers would double them.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import features
from tests import testing

WORKER = textwrap.dedent("""
    import hashlib
    import json
    import sys

    import numpy as np

    from noisy_student_tf.training import checkpoints
    from noisy_student_tf.training import trainer
    from tests import testing

    workdir, out, records = sys.argv[1:4]
    config = testing.tiny_stage(total_steps=4, log_every_steps=2,
                                checkpoint_every_steps=2, strategy="auto")
    config.data.eval.limit = 64
    # No randomness in the forward pass (dropout, stochastic depth, flips),
    # so one process and two workers compute the same function; small-image
    # strides keep 4x4 features for the last batch norm, whose statistics
    # would otherwise be over identical values only.
    config.data.labeled = dict(kind="tfrecord", pattern=records)
    config.pp.labeled = testing.PP + '|keep("image", "label")'
    config.model.overrides.update(dropout_rate=0.0,
                                  stochastic_depth_rate=0.0,
                                  small_image=True)
    result = trainer.train(config, workdir, progress=False)
    model = checkpoints.load_model(result["model_path"])
    weights = [np.asarray(w) for w in model.get_weights()]
    with open(out, "w") as handle:
        json.dump({
            "steps": result["steps"], "top1": result["eval"]["top1"],
            "model_path": result["model_path"],
            "sha256": hashlib.sha256(b"".join(
                w.tobytes() for w in weights)).hexdigest(),
            "logits_kernel": np.asarray(
                model.get_layer("logits").kernel).tolist(),
        }, handle)
""")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _write_copies_of_one_image(path, count=64):
    image = np.random.default_rng(0).integers(0, 256, (28, 28, 1), np.uint8)
    record = features.labeled_example(tf.io.encode_png(image).numpy(), 3)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(count):
            writer.write(record)
    return str(path)


def test_two_workers_train_like_one_process_and_only_the_chief_writes(
        tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    records = _write_copies_of_one_image(tmp_path / "one_image.tfrecord")
    workdir = tmp_path / "shared"
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    # Workers 0 and 1 of the cluster, and (index 2) one process alone.
    for index in range(3):
        env = dict(os.environ, PYTHONPATH=testing.REPO,
                   TF_CPP_MIN_LOG_LEVEL="3")
        if index < 2:
            env["TF_CONFIG"] = json.dumps(
                {"cluster": cluster,
                 "task": {"type": "worker", "index": index}})
        else:
            env.pop("TF_CONFIG", None)
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, str(script),
             str(workdir if index < 2 else tmp_path / "alone"),
             str(tmp_path / f"worker{index}.json"), records],
            cwd=testing.REPO, env=env, stdout=log,
            stderr=subprocess.STDOUT))
    try:
        for proc in procs:
            proc.wait(timeout=400)
    finally:
        for proc in procs:  # one dead worker leaves the other waiting
            proc.kill()
            proc.wait()
    for index, proc in enumerate(procs):
        log = (tmp_path / f"worker{index}.log").read_text()
        assert proc.returncode == 0, log[-3000:]
    chief, other, alone = [
        json.loads((tmp_path / f"worker{i}.json").read_text())
        for i in range(3)]

    # Same weights on both workers (all of them, and the head exactly).
    assert chief["sha256"] == other["sha256"]
    np.testing.assert_array_equal(chief["logits_kernel"],
                                  other["logits_kernel"])
    assert chief["steps"] == other["steps"] == 4
    assert chief["top1"] == other["top1"]

    # Only the chief wrote into the shared workdir.
    assert chief["model_path"] == str(workdir / "model.keras")
    assert not other["model_path"].startswith(str(workdir))
    result = json.loads((workdir / "result.json").read_text())
    assert result["model_path"] == chief["model_path"]
    history = [json.loads(line) for line in
               (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if "loss" in r] == [2, 4]
    assert sorted(os.listdir(workdir / "checkpoints")) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
        "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    assert len(os.listdir(workdir / "tensorboard")) == 1
    # The chief's last checkpoint restores: its EMA of the head is the
    # model file's head on both workers.
    reader = tf.train.load_checkpoint(str(workdir / "checkpoints" / "ckpt-4"))
    shape = np.shape(chief["logits_kernel"])
    ema_heads = [name for name, s in reader.get_variable_to_shape_map()
                 .items() if name.startswith("ema/") and tuple(s) == shape]
    assert any(np.array_equal(reader.get_tensor(name),
                              chief["logits_kernel"])
               for name in ema_heads), ema_heads

    # Two workers train as one process does on the same batches.
    alone_history = [json.loads(line) for line in (
        tmp_path / "alone" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(
        [r["loss"] for r in history if "loss" in r],
        [r["loss"] for r in alone_history if "loss" in r], rtol=1e-4)
    np.testing.assert_allclose(chief["logits_kernel"],
                               alone["logits_kernel"], rtol=1e-3,
                               atol=1e-5)
    assert alone["steps"] == 4
