"""One registry over every model family: `create_model(name, ...)`.

Names are the variant names of each family (`efficientnet_b0` ...
`efficientnet_l2`, `mixer_s32` ... `mixer_h14`). Overrides that are None
are dropped (timm's `create_model` convention), so configs can leave a knob
unset and get the variant's table value.
"""

import inspect

import efficientnet
from efficientnet import efficientnet as efficientnet_lib
import mixer
from mixer import mlp_mixer as mixer_lib

# name -> (builder(variant, **kwargs), model class, default resolution)
_FAMILIES = (
    (efficientnet.VARIANTS, efficientnet_lib.build_variant,
     efficientnet.EfficientNet, lambda row: row[2]),
    (mixer.VARIANTS, mixer_lib.build_variant, mixer.MlpMixer,
     lambda row: mixer.DEFAULT_IMAGE_SIZE),
)


def _registry():
    table = {}
    for variants, builder, model_class, size_of in _FAMILIES:
        for name, row in variants.items():
            table[name] = (builder, model_class, size_of(row))
    return table


_REGISTRY = _registry()


def list_models():
    """Returns every registered model name, sorted."""
    return sorted(_REGISTRY)


def _lookup(name):
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {', '.join(list_models())}")
    return _REGISTRY[name]


def default_image_size(name):
    """The variant's native training resolution (the variant table's)."""
    return _lookup(name)[2]


def valid_overrides(name):
    """Keyword overrides `create_model` accepts for `name`."""
    _, model_class, _ = _lookup(name)
    params = inspect.signature(model_class.__init__).parameters
    return sorted(
        key for key, param in params.items()
        if key not in ("self", "name", "kwargs")
        and param.kind is not inspect.Parameter.VAR_KEYWORD)


def create_model(name, num_classes=1000, input_shape=None, **overrides):
    """Builds a registered model.

    Args:
      name: a name from `list_models()`.
      num_classes: logits width.
      input_shape: (H, W, C); defaults to the variant's resolution, RGB.
      **overrides: constructor arguments of the family (e.g.
        `width_coefficient`, `dropout_rate`, `stochastic_depth_rate`,
        `small_image`); None values are ignored.

    Returns:
      An uncompiled `keras.Model` returning logits.

    Raises:
      ValueError: unknown name, unknown override, or a bad value.
    """
    builder, _, _ = _lookup(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    valid = valid_overrides(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown override(s) {unknown} for {name!r}. Valid overrides: "
            f"{', '.join(valid)}")
    if input_shape is not None:
        input_shape = tuple(input_shape)
    try:
        return builder(name, num_classes=num_classes,
                       input_shape=input_shape, **overrides)
    except TypeError as error:
        raise ValueError(f"Bad override for {name!r}: {error}") from error
