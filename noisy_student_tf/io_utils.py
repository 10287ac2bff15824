"""Crash-safe file writing and stage markers.

Everything a stage produces is written under a temporary name and renamed
when complete (rename is atomic on POSIX and on GCS-backed gfile it is a
copy+delete of a complete object), so a killed run never leaves a
half-written file under a final name.
"""

import io
import json
import os
import subprocess
import uuid

import tensorflow as tf

DONE_FILE = "result.json"


def atomic_write_bytes(path, data):
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(tmp, "wb") as handle:
        handle.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def atomic_write_json(path, obj):
    atomic_write_bytes(
        path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(path):
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)


def ensure_writable_dir(path):
    """Creates `path` and proves it writable, or raises a clear error."""
    try:
        tf.io.gfile.makedirs(path)
        probe = os.path.join(path, f".write-probe-{uuid.uuid4().hex[:8]}")
        with tf.io.gfile.GFile(probe, "w") as handle:
            handle.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as error:
        raise PermissionError(
            f"workdir {path!r} is not writable: {error}") from error
    return path


def stage_done(stage_dir):
    """True when a stage finished (its result file exists)."""
    return tf.io.gfile.exists(os.path.join(stage_dir, DONE_FILE))


def read_stage_result(stage_dir):
    return read_json(os.path.join(stage_dir, DONE_FILE))


def mark_stage_done(stage_dir, result):
    tf.io.gfile.makedirs(stage_dir)
    atomic_write_json(os.path.join(stage_dir, DONE_FILE), result)


def remove_stale_temporaries(directory, recursive=False, prefixes=None):
    """Deletes `*.tmp-*` files left by a killed writer.

    Only call it where no other process may be writing (a stage's own
    directory, or a sharded stage once every shard is complete), or pass
    `prefixes`: then only temporaries of those files (e.g. the shards this
    host is about to write) go.
    """
    if not tf.io.gfile.isdir(directory):
        return 0
    stale = [f.rstrip("/") for f in tf.io.gfile.listdir(directory)
             if ".tmp-" in f and (prefixes is None or any(
                 f.startswith(f"{prefix}.tmp-") for prefix in prefixes))]
    for name in stale:
        path = os.path.join(directory, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
    removed = len(stale)
    if recursive:
        for name in tf.io.gfile.listdir(directory):
            path = os.path.join(directory, name.rstrip("/"))
            if tf.io.gfile.isdir(path):
                removed += remove_stale_temporaries(path, True, prefixes)
    return removed


def atomic_savefig(fig, path, **kwargs):
    """`fig.savefig` into memory, then `atomic_write_bytes` (so a killed
    run never leaves half a PNG, and gs:// paths work)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png",
                **kwargs)
    atomic_write_bytes(path, buffer.getvalue())


def source_commit():
    """The git commit of this package's checkout (None when not one), so a
    results file says which code wrote it."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
