import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, "scripts")
import numpy as np, keras
from benchmarks import training
from efficientnet import blocks
size, batch, classes = int(sys.argv[1]), int(sys.argv[2]), 1000 if sys.argv[1] == "224" else 10
fused = training._tf_step(training._ours_b0(size, classes, False), batch, size, classes)
orig = blocks.BatchNormalization
blocks.BatchNormalization = keras.layers.BatchNormalization
plain = training._tf_step(training._ours_b0(size, classes, False), batch, size, classes)
blocks.BatchNormalization = orig
fused(); plain()
res = {"fused": [], "plain": []}
for r in range(int(sys.argv[3])):
    for name, f in (("fused", fused), ("plain", plain)) if r % 2 == 0 else (("plain", plain), ("fused", fused)):
        c, w = time.process_time(), time.perf_counter(); f()
        res[name].append((time.process_time() - c, time.perf_counter() - w))
for k, v in res.items():
    print(k, "cpu/step median", round(float(np.median([a for a, _ in v])), 3), "wall median", round(float(np.median([b for _, b in v])), 3), [round(a, 2) for a, _ in v], flush=True)
