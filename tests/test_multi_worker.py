"""Two worker processes on 127.0.0.1 train one model in sync.

`TF_CONFIG` lists both workers, so `strategy="auto"` picks
MultiWorkerMirroredStrategy. Both run `trainer.train` on the same workdir,
as on a shared filesystem: the chief (worker 0) writes checkpoints,
metrics and the stage result there; worker 1 takes part in every step and
save but writes into its own scratch directory (TF's multi-worker guide).
Both must end with the same weights.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tests import testing

WORKER = textwrap.dedent("""
    import hashlib
    import json
    import sys

    import numpy as np

    from noisy_student_tf.training import checkpoints
    from noisy_student_tf.training import trainer
    from tests import testing

    workdir, out = sys.argv[1], sys.argv[2]
    config = testing.tiny_stage(total_steps=4, log_every_steps=2,
                                checkpoint_every_steps=2, strategy="auto")
    config.data.eval.limit = 64
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


def test_two_workers_train_the_same_weights_and_only_the_chief_writes(
        tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workdir = tmp_path / "shared"
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=testing.REPO,
                   TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
                       {"cluster": cluster,
                        "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(workdir),
             str(tmp_path / f"worker{index}.json")], cwd=testing.REPO,
            env=env, stdout=log, stderr=subprocess.STDOUT))
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
    chief, other = [json.loads((tmp_path / f"worker{i}.json").read_text())
                    for i in range(2)]

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
