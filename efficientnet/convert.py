"""Loads official TF1 EfficientNet / Noisy Student checkpoints into Keras.

The released checkpoints (tensorflow/tpu `models/official/efficientnet`,
`noisy_student_efficientnet-*.tar.gz`) store variables by TF1 name under a
model scope such as `efficientnet-b0`:

  stem/conv2d/kernel, stem/tpu_batch_normalization/{gamma,beta,...}
  blocks_{i}/conv2d, conv2d_1, depthwise_conv2d, tpu_batch_normalization,
    tpu_batch_normalization_1, _2, se/conv2d, se/conv2d_1
  head/conv2d/kernel, head/tpu_batch_normalization/*, head/dense/{kernel,bias}

Each variable, BN moving statistics included, has an EMA shadow
`<name>/ExponentialMovingAverage`; evaluation and Noisy Student teachers use
the shadows (noisystudent `utils.get_all_variable`). Kernels are HWIO
(depthwise HW-C-1), the Keras layout, so values are copied without
transposes. Usage:

  model = efficientnet.build_variant("efficientnet_b0")
  report = load_tf1_checkpoint(model, "noisy_student_efficientnet-b0")
"""

import dataclasses

import tensorflow as tf

EMA_SUFFIX = "/ExponentialMovingAverage"
HEAD_DENSE = "head/dense"
# The scope is found from this variable: every EfficientNet has exactly one.
_STEM_KERNEL = "stem/conv2d/kernel"
_BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")
# Leaf names of model variables; optimizer slots (`.../RMSProp`) differ.
_LEAVES = ("kernel", "depthwise_kernel", "bias") + _BN_PARAMS


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What `load_tf1_checkpoint` loaded.

    Attributes:
      model_scope: the checkpoint scope the variables were read from.
      num_loaded: Keras variables assigned.
      num_ema: how many of them came from an EMA shadow.
      head_skipped: True when `head/dense` was not loaded.
    """

    model_scope: str
    num_loaded: int
    num_ema: int
    head_skipped: bool

    @property
    def ema_used(self):
        return self.num_ema > 0

    def __str__(self):
        head = ", classifier head skipped" if self.head_skipped else ""
        return (f"loaded {self.num_loaded} variables from scope "
                f"{self.model_scope!r} ({self.num_ema} EMA, "
                f"{self.num_loaded - self.num_ema} raw{head})")


def default_model_scope(model):
    """Reference scope of a model: `efficientnet_b0` -> `efficientnet-b0`."""
    return model.name.replace("_", "-")


def find_model_scopes(checkpoint_names):
    """Scopes that hold an EfficientNet stem in a list of checkpoint names.

    Args:
      checkpoint_names: variable names as in `tf.train.list_variables`.

    Returns:
      Sorted scopes, e.g. `['efficientnet-b0',
      'teacher_model/efficientnet-b0']`.
    """
    scopes = set()
    for name in checkpoint_names:
        name = _strip_ema(name)
        if name.endswith("/" + _STEM_KERNEL):
            scopes.add(name[:-len(_STEM_KERNEL) - 1])
    return sorted(scopes)


def _strip_ema(name):
    return name[:-len(EMA_SUFFIX)] if name.endswith(EMA_SUFFIX) else name


def _tf_layer_name(base, count):
    # tf.layers names a layer when it is first *called*, uniquified per
    # scope: conv2d, conv2d_1, ... A block with expand_ratio 1 never calls
    # its expansion conv, so its depthwise BN takes the unsuffixed name.
    return base if count == 0 else f"{base}_{count}"


def _bn_pairs(scope, layer):
    return [(f"{scope}/{param}", getattr(layer, param))
            for param in _BN_PARAMS]


def tf1_variable_map(model, model_scope=None, include_head=True):
    """Pairs each Keras variable with its TF1 checkpoint name.

    Args:
      model: an `efficientnet.EfficientNet`.
      model_scope: checkpoint scope; defaults to `default_model_scope`.
      include_head: map `head/dense` to the `logits` layer (when present).

    Returns:
      A list of `(checkpoint_name, keras_variable)` in model order; names
      are the raw (non-EMA) ones.

    Raises:
      ValueError: if `model` lacks the EfficientNet layer names.
    """
    if not hasattr(model, "block_names"):
        raise ValueError(
            f"Model {model.name!r} is not an efficientnet.EfficientNet")
    scope = model_scope or default_model_scope(model)
    pairs = [(f"{scope}/{_STEM_KERNEL}", model.get_layer("stem_conv").kernel)]
    pairs += _bn_pairs(f"{scope}/stem/tpu_batch_normalization",
                       model.get_layer("stem_bn"))
    for block_name in model.block_names:
        # Our block names are the reference's `blocks_%d` scopes.
        block = model.get_layer(block_name)
        prefix = f"{scope}/{block_name}"
        convs = bns = 0
        if block.expand_conv is not None:
            pairs.append((f"{prefix}/conv2d/kernel", block.expand_conv.kernel))
            pairs += _bn_pairs(f"{prefix}/tpu_batch_normalization",
                               block.expand_bn)
            convs = bns = 1
        pairs.append((f"{prefix}/depthwise_conv2d/depthwise_kernel",
                      block.depthwise_conv.kernel))
        bn = _tf_layer_name("tpu_batch_normalization", bns)
        pairs += _bn_pairs(f"{prefix}/{bn}", block.depthwise_bn)
        if block.se is not None:
            for conv_name, conv in (("se/conv2d", block.se.reduce_conv),
                                    ("se/conv2d_1", block.se.expand_conv)):
                pairs.append((f"{prefix}/{conv_name}/kernel", conv.kernel))
                pairs.append((f"{prefix}/{conv_name}/bias", conv.bias))
        conv = _tf_layer_name("conv2d", convs)
        pairs.append((f"{prefix}/{conv}/kernel", block.project_conv.kernel))
        bn = _tf_layer_name("tpu_batch_normalization", bns + 1)
        pairs += _bn_pairs(f"{prefix}/{bn}", block.project_bn)
    pairs.append((f"{scope}/head/conv2d/kernel",
                  model.get_layer("head_conv").kernel))
    pairs += _bn_pairs(f"{scope}/head/tpu_batch_normalization",
                       model.get_layer("head_bn"))
    if include_head and _has_logits(model):
        logits = model.get_layer("logits")
        pairs.append((f"{scope}/{HEAD_DENSE}/kernel", logits.kernel))
        pairs.append((f"{scope}/{HEAD_DENSE}/bias", logits.bias))
    return pairs


def _has_logits(model):
    return any(layer.name == "logits" for layer in model.layers)


def _open_checkpoint(path):
    """`tf.train.load_checkpoint` that also takes a directory without a
    `checkpoint` state file but with a single `*.index`."""
    if (tf.io.gfile.isdir(path)
            and tf.train.latest_checkpoint(path) is None):
        indexes = tf.io.gfile.glob(tf.io.gfile.join(path, "*.index"))
        if len(indexes) == 1:
            path = indexes[0][:-len(".index")]
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise FileNotFoundError(
            f"No TF1 checkpoint at {path!r} (give a directory or a prefix "
            f"such as .../model.ckpt): {first_line}") from error
    except tf.errors.OpError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"Cannot read checkpoint {path!r}: {first_line}") from error


def _resolve_scope(model, shapes, model_scope, checkpoint_path):
    if model_scope:
        return model_scope.rstrip("/")
    found = find_model_scopes(shapes)
    default = default_model_scope(model)
    if default in found:
        return default
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(
            f"No variable ending in '/{_STEM_KERNEL}' in {checkpoint_path!r}: "
            "not a tensorflow/tpu EfficientNet checkpoint")
    raise ValueError(
        f"Checkpoint {checkpoint_path!r} holds several EfficientNet scopes "
        f"{found}; pass model_scope to choose one")


def _problem(name, variable, shapes, prefer_ema):
    """Returns (source name, None) or (None, one-line problem)."""
    expected = tuple(variable.shape)
    candidates = [name + EMA_SUFFIX, name] if prefer_ema else [name]
    for candidate in candidates:
        if candidate in shapes:
            found = tuple(shapes[candidate])
            if found == expected:
                return candidate, None
            return None, (
                f"checkpoint variable {candidate!r} has shape {found} but "
                f"Keras variable {variable.path!r} expects {expected}")
    return None, (
        f"checkpoint variable {name!r} not found for Keras variable "
        f"{variable.path!r} (expected shape {expected}, found none)")


def _hint(name, problem, scope, shapes, prefer_ema):
    if "/" + HEAD_DENSE + "/" in name and "has shape" in problem:
        return ("build the model with the checkpoint's num_classes, or pass "
                "include_head=False (--skip_head) to keep a fresh classifier")
    if "not found" in problem:
        if not prefer_ema and name + EMA_SUFFIX in shapes:
            return "only its EMA shadow exists: load with prefer_ema=True"
        found = find_model_scopes(shapes)
        if scope not in found:
            return (f"scope {scope!r} is not in the checkpoint, whose "
                    f"EfficientNet scopes are {found}: pass one as "
                    "model_scope (--model_scope)")
        return (f"read scope {scope!r}; did you build the right variant "
                "(depth sets how many blocks_i exist)?")
    return "did you build the right variant (width and depth) / num_classes?"


def load_tf1_checkpoint(model, checkpoint_path, model_scope=None,
                        prefer_ema=True, include_head=True):
    """Copies a tensorflow/tpu EfficientNet checkpoint into `model`.

    Every variable is checked before any is assigned, so a failed load
    leaves the model untouched.

    Args:
      model: an `efficientnet.EfficientNet` of the checkpoint's variant.
      checkpoint_path: a checkpoint directory or prefix (`.../model.ckpt`).
      model_scope: the checkpoint's model scope. None: the model's reference
        name (`efficientnet-b0`) when the checkpoint has it, else the single
        scope holding `stem/conv2d/kernel`.
      prefer_ema: read `<name>/ExponentialMovingAverage` where it exists
        (BN moving statistics too), else the raw value.
      include_head: load `head/dense`; False keeps the model's own
        classifier (finetuning to another class count).

    Returns:
      A `LoadReport`.

    Raises:
      FileNotFoundError: no checkpoint at `checkpoint_path`.
      ValueError: no or ambiguous scope; a variable missing or mis-shaped
        (the first one is named, with the Keras variable and both shapes);
        or checkpoint model variables that the model has no place for.
    """
    reader = _open_checkpoint(checkpoint_path)
    shapes = reader.get_variable_to_shape_map()
    scope = _resolve_scope(model, shapes, model_scope, checkpoint_path)
    pairs = tf1_variable_map(model, scope, include_head=include_head)

    plan, problems = [], []
    for name, variable in pairs:
        source, problem = _problem(name, variable, shapes, prefer_ema)
        if problem:
            problems.append((name, problem))
        else:
            plan.append((source, variable))
    if problems:
        name, problem = problems[0]
        more = ""
        if len(problems) > 1:
            more = f" ({len(problems)} problems in all)"
        raise ValueError(f"Cannot load {checkpoint_path!r}: {problem}{more}; "
                         f"{_hint(name, problem, scope, shapes, prefer_ema)}")

    # A checkpoint with more blocks (or layers) than the model would
    # otherwise load "successfully" into the wrong architecture.
    mapped = {name for name, _ in pairs}
    unused = sorted({
        name for name in map(_strip_ema, shapes)
        if name.startswith(scope + "/") and name not in mapped
        and name.rsplit("/", 1)[-1] in _LEAVES
        and not name.startswith(f"{scope}/{HEAD_DENSE}/")})
    if unused:
        raise ValueError(
            f"Cannot load {checkpoint_path!r}: checkpoint variable "
            f"{unused[0]!r} has no Keras counterpart ({len(unused)} unused); "
            "did you build the right variant (width and depth)?")

    for source, variable in plan:
        value = reader.get_tensor(source)
        variable.assign(tf.cast(value, variable.dtype))
    head_loaded = include_head and _has_logits(model)
    return LoadReport(
        model_scope=scope,
        num_loaded=len(plan),
        num_ema=sum(source.endswith(EMA_SUFFIX) for source, _ in plan),
        head_skipped=not head_loaded,
    )
