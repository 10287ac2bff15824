"""Registered ops on pixel values, channels and dict entries.

`normalize` and `value_range` turn uint8 images into the float32 inputs
models take, `to_rgb` tiles gray images to 3 channels, `onehot` builds
targets from integer labels and `keep` drops entries. Unless an op says
otherwise it reads and writes `data["image"]` (pass `key=` / `outkey=` to
change that) and leaves every other entry untouched.

Reference semantics: google-research/noisystudent `preprocessing.py`
(spec §10); `value_range` is big_vision's op for MLP-Mixer.
"""

import tensorflow as tf

from noisy_student_tf.data import registry

# Mean and std on the 0..1 scale; `normalize` multiplies by 255.
NORMALIZE_PRESETS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}


@registry.register("normalize")
@registry.in_key_out_key()
def normalize(name_or_mean, std=None):
    """To float32 `(x - mean) / std`, mean and std on the 0..255 scale.

    Args:
      name_or_mean: a preset name ("imagenet", "svhn", "fashion_mnist";
        given on the 0..1 scale and multiplied by 255), or the mean as a
        number or per-channel tuple on the 0..255 scale.
      std: with a numeric mean, the std on the 0..255 scale.

    Returns:
      The image op. A 1-value mean/std broadcasts over 3 channels; a
      3-value one on a 1-channel image is an error.

    Raises:
      ValueError: unknown preset, std missing or given with a preset.
    """
    if isinstance(name_or_mean, str):
        if name_or_mean not in NORMALIZE_PRESETS:
            raise ValueError(
                f"Unknown normalize preset {name_or_mean!r}; known: "
                f"{sorted(NORMALIZE_PRESETS)}")
        if std is not None:
            raise ValueError("normalize: std is implied by a preset name")
        mean, std = (tuple(v * 255.0 for v in values)
                     for values in NORMALIZE_PRESETS[name_or_mean])
    else:
        if std is None:
            raise ValueError("normalize: a numeric mean needs a std")
        mean = name_or_mean
    mean = tuple(mean) if isinstance(mean, (tuple, list)) else (mean,)
    std = tuple(std) if isinstance(std, (tuple, list)) else (std,)

    def fn(image):
        channels = image.shape[-1]
        if channels is not None and max(len(mean), len(std)) not in (
                1, channels):
            raise ValueError(
                f"normalize: {len(mean)}-value mean / {len(std)}-value std "
                f"for a {channels}-channel image")
        image = tf.cast(image, tf.float32)
        if len(mean) == len(std) == 1:
            return (image - mean[0]) / std[0]
        # Explicit broadcast: implicit broadcasting over the channel axis
        # is markedly slower in TF's CPU kernels.
        shape = tf.shape(image)
        return ((image - tf.broadcast_to(mean, shape))
                / tf.broadcast_to(std, shape))

    return fn


@registry.register("value_range")
@registry.in_key_out_key()
def value_range(lo, hi, in_min=0, in_max=255):
    """Maps `[in_min, in_max]` linearly to float32 `[lo, hi]`.

    Args:
      lo: output value of `in_min` (MLP-Mixer uses -1).
      hi: output value of `in_max` (MLP-Mixer uses 1).
      in_min: input value mapped to lo.
      in_max: input value mapped to hi.

    Returns:
      The image op.
    """
    scale = (hi - lo) / (in_max - in_min)
    return lambda image: (tf.cast(image, tf.float32) - in_min) * scale + lo


@registry.register("to_rgb")
@registry.in_key_out_key()
def to_rgb():
    """Tiles a 1-channel image to 3 channels; 3 channels pass through."""

    def fn(image):
        channels = image.shape[-1]
        if channels == 3:
            return image
        if channels == 1:
            return tf.tile(image, [1, 1, 3])
        out = tf.cond(tf.shape(image)[-1] == 1,
                      lambda: tf.tile(image, [1, 1, 3]), lambda: image)
        return tf.ensure_shape(out, [None, None, 3])

    return fn


@registry.register("onehot")
@registry.in_key_out_key(default_key="label", default_outkey="labels")
def onehot(num_classes, on_value=1.0, off_value=0.0):
    """One-hot float32 targets from an integer label ("label" -> "labels").

    Args:
      num_classes: depth of the one-hot vector.
      on_value: value at the label's index.
      off_value: value elsewhere.

    Returns:
      The op.
    """
    return lambda label: tf.one_hot(
        label, num_classes, on_value, off_value, dtype=tf.float32)


@registry.register("keep")
def keep(*keys):
    """Keeps only `keys` of the data dict (e.g. `keep("image", "label")`).

    Args:
      *keys: entries to keep; all must be present.

    Returns:
      The op.
    """
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keep needs one or more key names, got {keys!r}")

    def fn(data):
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(f"keep: {missing} not in data keys {sorted(data)}")
        return {k: data[k] for k in keys}

    return fn
