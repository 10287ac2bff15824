"""Filtering and class balancing as an Apache Beam pipeline.

`labeling.engine="beam"` runs `filtering.filter_and_balance` (noisystudent
`filter_unlabel.py` semantics) on a Beam runner and writes the same
files: the same `train-k-of-K` shards (same records, same order), the
per-shard histogram files, thresholds, stats and plots.

    all shards   -> Reshuffle -> per-shard confidence histogram
                 -> CombineGlobally(sum)          (filter_unlabel.py pass 1)
                 -> thresholds (filtering.select_thresholds), a side input
    shards to do -> Reshuffle -> join images to predictions, keep and
                    duplicate, write atomically   (filter_unlabel.py pass 2)

Pass 2 needs no shuffle of images: a worker joins one source shard to its
prediction shard, as one host of the hand-sharded path does. A record's
keep / duplicate coin is a hash of (seed, record id)
(`filtering.record_uniform`), so the records kept do not depend on the
runner, the number of workers or the order shards are processed in.
"""

import os

import ml_collections
import numpy as np

from noisy_student_tf import io_utils
from noisy_student_tf.labeling import beam_engine
from noisy_student_tf.labeling import filtering
from noisy_student_tf.labeling import tfrecord_io

beam = beam_engine.beam


class SumHistograms(beam.CombineFn):
    """Sums [classes, 101] count arrays from any number of workers."""

    def __init__(self, num_classes):
        self._shape = (num_classes, filtering.NUM_BINS)

    def create_accumulator(self):
        return np.zeros(self._shape, np.int64)

    def add_input(self, accumulator, histogram):
        return accumulator + np.asarray(histogram, np.int64)

    def merge_accumulators(self, accumulators):
        return sum(accumulators, self.create_accumulator())

    def extract_output(self, accumulator):
        return accumulator


def _thresholds(histogram, num_classes, options):
    """(thresholds, num_image) from the summed histogram."""
    num_image = options["num_image"]
    if num_image is None:
        num_image = max(1, int(histogram.sum()) // num_classes)
    thresholds = filtering.select_thresholds(
        histogram, num_image, options["min_threshold"],
        options["max_prob"], options["use_top"], options["use_all"])
    return thresholds, num_image


class WriteFiltered(beam.DoFn):
    """Shard k -> its committed filtered shard (`filtering` pass 2)."""

    def __init__(self, source_config, labels_dir, filter_dir, count,
                 num_classes, options):
        self._source = source_config
        self._labels = labels_dir
        self._filter = filter_dir
        self._count = count
        self._classes = num_classes
        self._options = options
        self._kept = beam.metrics.Metrics.counter(
            beam_engine.METRICS, "pseudo_labels_written")

    def process(self, index, chosen):
        thresholds, num_image = chosen
        info = filtering.write_filtered_shard(
            ml_collections.ConfigDict(self._source), self._labels,
            self._filter, index, self._count, self._classes, thresholds,
            num_image=num_image, max_prob=self._options["max_prob"],
            upsample=self._options["upsample"],
            use_all=self._options["use_all"], seed=self._options["seed"])
        self._kept.inc(info["num_records"])
        yield index


def build_filter(pipeline, todo, source_config, labels_dir, filter_dir,
                 num_shards, num_classes, options):
    """Adds both passes for shards `todo` to `pipeline`."""
    histogram = (pipeline
                 | "AllShards" >> beam.Create(list(range(num_shards)))
                 | "SpreadStats" >> beam.Reshuffle()
                 | "Histogram" >> beam.Map(
                     lambda i: filtering.shard_histogram(
                         labels_dir, filter_dir, i, num_shards, num_classes))
                 | "Sum" >> beam.CombineGlobally(SumHistograms(num_classes)))
    chosen = histogram | "Thresholds" >> beam.Map(
        _thresholds, num_classes, options)
    _ = (pipeline
         | "ShardsToWrite" >> beam.Create(todo)
         | "SpreadWrites" >> beam.Reshuffle()
         | "WriteFiltered" >> beam.ParDo(
             WriteFiltered(source_config.to_dict(), labels_dir, filter_dir,
                           num_shards, num_classes, options),
             beam.pvalue.AsSingleton(chosen)))


def filter_and_balance(source_config, labels_dir, filter_dir, num_shards,
                       num_classes, *, min_threshold=0.3, num_image=None,
                       max_prob=2.0, upsample=True, use_all=False,
                       use_top=True, seed=0, shard_indices=None,
                       plots=True, beam_options=""):
    """`filtering.filter_and_balance` as a Beam pipeline.

    Args:
      beam_options: Beam pipeline options as a command-line string.
      Other args: as `filtering.filter_and_balance`.

    Returns:
      The local engine's stats dict (also in `filter_dir/stats.json`).
    """
    io_utils.ensure_writable_dir(filter_dir)
    indices = list(range(num_shards)) if shard_indices is None \
        else list(shard_indices)
    data_dir = os.path.join(filter_dir, "data")
    todo = [i for i in indices if not tfrecord_io.shard_complete(
        data_dir, tfrecord_io.FILTERED, i, num_shards)]
    if todo:
        io_utils.remove_stale_temporaries(data_dir, prefixes=[
            tfrecord_io.shard_name(tfrecord_io.FILTERED, i, num_shards)
            for i in todo])
        options = dict(num_image=num_image, min_threshold=min_threshold,
                       max_prob=max_prob, use_top=use_top, use_all=use_all,
                       upsample=upsample, seed=seed)
        beam_engine.run_pipeline(lambda p: build_filter(
            p, todo, source_config, labels_dir, filter_dir, num_shards,
            num_classes, options), beam_options)
    # Histograms are cached and every shard asked for is written: the
    # local engine now only sums, writes stats and plots, so both engines
    # leave the same files.
    return filtering.filter_and_balance(
        source_config, labels_dir, filter_dir, num_shards, num_classes,
        min_threshold=min_threshold, num_image=num_image, max_prob=max_prob,
        upsample=upsample, use_all=use_all, use_top=use_top, seed=seed,
        shard_indices=indices, plots=plots)
