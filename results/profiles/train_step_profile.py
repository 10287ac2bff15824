"""Op-type shares of our B0 train step at 224 (batch 32), CPU time per step.

Usage (repo root): python results/profiles/train_step_profile.py STEPS [prof]
PLAIN_BN=1 builds the model with Keras' unfused BatchNormalization (the
graph before efficientnet.blocks.BatchNormalization).
"""
import os, sys, time, glob, collections, tempfile
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, "scripts")
import tensorflow as tf
from benchmarks import training
if os.environ.get("PLAIN_BN") == "1":
    import keras
    from efficientnet import blocks
    blocks.BatchNormalization = keras.layers.BatchNormalization
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2
prof = len(sys.argv) > 2 and sys.argv[2] == "prof"
model = training._ours_b0(224, 1000, False)
step = training._tf_step(model, 32, 224, 1000)
step()  # trace + warm
cpu = []
for _ in range(steps):
    c, w = time.process_time(), time.perf_counter()
    step()
    cpu.append((time.process_time() - c, time.perf_counter() - w))
print("ONEDNN", os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "PLAIN_BN", os.environ.get("PLAIN_BN"), "cpu s/step", [round(c, 2) for c, _ in cpu], "wall", [round(w, 2) for _, w in cpu], flush=True)
if prof:
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    step()
    tf.profiler.experimental.stop()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    path = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]
    space = xplane_pb2.XSpace(); space.ParseFromString(open(path, "rb").read())
    by_type = collections.Counter()
    for plane in space.planes:
        if "CPU" not in plane.name and "host" not in plane.name.lower():
            continue
        meta = plane.event_metadata
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = meta[ev.metadata_id].name
                # TF op events look like "name:OpType"
                if ":" in name and not name.startswith("$"):
                    by_type[name.rsplit(":", 1)[1]] += ev.duration_ps / 1e12
    for container in ("Process", "Run"):
        by_type.pop(container, None)
    for name in [k for k in by_type if k.strip().startswith("__inference")]:
        by_type.pop(name)
    total = sum(by_type.values())
    print("op-time total s", round(total, 2))
    for k, v in by_type.most_common(18):
        print(f"  {k:45s} {v:7.3f} s {100*v/total:5.1f}%")
