"""What a training run records while it runs: TensorBoard scalars,
`metrics.jsonl` (one JSON object per log window or evaluation) and the
progress bar, with the images/s of each log window.
"""

import json
import os
import sys
import time

import keras
import tensorflow as tf

HISTORY_FILE = "metrics.jsonl"


class RunLog:
    """The writers of one `Trainer.run`.

    Args:
      workdir: the stage directory (`tensorboard/`, `metrics.jsonl`).
      total_steps: the run's length (progress bar).
      start: the step the run starts at.
      progress: show the progress bar.
    """

    def __init__(self, workdir, total_steps, start, progress=True):
        self.history = os.path.join(workdir, HISTORY_FILE)
        self.writer = tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard"))
        self.bar = keras.utils.Progbar(
            total_steps, interval=0.5 if sys.stdout.isatty() else 30,
            unit_name="step", verbose=1 if progress else 0)
        self._window = (time.time(), start)

    def window(self, step, values, images_per_step):
        """Records one log window's metrics plus its images/s.

        Args:
          step: the optimizer step the window ends at.
          values: float metrics (loss, lr, ...); img_per_s is added.
          images_per_step: images one optimizer step trains on.
        """
        now = time.time()
        start, start_step = self._window
        values = dict(values, img_per_s=images_per_step * (
            step - start_step) / max(now - start, 1e-9))
        self._window = (now, step)
        self.record(step, values)
        self.bar.update(step, [(k, values[k]) for k in ("loss", "img_per_s")
                               if k in values])

    def record(self, step, values, prefix=None):
        """Writes `values` at `step`; TensorBoard tags `prefix/key` and
        history keys `prefix_key` when a prefix is given."""
        tags = {f"{prefix}/{k}" if prefix else k: v
                for k, v in values.items()}
        with self.writer.as_default(step=step):
            for key, value in tags.items():
                tf.summary.scalar(key, value)
        self.writer.flush()
        record = {f"{prefix}_{k}" if prefix else k: v
                  for k, v in values.items()}
        with tf.io.gfile.GFile(self.history, "a") as handle:
            handle.write(json.dumps({"step": step, **record}) + "\n")


def floats(metrics):
    """Metrics as Python floats (num_examples as int)."""
    return {k: float(v) if k != "num_examples" else int(v)
            for k, v in metrics.items()}
