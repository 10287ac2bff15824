"""Picks the tf.distribute strategy for the machine, with clear errors.

On one device the default strategy is used: any explicit strategy roughly
halves EfficientNet throughput on CPU here (measured on 2 cores with TF
2.21: ~180-190 vs ~370 img/s for B0 at 32x32).
"""

import json
import os

import tensorflow as tf


class DistributionError(RuntimeError):
    """The requested strategy cannot run on this machine."""


def _num_workers():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get(
            "cluster", {})
    except json.JSONDecodeError as error:
        raise DistributionError(f"TF_CONFIG is not valid JSON: {error}")
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def tpu_strategy(tpu):
    """Connects to a TPU by name ('local' on a TPU VM) or says what's wrong.

    Without a TPU, `TPUStrategy` fails deep inside with an IndexError; we
    check the pieces one by one and name the missing one instead.
    """
    if not tpu:
        raise DistributionError(
            "strategy 'tpu' needs a TPU name: pass --tpu=NAME (or 'local' on "
            "a TPU VM)")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError, tf.errors.UnavailableError,
            IndexError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() \
            else ""
        raise DistributionError(
            f"Could not connect to TPU {tpu!r} ({type(error).__name__}: "
            f"{first}). Use --tpu=local on a TPU VM, check the TPU name and "
            "zone otherwise, and that tensorflow-tpu/libtpu is installed and "
            "no other process holds the TPU.") from error
    if not tf.config.list_logical_devices("TPU"):
        raise DistributionError(f"TPU {tpu!r} initialised but exposes no TPU "
                                "devices")
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(kind="auto", tpu=None):
    """Returns a strategy.

    Args:
      kind: "auto" (TPU if `tpu`, multi-worker if TF_CONFIG lists several
        workers, mirrored on several GPUs, else default), "default",
        "mirrored", "multi_worker" or "tpu".
      tpu: TPU name for TPUStrategy.
    """
    if kind == "auto":
        if tpu:
            kind = "tpu"
        elif _num_workers() > 1:
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if _num_workers() < 1:
            raise DistributionError(
                "strategy 'multi_worker' needs TF_CONFIG with a cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "tpu":
        return tpu_strategy(tpu)
    raise ValueError(f"strategy must be auto, default, mirrored, multi_worker"
                     f" or tpu, got {kind!r}")


def is_chief():
    """True on the worker that writes files (task 0 / chief / single)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError:
        return True
    task = config.get("task", {})
    if not task or task.get("type") == "chief":
        return True
    has_chief = "chief" in config.get("cluster", {})
    return task.get("type") == "worker" and task.get("index", 0) == 0 \
        and not has_chief


_EXPLICIT = (tf.distribute.MirroredStrategy, tf.distribute.TPUStrategy,
             tf.distribute.MultiWorkerMirroredStrategy,
             tf.distribute.OneDeviceStrategy)


def is_explicit(strategy):
    """True for a real strategy (needs `strategy.run`), False for default."""
    return isinstance(strategy, _EXPLICIT)
