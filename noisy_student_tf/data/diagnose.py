"""Turns a failed input pipeline into one line naming the bad record.

tf.data errors name neither the file nor the record: a corrupt image in
shard 731 surfaces as "assertion failed: [corrupt image: ...]" from
`IteratorGetNext`, a cut-off shard as "truncated record at 9857". When
iterating a training, eval or labeling pipeline fails, the caller hands the
error and the source config to `explain_data_error`, which re-reads the
source (see `scan`) and returns a `sources.DataError` with one line such as

    /data/train-00001-of-01024 record 17 (id 4294967313): corrupt image
    (Invalid PNG data, size 50); skip_corrupt=True drops such records
"""

import tensorflow as tf

from noisy_student_tf.data import errors
from noisy_student_tf.data import scan

# Markers of tf.data failures (the iterator op shows up in the message of
# an error raised inside a tf.function train or predict step, too).
_INPUT_MARKERS = ("IteratorGetNext", "label outside [0,", "truncated record",
                  "corrupted record")


def is_input_error(error):
    """Whether a TF error most likely came from reading input data.

    Callers use it to decide if a failure is worth `explain_data_error`'s
    re-scan (a model bug raising InvalidArgumentError is not).
    """
    if isinstance(error, tf.errors.DataLossError):
        return True
    if not isinstance(error, tf.errors.OpError):
        return False
    return errors.is_corrupt_image_error(error) or any(
        marker in (error.message or "") for marker in _INPUT_MARKERS)


def locate_bad_record(source_config, pp_string=None, max_records=None):
    """Finds the first bad record of a source, reading it unit by unit.

    Args:
      source_config: the source's ConfigDict or dict (see
        `sources.make_source`); its `num_classes` enables the label-range
        check.
      pp_string: the pipeline's preprocessing; when given every record is
        also run through it, so failures of later ops are found too.
      max_records: stop after checking about this many records (None: all).

    Returns:
      One line "<file> record <i> (id <id>): <problem>" (for image folders
      "<image path> (id <i>): <problem>"), or None when nothing is wrong
      in the records checked.

    Raises:
      sources.DataError: the source's files are gone (empty glob, missing
        folder).
      ValueError: unknown source kind or a bad pp string.
    """
    return scan.find_bad_record(source_config, pp_string, max_records)


def _source_name(config):
    kind = config.get("kind")
    for key in ("pattern", "root", "name"):
        if config.get(key):
            return f"{kind} source {config.get(key)}"
    return f"{kind} source {config.get('split', '')}".strip()


def explain_data_error(error, source_config, pp_string=None,
                       max_records=None):
    """A one-line `sources.DataError` for a failed input pipeline.

    Re-scans the source (see `locate_bad_record`) to name the file, record
    index, record id and the problem; when nothing is found (or scanning
    itself fails) falls back to the original message's informative line
    and the source's pattern. Never raises.

    Args:
      error: what iterating the pipeline raised (usually
        `tf.errors.InvalidArgumentError` or `tf.errors.DataLossError`).
      source_config: the ConfigDict (or dict) the pipeline's source was
        made from.
      pp_string: the pipeline's preprocessing string.
      max_records: bound on the records re-checked (None: all).

    Returns:
      A `sources.DataError` to raise `from error`.
    """
    return explain_pipeline_error(error, [(source_config, pp_string)],
                                  max_records)


def explain_pipeline_error(error, inputs, max_records=None):
    """`explain_data_error` for a pipeline that reads several sources.

    Args:
      error: what iterating the pipeline raised.
      inputs: (source_config, pp_string) pairs, searched in order; e.g.
        the labeled and unlabeled streams of a mixed dataset, plus the
        unlabeled source with the teacher's pp string in online mode.
      max_records: bound on the records re-checked per input.

    Returns:
      A one-line `sources.DataError` to raise `from error`.
    """
    line = errors.informative_line(error)
    scan_notes = []
    for source_config, pp_string in inputs:
        try:
            found = scan.find_bad_record(source_config, pp_string,
                                         max_records, prefer=line)
        except Exception as scan_error:  # noqa: BLE001 -- keep the original
            found = None
            scan_notes.append(
                f"re-scan failed: {errors.informative_line(scan_error)}")
        if found:
            return errors.DataError(found)
    if errors.is_corrupt_image_error(error):
        line = errors.corrupt_image_problem(error)
    names = " or ".join(_source_name(scan.as_config(config))
                        for config, _ in inputs)
    note = f" ({'; '.join(scan_notes)})" if scan_notes else ""
    return errors.DataError(f"reading {names} failed: {line}{note}")
