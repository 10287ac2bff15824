"""Pseudo-labeling: the clean EMA teacher predicts the unlabeled source.

The teacher runs in inference mode (no dropout, no stochastic depth) on
the eval view at its own resolution (`pp.teacher`, e.g. a centre crop),
exactly as noisystudent's `predict_label.py`. Output per shard k of K:
`predictions-k-of-K` records with `probabilities`, `classes` and `id`
(features.prediction_examples) -- no image: the filter stage joins the
predictions back to the source by id. Shards are independent, so many
hosts can label in parallel (`shard_index`), and complete shards are
skipped on rerun.
"""

import concurrent.futures
import os
import time

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.data import diagnose
from noisy_student_tf.data import features
from noisy_student_tf.data import preprocess
from noisy_student_tf.data import sources
from noisy_student_tf.labeling import tfrecord_io
from noisy_student_tf.training import checkpoints


# Concurrent images per batch in the batched view (measured on 2 cores:
# 10 beat 2, 4 and 64).
_VIEW_PARALLEL_IMAGES = 10


def _labeling_dataset(source, pp_string, batch_size, skip_corrupt):
    """Preprocessed teacher view that keeps each record's id and label."""
    pp_fn = preprocess.get_preprocess_fn(pp_string)

    def view(record):
        out = pp_fn(dict(record))
        return {"image": out["image"], "id": record["id"],
                "label": record["label"]}

    if skip_corrupt:
        # One image at a time, so ignore_errors drops single images.
        ds = source.map(view, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.ignore_errors(log_warning=True).batch(batch_size)
    else:
        # A batch of records at a time, each image preprocessed inside one
        # tf.map_fn: tf.data's per-element cost is paid per batch, which
        # cut the input's CPU time per image by about a quarter
        # (scripts/benchmark.py --sections=pseudo_label; the input shares
        # the cores with the teacher).
        spec = source.map(view).element_spec

        def view_batch(records):
            return tf.map_fn(view, records, fn_output_signature=spec,
                             parallel_iterations=_VIEW_PARALLEL_IMAGES)

        ds = source.batch(batch_size).map(
            view_batch, num_parallel_calls=tf.data.AUTOTUNE)
    # Fusing the source's per-record map (file reads; TFRecord kinds parse
    # in batches before it) with the next one saves input CPU time.
    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def named_errors(batches, source_config, pp_string):
    """Iterates `batches`; input failures become one line naming the file."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError,
                tf.errors.DataLossError) as error:
            if not diagnose.is_input_error(error):
                raise
            raise diagnose.explain_data_error(
                error, source_config, pp_string) from error
        yield batch


class _ShardInputs:
    """Opens each shard's input pipeline one shard ahead, in a thread.

    Building a shard's pipeline (source, traced maps, iterator) and its
    first batches took ~1 s per shard on 2 CPU cores, all of it while the
    teacher waited. Here shard k+1's pipeline is built and started while
    shard k is labeled, and the first one while the teacher loads and
    traces. Only reading runs ahead: shards are still written and committed
    one by one, in order, so the crash guarantees are unchanged.

    Iterating yields `(index, iterator over batches, expected count or
    None)`; an error opening a shard is raised when that shard is reached.
    """

    def __init__(self, indices, open_fn):
        self._indices = list(indices)
        self._open = open_fn
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="labeling-input")
        self._next = (self._pool.submit(open_fn, self._indices[0])
                      if self._indices else None)

    def __iter__(self):
        for position, index in enumerate(self._indices):
            opened = self._next.result()
            if position + 1 < len(self._indices):
                self._next = self._pool.submit(
                    self._open, self._indices[position + 1])
            yield (index,) + opened

    def close(self):
        """Waits for a shard still opening (it only reads) and stops."""
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_shard_input(source_config, pp_string, index, count, batch_size,
                     skip_corrupt=False):
    """Starts the labeling input of shard `index` of `count`.

    The teacher's view of each record (`pp_string`), batched, with the
    record's id and label; nothing runs the teacher. Also what
    `scripts/benchmark.py` times as the input's own cost.

    Returns:
      (iterator over batches {"image", "id", "label"}, the shard's record
      count before corrupt records were dropped, or None when unknown and
      not needed).
    """
    # Records parse a batch at a time (one parse_example op instead of a
    # parse and a map call per record); images still decode one by one in
    # the pp map, so skip_corrupt drops single images.
    source = sources.make_source(source_config, shard=(index, count),
                                 parse_batch_size=batch_size)
    # An image pile drops undecodable files itself; its listing says how
    # many there were. Otherwise skip_corrupt's count of dropped records
    # needs the total.
    expected = sources.listed_count(source_config, (index, count))
    if expected is None and skip_corrupt:
        expected = int(source.reduce(np.int64(0), lambda n, _: n + 1))
    dataset = _labeling_dataset(source, pp_string, batch_size, skip_corrupt)
    # tf.data starts reading on the first request (measured: asking for
    # it ahead, on the read-ahead thread, made labeling slower).
    return iter(dataset), expected


def _shard_opener(source_config, pp_string, count, batch_size,
                  skip_corrupt):
    """`index -> open_shard_input(...)`, for `_ShardInputs`."""
    return lambda index: open_shard_input(source_config, pp_string, index,
                                          count, batch_size, skip_corrupt)


def make_predict_fn(model):
    """The teacher's batched labeling step, traced once per run.

    Probabilities are the plain softmax: like the reference
    (noisystudent `predict_label.py`), labeling stores untempered
    probabilities, so the filter's confidence thresholds see the teacher's
    own confidence; the student's `temperature` tempers them once, when it
    trains (`losses.targets_from_probabilities`).

    Returns a function `(images, ids) -> {"serialized", "classes",
    "confidence"}`: serialized prediction records (built in the graph,
    `features.prediction_examples`), argmax classes and top-1
    probabilities. It is traced once with a free batch dimension and reused
    across shards and for the last partial batch; tracing B0 costs about as
    long as labeling a few thousand 32x32 images on 2 CPU cores.
    """
    @tf.function
    def step(images, ids):
        logits = tf.cast(model(images, training=False), tf.float32)
        probabilities = tf.nn.softmax(logits)
        return {"serialized": features.prediction_examples(probabilities,
                                                           ids),
                "classes": tf.argmax(probabilities, -1),
                "confidence": tf.reduce_max(probabilities, -1)}

    def predict(images, ids):
        return step.get_concrete_function(
            tf.TensorSpec([None] + list(images.shape[1:]), images.dtype),
            tf.TensorSpec([None], tf.int64))(images, ids)

    return predict


def _write_shard(predict, batches, expected, where, output_dir, index,
                 count, has_true_labels):
    """Predicts one shard's batches and commits its file and info.

    Args:
      predict: from `make_predict_fn`.
      batches: the shard's input batches (an iterator).
      expected: its record count before corrupt records were dropped, or
        None without skip_corrupt.
      where: (source_config, pp_string), to name bad input.
      output_dir, index, count: the shard's place.
      has_true_labels: report accuracy against the source's labels.

    Returns:
      The committed info dict (tfrecord_io.read_info).
    """
    source_config, pp_string = where
    correct = 0
    confidence_sum = 0.0
    with tfrecord_io.AtomicShardWriter(
            output_dir, tfrecord_io.PREDICTIONS, index, count) as writer:
        for batch in named_errors(batches, source_config, pp_string):
            out = predict(batch["image"], batch["id"])
            for serialized in out["serialized"].numpy():
                writer.write(serialized)
            correct += int((out["classes"].numpy()
                            == batch["label"].numpy()).sum())
            confidence_sum += float(out["confidence"].numpy().sum())
        num = writer.count
        if num == 0:
            raise sources.DataError(
                f"unlabeled shard {index} of {count} is empty: "
                f"{source_config.to_dict()}")
        info = {"mean_confidence": confidence_sum / num,
                "skipped_corrupt": (expected - num) if expected else 0}
        if has_true_labels:
            info["accuracy_vs_true_labels"] = correct / num
        writer.commit(info)
    return tfrecord_io.read_info(output_dir, tfrecord_io.PREDICTIONS, index,
                                 count)


def label_shards(model, source_config, pp_string, output_dir, indices,
                 count, *, batch_size=256, skip_corrupt=False,
                 has_true_labels=False, predict_fn=None):
    """Predicts shards `indices` of `count` and commits each in order.

    The next shard's input is opened while the current one is labeled
    (`_ShardInputs`); each shard is committed before the next is written.

    Args:
      model: the teacher (a Keras model); unused when `predict_fn` is given.
      source_config: the unlabeled source config (sources.make_source).
      pp_string: the teacher's clean eval preprocessing.
      output_dir: where prediction shards and their info files go.
      indices: the shards to label, in order.
      count: K, the number of shards.
      batch_size: inference batch size.
      skip_corrupt: drop undecodable images (counted in the info file).
      has_true_labels: the source's labels are real (report accuracy).
      predict_fn: from `make_predict_fn(model)`, to share one traced step
        across calls; by default one is made here.

    Returns:
      The committed info dicts, one per shard in `indices`.

    Raises:
      sources.DataError: bad input (named file and record) or an empty
        shard.
    """
    predict = predict_fn or make_predict_fn(model)
    opener = _shard_opener(source_config, pp_string, count, batch_size,
                           skip_corrupt)
    with _ShardInputs(indices, opener) as inputs:
        return [_write_shard(predict, batches, expected,
                             (source_config, pp_string), output_dir, index,
                             count, has_true_labels)
                for index, batches, expected in inputs]


def label_shard(model, source_config, pp_string, output_dir, index, count,
                **kwargs):
    """Predicts shard `index` of `count` and commits it; returns its info.

    One shard of `label_shards` (same keyword arguments).
    """
    return label_shards(model, source_config, pp_string, output_dir,
                        [index], count, **kwargs)[0]


def generate_pseudo_labels(teacher_path, source_config, pp_string,
                           output_dir, *, num_shards=1, shard_indices=None,
                           batch_size=256, skip_corrupt=False,
                           has_true_labels=False, progress=True):
    """Labels every (or the given) shard with the teacher at `teacher_path`.

    Args:
      teacher_path: `.keras` model (EMA weights) written by a stage.
      source_config: the unlabeled source config (see sources.make_source).
      pp_string: the teacher's clean eval preprocessing.
      output_dir: where prediction shards and their info files go.
      num_shards: K; shard k holds source shard (k, K).
      shard_indices: which shards this host labels (default all).
      batch_size: inference batch size.
      skip_corrupt: drop undecodable images (counted in the info file).
      has_true_labels: the source's labels are real (report accuracy).
      progress: print a progress bar over shards.

    Returns:
      Summary dict: records, shards labeled now / skipped, seconds.
    """
    io_utils.ensure_writable_dir(output_dir)
    indices = list(range(num_shards)) if shard_indices is None \
        else list(shard_indices)
    todo = [i for i in indices if not tfrecord_io.shard_complete(
        output_dir, tfrecord_io.PREDICTIONS, i, num_shards)]
    # Only the temporaries of our own shards: other hosts may be writing
    # theirs into this directory right now.
    io_utils.remove_stale_temporaries(output_dir, prefixes=[
        tfrecord_io.shard_name(tfrecord_io.PREDICTIONS, i, num_shards)
        for i in todo])
    start = time.time()
    bar = keras.utils.Progbar(len(indices), unit_name="shard",
                              verbose=1 if progress else 0)
    bar.update(len(indices) - len(todo))
    opener = _shard_opener(source_config, pp_string, num_shards, batch_size,
                           skip_corrupt)
    # The first shard's input opens while the teacher loads.
    with _ShardInputs(todo, opener) as inputs:
        predict = make_predict_fn(checkpoints.load_model(teacher_path)) \
            if todo else None
        for done, (index, batches, expected) in enumerate(
                inputs, start=len(indices) - len(todo) + 1):
            _write_shard(predict, batches, expected,
                         (source_config, pp_string), output_dir, index,
                         num_shards, has_true_labels)
            bar.update(done)
    return summarize_shards(output_dir, num_shards, has_true_labels,
                            indices, len(todo), time.time() - start)


def summarize_shards(output_dir, num_shards, has_true_labels=False,
                     indices=None, labeled=0, seconds=0.0):
    """generate_pseudo_labels' summary from the shards' info files (of
    `indices`, default all): what a multi-host run's last host records."""
    if indices is None:
        indices = range(num_shards)
    indices = list(indices)
    infos = [tfrecord_io.read_info(output_dir, tfrecord_io.PREDICTIONS, i,
                                   num_shards) for i in indices]
    records = sum(info["num_records"] for info in infos)
    summary = {
        "num_records": records,
        "shards_labeled": labeled,
        "shards_skipped": len(indices) - labeled,
        "seconds": seconds,
        "skipped_corrupt": sum(i.get("skipped_corrupt", 0) for i in infos),
        "mean_confidence": sum(i["mean_confidence"] * i["num_records"]
                               for i in infos) / max(records, 1),
    }
    if has_true_labels:
        summary["accuracy_vs_true_labels"] = sum(
            i["accuracy_vs_true_labels"] * i["num_records"]
            for i in infos) / max(records, 1)
    return summary


def prediction_dataset(output_dir, index, count, num_classes):
    """Parsed records of one prediction shard, in order."""
    path = os.path.join(output_dir, tfrecord_io.shard_name(
        tfrecord_io.PREDICTIONS, index, count))
    return tf.data.TFRecordDataset(path).map(
        lambda s: features.parse_prediction(s, num_classes))

