"""Pseudo-labeling as an Apache Beam pipeline (`labeling.engine="beam"`).

The same job as `predict.generate_pseudo_labels`, spread by a Beam runner
(in-process locally, or Dataflow / Flink / Spark) instead of by hand over
hosts, and writing exactly the same files: `predictions-k-of-K` shards
with the same records in the same order, their info files, the same
summary. Later stages cannot tell the engines apart.

    shard indices k < K  -> Reshuffle (spread shards over workers)
    -> ReadShard: the local engine's shard input
       (`predict.open_shard_input`: the source's shard (k, K) through the
       teacher's eval pp in tf.data), as batches tagged with each record's
       position in the shard and its id; corrupt images counted
    -> RunInference(TeacherModelHandler): the `.keras` EMA teacher, the
       same traced step as the local engine (`predict.make_predict_fn`)
    -> CoGroupByKey(shard) with the shard's read counts
    -> WriteShard: records in source order, written atomically
       (`tfrecord_io.AtomicShardWriter`: a shard exists only complete)

A source shard is read by one worker, as by one host of the hand-sharded
path; every new source kind of `sources.make_source` works unchanged.
The grouped values are prediction records only (no images): a worker
holds one shard's records, about `records x (4 x classes + 40)` bytes.
Runners may retry a shard or run it twice at once: every attempt writes
its own temporary file and renames it into place, so the shard is whole
whichever attempt finishes last.
"""

import re
import shlex
import time

import ml_collections
import numpy as np
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.data import sources
from noisy_student_tf.labeling import predict
from noisy_student_tf.labeling import tfrecord_io
from noisy_student_tf.training import checkpoints

INSTALL_HINT = ("labeling.engine='beam' needs Apache Beam: "
                "pip install 'noisy-student-tf[beam]'")
try:
    import apache_beam as beam
    from apache_beam.ml.inference import base as inference
except ImportError as _error:  # one line instead of a traceback
    raise ImportError(INSTALL_HINT) from _error

METRICS = "noisy_student"
# In-process runner that needs nothing downloaded. Beam's `DirectRunner`
# first tries Prism, whose binary is fetched from GitHub on first use.
DEFAULT_RUNNER = "--runner=FnApiRunner"
_BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]")


def pipeline_options(beam_options):
    """`PipelineOptions` from a command-line style string.

    Args:
      beam_options: e.g. "--runner=DirectRunner --direct_num_workers=2";
        without `--runner`, Beam's in-process FnApiRunner.

    Returns:
      apache_beam PipelineOptions.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    argv = shlex.split(beam_options or "")
    if not any(arg.startswith("--runner") for arg in argv):
        argv.insert(0, DEFAULT_RUNNER)
    return PipelineOptions(argv)


def run_pipeline(build, beam_options):
    """Builds and runs a pipeline; returns its counters {name: value}.

    Beam re-raises a worker's exception with "[while running 'Step']"
    appended; that suffix is dropped so errors stay one clear line.
    """
    pipeline = beam.Pipeline(options=pipeline_options(beam_options))
    build(pipeline)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as error:
        message = _BEAM_SUFFIX.sub("", str(error))
        if message == str(error):
            raise
        try:
            clean = type(error)(message)
        except Exception:  # e.g. tf.errors.OpError takes (node, op, msg)
            clean = RuntimeError(f"{type(error).__name__}: {message}")
        raise clean from error
    from apache_beam.metrics.metric import MetricsFilter

    query = result.metrics().query(MetricsFilter().with_namespace(METRICS))
    counters = {}
    for counter in query["counters"]:
        name = counter.key.metric.name
        counters[name] = counters.get(name, 0) + int(counter.committed or 0)
    return counters


class ReadShard(beam.DoFn):
    """Source shard k of K -> preprocessed batches (+ a "counts" output)."""

    def __init__(self, source_config, pp_string, count, batch_size,
                 skip_corrupt):
        self._source = source_config
        self._pp = pp_string
        self._count = count
        self._batch_size = batch_size
        self._skip_corrupt = skip_corrupt
        self._read = beam.metrics.Metrics.counter(METRICS, "images_read")
        self._corrupt = beam.metrics.Metrics.counter(
            METRICS, "corrupt_images_skipped")

    def process(self, index):
        config = ml_collections.ConfigDict(self._source)
        # The local engine's input (batched parsing, the pile's listed
        # count, skip_corrupt's total) and its named input errors.
        batches, expected = predict.open_shard_input(
            config, self._pp, index, self._count, self._batch_size,
            self._skip_corrupt)
        read = 0
        for batch in predict.named_errors(batches, config, self._pp):
            size = len(batch["id"])
            # The order within the shard, restored when writing it.
            yield dict({key: value.numpy() for key, value in batch.items()},
                       shard=index, position=np.arange(read, read + size))
            read += size
        skipped = expected - read if expected else 0
        self._read.inc(read)
        self._corrupt.inc(skipped)
        yield beam.pvalue.TaggedOutput("counts", (index, skipped))


class TeacherModelHandler(inference.ModelHandler):
    """RunInference handler for our `.keras` teacher on ready batches.

    Elements are already batches (ReadShard's tf.data batches of
    `labeling.batch_size`), so Beam's own batching is set to one element.
    The step is the local engine's (`predict.make_predict_fn`): the same
    softmax and the same serialized prediction records.
    """

    def __init__(self, teacher_path):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self._path = teacher_path

    def load_model(self):
        return predict.make_predict_fn(checkpoints.load_model(self._path))

    def run_inference(self, batch, model, inference_args=None):
        results = []
        for element in batch:
            out = model(tf.constant(element["image"]),
                        tf.constant(element["id"], tf.int64))
            kept = {k: v for k, v in element.items() if k != "image"}
            results.append(inference.PredictionResult(
                kept, {key: out[key].numpy() for key in
                       ("serialized", "classes", "confidence")}))
        return results

    def get_num_bytes(self, batch):
        return sum(element["image"].nbytes for element in batch)


def _keyed(result):
    example, out = result.example, result.inference
    return example["shard"], dict(out, position=example["position"],
                                  label=example["label"])


class WriteShard(beam.DoFn):
    """(shard, its predictions and counts) -> committed prediction shard."""

    def __init__(self, output_dir, count, has_true_labels, progress):
        self._dir = output_dir
        self._count = count
        self._has_true_labels = has_true_labels
        self._progress = progress

    def process(self, keyed):
        index, grouped = keyed
        parts = list(grouped["predictions"])
        skipped = sum(grouped["counts"])
        if not parts:
            raise sources.DataError(
                f"unlabeled shard {index} of {self._count} is empty")
        columns = {key: np.concatenate([p[key] for p in parts])
                   for key in parts[0]}
        order = np.argsort(columns["position"], kind="stable")
        with tfrecord_io.AtomicShardWriter(
                self._dir, tfrecord_io.PREDICTIONS, index,
                self._count) as writer:
            for serialized in columns["serialized"][order]:
                writer.write(serialized)
            num = writer.count
            info = {"mean_confidence":
                    float(columns["confidence"].astype(np.float64).sum())
                    / num,
                    "skipped_corrupt": int(skipped)}
            if self._has_true_labels:
                info["accuracy_vs_true_labels"] = float(
                    (columns["classes"] == columns["label"]).sum()) / num
            writer.commit(info)
        if self._progress:
            name = tfrecord_io.shard_name(tfrecord_io.PREDICTIONS, index,
                                          self._count)
            print(f"[noisy-student] beam: {name} written ({num} records)",
                  flush=True)
        yield index


def build_labeling(pipeline, todo, teacher_path, source_config, pp_string,
                   output_dir, num_shards, *, batch_size, skip_corrupt,
                   has_true_labels, progress):
    """Adds the labeling transforms for shards `todo` to `pipeline`."""
    read = (pipeline
            | "Shards" >> beam.Create(todo)
            | "Spread" >> beam.Reshuffle()
            | "ReadShard" >> beam.ParDo(ReadShard(
                source_config.to_dict(), pp_string, num_shards, batch_size,
                skip_corrupt)).with_outputs("counts", main="batches"))
    predictions = (read.batches
                   | "RunInference" >> inference.RunInference(
                       TeacherModelHandler(teacher_path))
                   | "KeyByShard" >> beam.Map(_keyed))
    _ = ({"predictions": predictions, "counts": read.counts}
         | "GroupByShard" >> beam.CoGroupByKey()
         | "WriteShard" >> beam.ParDo(WriteShard(
             output_dir, num_shards, has_true_labels, progress)))


def generate_pseudo_labels(teacher_path, source_config, pp_string,
                           output_dir, *, num_shards=1, shard_indices=None,
                           batch_size=256, skip_corrupt=False,
                           has_true_labels=False, progress=True,
                           beam_options=""):
    """`predict.generate_pseudo_labels` as a Beam pipeline.

    Args:
      beam_options: Beam pipeline options as a command-line string.
      Other args: as `predict.generate_pseudo_labels`.

    Returns:
      The local engine's summary dict, plus "engine" and Beam's counters.

    Raises:
      FileNotFoundError: no teacher at `teacher_path`.
      sources.DataError: bad input, one line naming the file or record.
    """
    io_utils.ensure_writable_dir(output_dir)
    indices = list(range(num_shards)) if shard_indices is None \
        else list(shard_indices)
    todo = [i for i in indices if not tfrecord_io.shard_complete(
        output_dir, tfrecord_io.PREDICTIONS, i, num_shards)]
    io_utils.remove_stale_temporaries(output_dir, prefixes=[
        tfrecord_io.shard_name(tfrecord_io.PREDICTIONS, i, num_shards)
        for i in todo])
    start = time.time()
    counters = {}
    if todo:
        # Checked here, before workers start, to fail in one line.
        if not tf.io.gfile.exists(teacher_path):
            raise FileNotFoundError(
                f"teacher model {teacher_path!r} does not exist")
        counters = run_pipeline(lambda p: build_labeling(
            p, todo, teacher_path, source_config, pp_string, output_dir,
            num_shards, batch_size=batch_size, skip_corrupt=skip_corrupt,
            has_true_labels=has_true_labels, progress=progress),
            beam_options)
    # Every shard asked for is complete now: the local engine only reads
    # their info files, so both engines report the same summary.
    summary = predict.generate_pseudo_labels(
        teacher_path, source_config, pp_string, output_dir,
        num_shards=num_shards, shard_indices=indices,
        has_true_labels=has_true_labels, progress=False)
    summary.update(shards_labeled=len(todo),
                   shards_skipped=len(indices) - len(todo),
                   seconds=time.time() - start, engine="beam",
                   beam_counters=counters)
    return summary
