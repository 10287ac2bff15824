"""Benchmark section beam_label: labeling on Apache Beam vs the local engine.

Both engines label the same TFRecord shards of PNG images with the same
saved teacher and write the same prediction shards; each call is timed
end to end (model load and trace included on both sides, as a user runs
them). Beam runs on its in-process runner with one worker, and with two
worker threads. This is where Beam's fixed and per-batch overheads show
most: a cheap teacher on 32 px images, on one 2-core machine.
"""

import os
import shutil
import tempfile
import time

import ml_collections
import numpy as np

from benchmarks import labeling
from benchmarks import timing
from noisy_student_tf import models
from noisy_student_tf.labeling import predict
from noisy_student_tf.training import checkpoints

LOCAL_ROW = "local engine (generate_pseudo_labels)"
BEAM_ROW = "beam engine, 1 worker"
BEAM2_ROW = "beam engine, 2 worker threads"
BEAM_OPTIONS = {
    BEAM_ROW: "",
    BEAM2_ROW: "--direct_num_workers=2 --direct_running_mode=multi_threading",
}


def _teacher(path, tiny):
    overrides = dict(width_coefficient=0.25, depth_coefficient=0.25) \
        if tiny else {}
    model = models.create_model("efficientnet_b0", num_classes=10,
                                input_shape=(32, 32, 3), **overrides)
    checkpoints.save_model_atomic(model, path)


def bench_beam_label(mode):
    """Beam labeling vs local labeling, same images, same outputs.

    Args:
      mode: "full", "quick" or "smoke".

    Returns:
      The section result dict (rows, ratios, notes).
    """
    from noisy_student_tf.labeling import beam_engine

    count = timing.by_mode(mode, 16384, 4096, 64)
    batch_size = timing.by_mode(mode, 256, 256, 32)
    rounds = timing.by_mode(mode, 5, 3, 1)
    num_files, num_shards = 4, 4
    root = tempfile.mkdtemp(prefix="bench_beam_")
    rates = {name: [] for name in (LOCAL_ROW, BEAM_ROW, BEAM2_ROW)}
    cpu_ms = {name: [] for name in rates}
    try:
        pattern = labeling.write_png_shards(root, num_files,
                                            count // num_files)
        source = ml_collections.ConfigDict(dict(kind="tfrecord",
                                                pattern=pattern))
        teacher = os.path.join(root, "teacher.keras")
        _teacher(teacher, tiny=mode == "smoke")

        def run(name, out):
            start, cpu = time.perf_counter(), time.process_time()
            kwargs = dict(num_shards=num_shards, batch_size=batch_size,
                          progress=False)
            if name == LOCAL_ROW:
                summary = predict.generate_pseudo_labels(
                    teacher, source, labeling.LABEL_PP, out, **kwargs)
            else:
                summary = beam_engine.generate_pseudo_labels(
                    teacher, source, labeling.LABEL_PP, out,
                    beam_options=BEAM_OPTIONS[name], **kwargs)
            rates[name].append(count / (time.perf_counter() - start))
            cpu_ms[name].append(1e3 * (time.process_time() - cpu) / count)
            assert summary["num_records"] == count, summary

        for _, name in timing.interleaved(list(rates), rounds):
            out = os.path.join(root, "labels")
            timing.progress(f"beam_label: {name}")
            run(name, out)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [dict(timing.row(dict(name=name), count, rate),
                 cpu_ms_per_image=round(float(np.median(cpu_ms[name])), 3))
            for name, rate in rates.items()]
    ratios = {
        "beam/local labeling": timing.ratio(rows, BEAM_ROW, LOCAL_ROW),
        "beam 2 threads/local labeling": timing.ratio(rows, BEAM2_ROW,
                                                      LOCAL_ROW),
    }
    notes = [
        f"{count} PNG 32x32 images in {num_files} TFRecord files, "
        f"{num_shards} output shards, batch {batch_size}, B0 teacher "
        "(default strides), each call end to end incl. model load and "
        "trace; Beam's in-process FnApiRunner",
        "process CPU time counts the driver process only (worker threads "
        "included; Beam's multi-processing workers would not be)",
    ]
    if mode == "smoke":
        notes.append("smoke: quarter-width/depth teacher, 64 images")
    return dict(rows=rows, ratios=ratios, notes=notes)
