"""Shared config helpers: `:arg` parsing, stage merging, pp strings.

An experiment config has top-level `data`, `defaults` (training knobs every
stage inherits), `teacher`, `students` (one per iteration), `labeling`,
`filter`, `finetune`, `export` and `robustness`. `stage_config` merges
`defaults` under a stage and adds the shared data, seed and class count,
giving the complete config the trainer gets and saves.
"""

import copy
import difflib

import ml_collections

# Trainer knobs and their reference values (noisystudent main.py).
TRAIN_DEFAULTS = dict(
    batch_size=128,
    optimizer="rmsprop",
    learning_rate=0.016,  # per 256 labeled images, scaled by batch/256.
    momentum=0.9,
    nesterov=True,  # sgd only
    beta_1=0.9,  # adamw only
    beta_2=0.999,  # adamw only
    rmsprop_decay=0.9,
    rmsprop_epsilon=1e-3,
    schedule="exponential",
    warmup_epochs=5,
    decay_epochs=2.4,
    decay_factor=0.97,
    final_lr=None,
    schedule_offset_steps=0,
    weight_decay=1e-5,
    label_smoothing=0.1,
    ema_decay=0.9999,
    clip_global_norm=None,
    unlabel_ratio=0,
    unlabeled_loss_weight=None,
    label_type="soft",
    temperature=1.0,
    checkpoint_every_steps=500,
    keep_checkpoints=3,
    log_every_steps=50,
    eval_every_steps=0,
    steps_per_loop=1,
    eval_batch_size=256,
    # "none" / "bf16" / "fp16" (training/precision.py; legacy True = bf16).
    mixed_precision="none",
    # k micro-batches of batch_size / k per optimizer step
    # (training/accumulation.py).
    accumulation_steps=1,
    jit_compile=False,  # XLA made EfficientNet 6-7x slower on CPU here.
    strategy="auto",
    tpu=None,
    cache=True,
    skip_corrupt=False,
    freeze_blocks=-1,
    # Bound on records re-read to name a bad file when input fails.
    diagnose_max_records=None,
)


# Stage keys beyond the trainer knobs above.
STAGE_KEYS = frozenset({
    "model", "pp", "data", "teacher", "total_steps", "total_epochs",
    "warmup_steps", "mode", "init_from_teacher", "method", "seed",
    "export_top_k", "num_labeled",
})
EXPERIMENT_KEYS = frozenset({
    "name", "seed", "num_classes", "channels", "class_names", "data",
    "defaults", "teacher", "baseline", "students", "labeling", "filter",
    "finetune", "export", "robustness",
})


def check_keys(config, allowed, where):
    """Raises ValueError naming unknown keys (typos never pass silently)."""
    unknown = sorted(set(config.keys()) - set(allowed))
    if unknown:
        close = [match for key in unknown for match in
                 difflib.get_close_matches(key, sorted(allowed), n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" \
            if close else ""
        raise ValueError(
            f"unknown config key(s) {unknown}{hint} in {where}; valid keys: "
            f"{', '.join(sorted(allowed))}")


def parse_arg(arg, **defaults):
    """`"quick,full=0,size=32"` -> ConfigDict over `defaults` (big_vision).

    A bare name sets a bool to True. Unknown keys raise ValueError.
    """
    result = dict(defaults)
    for part in filter(None, (arg or "").split(",")):
        key, _, value = part.partition("=")
        if key not in result:
            raise ValueError(f"Unknown config arg {key!r}; valid: "
                             f"{sorted(result)}")
        if not _:
            result[key] = True
            continue
        kind = type(result[key]) if result[key] is not None else str
        if kind is bool:
            result[key] = value.lower() in ("1", "true", "yes")
        else:
            result[key] = kind(value)
    return ml_collections.ConfigDict(result)


def _deep_update(base, update):
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def stage_config(config, stage, **extra):
    """Complete trainer config for one stage of an experiment.

    Args:
      config: the experiment ConfigDict.
      stage: the stage's ConfigDict (teacher, a student, finetune...).
      **extra: last-word overrides (e.g. the pseudo-label source).
    """
    merged = _deep_update(copy.deepcopy(TRAIN_DEFAULTS),
                          config.defaults.to_dict())
    merged = _deep_update(merged, stage.to_dict())
    merged["seed"] = config.seed
    merged.setdefault("data", {})
    # `validation` (e.g. SVHN's dev split) picks checkpoints during training;
    # it is never the test set (`eval`).
    for key in ("labeled", "validation", "eval"):
        if key not in merged["data"] and config.data.get(key):
            merged["data"][key] = config.data[key].to_dict()
    for key in ("labeled", "validation", "eval"):
        # Labeled sources check every label against the class count.
        if merged["data"].get(key):
            merged["data"][key].setdefault("num_classes", config.num_classes)
    merged["model"]["num_classes"] = config.num_classes
    merged["model"].setdefault("channels", config.get("channels", 3))
    _deep_update(merged, extra)
    return ml_collections.ConfigDict(merged)


def model_key(stage):
    """Architecture identity of a stage (name, size, overrides)."""
    model = stage.model
    return (model.name, model.get("image_size"),
            tuple(sorted((model.get("overrides") or {}).items())))


def make_config(**kwargs):
    """ConfigDict that accepts None-valued fields later set to other types."""
    return ml_collections.ConfigDict(kwargs, type_safe=False)
