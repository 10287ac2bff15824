"""Training and evaluation input pipelines over raw sources.

- `make_train_dataset`: shard per host, cache, seeded shuffle, repeat,
  preprocess, batch (drop remainder), prefetch.
- `make_eval_dataset`: ordered, one pass, last partial batch kept.
- `make_mixed_dataset`: a labeled batch of B and an unlabeled batch of
  ceil(B * unlabel_ratio) zipped per step (noisystudent `data_input.py`),
  optionally with a clean teacher view of each unlabeled image at the
  teacher's own resolution (online mode).

Per-host sharding takes a `tf.distribute.InputContext`; the batch sizes given
here are global and become per-replica through the context.
"""

import math

import tensorflow as tf

from noisy_student_tf.data import preprocess

AUTOTUNE = tf.data.AUTOTUNE


def _per_replica(batch_size, input_context):
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _shard_for_host(ds, input_context):
    if input_context is None or input_context.num_input_pipelines == 1:
        return ds
    return ds.shard(input_context.num_input_pipelines,
                    input_context.input_pipeline_id)


def _options(deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = True
    return options


def _map_pp(ds, pp_fn, skip_corrupt):
    ds = ds.map(pp_fn, num_parallel_calls=AUTOTUNE)
    if skip_corrupt:
        # Corrupt images are dropped with a logged warning each; the
        # labeling and eval loops also report how many went missing.
        ds = ds.ignore_errors(log_warning=True)
    return ds


def make_train_dataset(source, pp_string, batch_size, *, seed=0,
                       shuffle_buffer=10_000, cache=False,
                       input_context=None, skip_corrupt=False,
                       repeat=True, deterministic=False):
    """Infinite, shuffled, preprocessed batches from a raw source.

    Args:
      source: raw-record dataset (see `sources.make_source`).
      pp_string: preprocessing string, e.g. "randaug(2, 9)|normalize(...)".
      batch_size: global batch size.
      seed: shuffle seed (vary it on resume so data order is fresh).
      shuffle_buffer: records in the shuffle buffer.
      cache: cache raw records in memory (small labeled sets).
      input_context: `tf.distribute.InputContext` for per-host sharding.
      skip_corrupt: drop undecodable records instead of failing.
      repeat: repeat forever.
      deterministic: keep element order through parallel maps, so a seed
        fixes the batch order (tests, reproducible runs); off by default
        because in-order delivery lets one slow image stall the batch.
    """
    ds = _shard_for_host(source, input_context)
    if cache:
        ds = ds.cache()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = _map_pp(ds, preprocess.get_preprocess_fn(pp_string), skip_corrupt)
    ds = ds.batch(_per_replica(batch_size, input_context),
                  drop_remainder=True)
    return ds.with_options(_options(deterministic)).prefetch(AUTOTUNE)


def make_eval_dataset(source, pp_string, batch_size, *, input_context=None,
                      skip_corrupt=False):
    """One ordered pass of preprocessed batches (the remainder is kept)."""
    ds = _shard_for_host(source, input_context)
    ds = _map_pp(ds, preprocess.get_preprocess_fn(pp_string), skip_corrupt)
    ds = ds.batch(_per_replica(batch_size, input_context))
    return ds.with_options(_options(True)).prefetch(AUTOTUNE)


def unlabeled_batch_size(batch_size, unlabel_ratio):
    """ceil(B * ratio), as the reference sizes the unlabeled stream."""
    return int(math.ceil(batch_size * unlabel_ratio))


def make_mixed_dataset(labeled, unlabeled, *, labeled_pp, unlabeled_pp,
                       batch_size, unlabel_ratio, teacher_pp=None, seed=0,
                       shuffle_buffer=10_000, cache_labeled=True,
                       input_context=None, skip_corrupt=False,
                       deterministic=False):
    """Zipped (labeled, unlabeled) batches for Noisy Student training.

    Args:
      labeled: raw labeled source.
      unlabeled: raw unlabeled source; offline it carries the teacher's
        stored "probabilities"/"label", online the teacher runs on
        "teacher_image".
      labeled_pp: preprocessing of labeled images (noised for the student).
      unlabeled_pp: preprocessing of unlabeled images (the student's view).
      batch_size: global labeled batch size B.
      unlabel_ratio: the unlabeled batch is ceil(B * unlabel_ratio).
      teacher_pp: when given, each unlabeled record also gets
        "teacher_image", the clean eval view at the teacher's resolution.
      seed: shuffle seed.
      shuffle_buffer: shuffle buffer of each stream.
      cache_labeled: keep the (small) labeled set in memory.
      input_context: `tf.distribute.InputContext`.
      skip_corrupt: drop undecodable records instead of failing.
      deterministic: seeded, reproducible order (see make_train_dataset).

    Returns:
      Dataset of `{"labeled": {...}, "unlabeled": {...}}` batches.
    """
    if unlabel_ratio <= 0:
        raise ValueError(f"unlabel_ratio must be > 0 for a mixed dataset, "
                         f"got {unlabel_ratio}")
    labeled_ds = make_train_dataset(
        labeled, labeled_pp, batch_size, seed=seed,
        shuffle_buffer=shuffle_buffer, cache=cache_labeled,
        input_context=input_context, skip_corrupt=skip_corrupt,
        deterministic=deterministic)

    student_fn = preprocess.get_preprocess_fn(unlabeled_pp)
    if teacher_pp is None:
        unlabeled_fn = student_fn
    else:
        teacher_fn = preprocess.get_preprocess_fn(teacher_pp)

        def unlabeled_fn(record):
            out = student_fn(dict(record))
            out["teacher_image"] = teacher_fn(dict(record))["image"]
            return out

    ds = _shard_for_host(unlabeled, input_context)
    ds = ds.shuffle(shuffle_buffer, seed=seed + 1,
                    reshuffle_each_iteration=True).repeat()
    ds = _map_pp(ds, unlabeled_fn, skip_corrupt)
    ds = ds.batch(
        _per_replica(unlabeled_batch_size(batch_size, unlabel_ratio),
                     input_context), drop_remainder=True)
    ds = ds.with_options(_options(deterministic))
    mixed = tf.data.Dataset.zip({"labeled": labeled_ds, "unlabeled": ds})
    return mixed.prefetch(AUTOTUNE)


def check_image_shapes(element_spec, input_shape, model_name,
                       stream="labeled"):
    """Raises a clear ValueError when batches do not fit the model's input.

    A pp string that yields another rank, channel count or size than the
    model takes otherwise fails deep inside Keras in the traced step.

    Args:
      element_spec: `element_spec` of a batched dataset: a dict with an
        "image" entry, or of streams ("labeled", "unlabeled") that have one.
      input_shape: the model's input shape, batch first (None dims match).
      model_name: named in the message.
      stream: the pp-string name of a top-level "image" ("labeled",
        "eval", ...); nested streams are named by their key.

    Raises:
      ValueError: naming the pp string, its image shape and the model's.
    """
    expected = tuple(input_shape[1:])
    found = []
    if isinstance(element_spec, dict):
        if "image" in element_spec:
            found.append((stream, element_spec["image"]))
        found += [(key, value["image"]) for key, value in
                  element_spec.items()
                  if isinstance(value, dict) and "image" in value]
    for name, spec in found:
        got = tuple(spec.shape[1:])
        fits = len(got) == len(expected) and all(
            a is None or b is None or a == b for a, b in zip(got, expected))
        if not fits:
            raise ValueError(
                f"pp.{name} produces images of shape {got}, but model "
                f"{model_name} expects {expected} (height, width, "
                "channels): check decode(channels=...) and the crop/resize "
                "size in that pp string, or the model's image_size/channels")
