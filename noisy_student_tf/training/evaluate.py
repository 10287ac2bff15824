"""Top-1 / top-5 / loss of a model on an eval dataset (EMA weights by the
caller's choice), distributed when a strategy is given; and of a model on
a stage's eval data, with a bad image named as training names it."""

import numpy as np
import tensorflow as tf

from noisy_student_tf.data import diagnose
from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from noisy_student_tf.training import distribute


def _batch_stats(model, batch):
    images, labels = batch["image"], tf.cast(batch["label"], tf.int32)
    logits = tf.cast(model(images, training=False), tf.float32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    top1 = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                            labels), tf.float32)
    k = min(5, logits.shape[-1])
    top5 = tf.cast(tf.nn.in_top_k(labels, logits, k), tf.float32)
    return tf.stack([tf.cast(tf.size(labels), tf.float32),
                     tf.reduce_sum(top1), tf.reduce_sum(top5),
                     tf.reduce_sum(loss)])


def evaluate(model, dataset, strategy=None, max_batches=None):
    """Returns {"top1", "top5", "loss", "num_examples"} over `dataset`.

    Args:
      model: a Keras model returning logits.
      dataset: batches of {"image", "label"} (an eval pipeline).
      strategy: when given, batches are split across its replicas.
      max_batches: stop early (quick checks).
    """
    distributed = distribute.is_explicit(strategy)

    @tf.function
    def step(batch):
        if distributed:
            per_replica = strategy.run(_batch_stats, args=(model, batch))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica,
                                   axis=None)
        return _batch_stats(model, batch)

    if distributed:
        dataset = strategy.experimental_distribute_dataset(dataset)
    totals = np.zeros(4, np.float64)
    for index, batch in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        totals += step(batch).numpy()
    count = totals[0]
    if count == 0:
        raise ValueError("evaluation dataset is empty")
    return {"top1": totals[1] / count, "top5": totals[2] / count,
            "loss": totals[3] / count, "num_examples": int(count)}



def eval_dataset(stage, split="eval", skip_corrupt=None):
    """Clean eval batches of a stage's `data[split]` with its `pp.eval`."""
    return pipeline.make_eval_dataset(
        sources.make_source(stage.data[split]), stage.pp.eval,
        stage.get("eval_batch_size", 256),
        skip_corrupt=stage.get("skip_corrupt", False)
        if skip_corrupt is None else skip_corrupt)


def evaluate_on_stage_data(model, stage, split="eval"):
    """{"top1", "top5", "loss" (floats), "num_examples"} of `model` on a
    stage's `data[split]` (a model file's accuracy: a given teacher, a
    best-on-validation model).

    Raises:
      sources.DataError: a bad image, named by file and record.
    """
    try:
        evaluation = evaluate(model, eval_dataset(stage, split))
    except (tf.errors.InvalidArgumentError,
            tf.errors.DataLossError) as error:
        if not diagnose.is_input_error(error):
            raise
        raise diagnose.explain_data_error(
            error, stage.data[split], stage.pp.eval,
            max_records=stage.get("diagnose_max_records")) from error
    return {key: int(value) if key == "num_examples" else float(value)
            for key, value in evaluation.items()}
