"""Sharded TFRecord files written atomically, and their names.

Shard k of K is written to a temporary name and renamed when complete; a
small JSON "info" file (record count and stats) is written last, so a
shard counts as complete exactly when its info file exists. A killed run
leaves at most a temporary file, which the rerun deletes and redoes.
"""

import os
import uuid

import tensorflow as tf

from noisy_student_tf import io_utils

PREDICTIONS = "predictions"
FILTERED = "train"


def shard_name(prefix, index, count):
    """`{prefix}-%05d-of-%05d` (tf-models `tfrecord_lib` convention)."""
    return f"{prefix}-{index:05d}-of-{count:05d}"


def info_path(directory, prefix, index, count):
    return os.path.join(directory, "info",
                        shard_name(prefix, index, count) + ".json")


def shard_complete(directory, prefix, index, count):
    data = os.path.join(directory, shard_name(prefix, index, count))
    return (tf.io.gfile.exists(info_path(directory, prefix, index, count))
            and tf.io.gfile.exists(data))


def read_info(directory, prefix, index, count):
    return io_utils.read_json(info_path(directory, prefix, index, count))


class AtomicShardWriter:
    """Writes one shard; `commit(info)` renames it into place.

    Use as a context manager: leaving the block without `commit` (an
    exception) deletes the temporary file.
    """

    def __init__(self, directory, prefix, index, count):
        self.directory = directory
        self.final = os.path.join(directory, shard_name(prefix, index, count))
        self.info = info_path(directory, prefix, index, count)
        self.tmp = f"{self.final}.tmp-{uuid.uuid4().hex[:8]}"
        tf.io.gfile.makedirs(os.path.dirname(self.info))
        self._writer = tf.io.TFRecordWriter(self.tmp)
        self.count = 0
        self._committed = False

    def write(self, serialized):
        self._writer.write(serialized)
        self.count += 1

    def commit(self, info):
        self._writer.close()
        tf.io.gfile.rename(self.tmp, self.final, overwrite=True)
        io_utils.atomic_write_json(self.info, {"num_records": self.count,
                                               **info})
        self._committed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._committed:
            self._writer.close()
            if tf.io.gfile.exists(self.tmp):
                tf.io.gfile.remove(self.tmp)
        return False
