"""Probe behind a README figure (Performance, pseudo-labeling): run from the
repository root with .venv/bin/python; it prints, its output was not kept."""
import os, sys, time, tempfile
sys.path.insert(0, "scripts"); sys.path.insert(0, ".")
import numpy as np, tensorflow as tf, ml_collections
from benchmarks import labeling as L
from noisy_student_tf.data import sources, preprocess
count, bs = 16384, 256
root = tempfile.mkdtemp()
pattern = L.write_png_shards(root, 4, count // 4)
cfg = ml_collections.ConfigDict(dict(kind="tfrecord", pattern=pattern))
pp = preprocess.get_preprocess_fn(L.LABEL_PP)
dec = preprocess.get_preprocess_fn('decode')
def src(): return sources.make_source(cfg, shard=(0, 1), parse_batch_size=bs)
opts = tf.data.Options(); opts.experimental_optimization.map_fusion = True
A = tf.data.AUTOTUNE
V = {"read+parse": lambda: src().batch(bs),
 "noop map": lambda: src().map(lambda r: r, num_parallel_calls=A).batch(bs).with_options(opts),
 "decode_png": lambda: src().map(lambda r: dict(r, image=tf.io.decode_png(r["image"], 3)), num_parallel_calls=A).batch(bs).with_options(opts),
 "decode op": lambda: src().map(lambda r: dec(dict(r)), num_parallel_calls=A).batch(bs).with_options(opts),
 "pp": lambda: src().map(lambda r: pp(dict(r)), num_parallel_calls=A).batch(bs).with_options(opts)}
res = {}
for rnd in range(3):
  for name, mk in V.items():
    ds = mk(); t, c = time.perf_counter(), time.process_time()
    n = sum(int(b["id"].shape[0]) for b in ds)
    res.setdefault(name, []).append(((time.perf_counter()-t)*1e3/n, (time.process_time()-c)*1e3/n))
for k, r in res.items(): print(f"{k:12s} wall {np.median([x[0] for x in r]):.4f} cpu {np.median([x[1] for x in r]):.4f}")
