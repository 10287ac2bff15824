"""RandAugment with the semantics of the reference TF1 implementation.

Reference: tensorflow/tpu `models/official/efficientnet/autoaugment.py`
(`distort_image_with_randaugment`) as extended by google-research/
noisystudent `randaugment.py` (configurable cutout/translate constants,
optional Cutout). For each of `num_layers` layers one of the 16 ops is
drawn uniformly and always applied at the fixed level `magnitude / 10`, so
magnitudes above 10 extrapolate. Geometric ops and Cutout fill with 128;
Rotate, Shear and Translate get a random sign. Every image draws its own
ops: use `randaug` in a per-example `tf.data` map, or
`distort_batch_with_randaugment` on a batch.

The pure per-op functions live in `augment_ops` and are re-exported here;
`level_to_arg` is the table from magnitude to op argument, exposed so tests
can check hand values.

Deliberate difference from the reference: Posterize clamps its shift at 0
(see `posterize`). The reference's other quirks are kept on purpose, each
with a comment: Solarize is a no-op for M >= 10, the four enhance ops are
the identity at M = 5, and Contrast blends towards a grey of H*W/256
rather than the mean (tensorflow/tpu#825).
"""

import functools

import tensorflow as tf

from noisy_student_tf.data import augment_ops
from noisy_student_tf.data import registry

# The reference's `_MAX_LEVEL`: level = magnitude / MAX_LEVEL.
MAX_LEVEL = 10.0
# Fill value for pixels uncovered by geometric ops and for Cutout.
REPLACE = 128

# Pure per-op functions, re-exported so tests and users find them here.
autocontrast = augment_ops.autocontrast
equalize = augment_ops.equalize
invert = augment_ops.invert
posterize = augment_ops.posterize
solarize = augment_ops.solarize
solarize_add = augment_ops.solarize_add
color = augment_ops.color
contrast = augment_ops.contrast
brightness = augment_ops.brightness
sharpness = augment_ops.sharpness
blend = augment_ops.blend
rotate = augment_ops.rotate
shear_x = augment_ops.shear_x
shear_y = augment_ops.shear_y
translate_x = augment_ops.translate_x
translate_y = augment_ops.translate_y
cutout = augment_ops.cutout

NAME_TO_FUNC = {
    "AutoContrast": autocontrast,
    "Equalize": equalize,
    "Invert": invert,
    "Rotate": rotate,
    "Posterize": posterize,
    "Solarize": solarize,
    "Color": color,
    "Contrast": contrast,
    "Brightness": brightness,
    "Sharpness": sharpness,
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
    "SolarizeAdd": solarize_add,
    "Cutout": cutout,
}

# noisystudent's order: Cutout last so `cutout_op=False` just drops it.
# The order only maps the drawn index to an op; the draw is uniform.
RANDAUGMENT_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize",
    "Solarize", "Color", "Contrast", "Brightness", "Sharpness",
    "ShearX", "ShearY", "TranslateX", "TranslateY", "SolarizeAdd",
    "Cutout",
)

# Ops whose argument gets a random sign (the reference's
# `_randomly_negate_tensor`).
SIGNED_OPS = frozenset(
    ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"))
# Ops that take the fill value as their last argument.
_FILLING_OPS = frozenset(
    ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout"))


def _enhance_factor(level):
    # At M=5 this is exactly 1.0, so Color/Contrast/Brightness/Sharpness
    # are the identity at the SVHN magnitude: the reference's semantics.
    return level * 1.8 + 0.1


def level_to_arg(magnitude, cutout_const=40, translate_const=100):
    """The reference's table from magnitude to each op's arguments.

    Computed in Python floats with the reference's expression order
    (`(M / 10) * const`), so every `int()` truncation matches it.

    Args:
      magnitude: RandAugment M (any non-negative number; >10 extrapolates).
      cutout_const: Cutout pad at M=10 (40 ImageNet, image_size//8 SVHN).
      translate_const: translation in pixels at M=10 (100 ImageNet,
        image_size//8 SVHN).

    Returns:
      A dict op name -> tuple of positional arguments after the image,
      without the random sign of `SIGNED_OPS` and without the fill value.
    """
    level = float(magnitude) / MAX_LEVEL
    enhance = (_enhance_factor(level),)
    return {
        "AutoContrast": (),
        "Equalize": (),
        "Invert": (),
        "Rotate": (level * 30.0,),
        # int(4 * level) > 8 for M >= 23; `posterize` clamps the shift.
        "Posterize": (int(level * 4),),
        # int(256 * level) >= 256 for M >= 10, where Solarize is a no-op:
        # the reference's semantics, kept (Solarize weakens as M grows).
        "Solarize": (int(level * 256),),
        "SolarizeAdd": (int(level * 110),),
        "Color": enhance,
        "Contrast": enhance,
        "Brightness": enhance,
        "Sharpness": enhance,
        "ShearX": (level * 0.3,),
        "ShearY": (level * 0.3,),
        "TranslateX": (level * float(translate_const),),
        "TranslateY": (level * float(translate_const),),
        "Cutout": (int(level * cutout_const),),
    }


def _random_sign(value):
    # The reference draws floor(U + 0.5) and negates when it is 0; this is
    # the same fair coin.
    return tf.where(tf.random.uniform([]) < 0.5, -value, value)


def _make_branch(name, args, replace):
    func = NAME_TO_FUNC[name]

    def branch(image):
        call_args = list(args)
        if name in SIGNED_OPS:
            call_args[0] = _random_sign(tf.constant(args[0], tf.float32))
        if name in _FILLING_OPS:
            call_args.append(replace)
        return func(image, *call_args)

    return branch


def _check_image(image):
    if image.dtype != tf.uint8:
        raise ValueError(
            f"RandAugment expects a uint8 image, got {image.dtype}; apply "
            "it before normalize/value_range.")
    if image.shape.rank is not None and image.shape[-1] not in (1, 3):
        raise ValueError(
            "RandAugment expects a static channel count of 1 or 3, got "
            f"shape {image.shape}; decode with an explicit `channels=`.")


def distort_image_with_randaugment(
        image, num_layers, magnitude, cutout_const=40, translate_const=100,
        cutout_op=True, replace=REPLACE, exclude=()):
    """Applies RandAugment to one image.

    The reference also draws a probability U(0.2, 0.8) per op and never
    uses it (the op is always applied); we do not draw it.

    Args:
      image: uint8 `[H, W, C]`, C static and in {1, 3}.
      num_layers: N, the number of ops applied in sequence.
      magnitude: M, shared by all ops.
      cutout_const: see `level_to_arg`.
      translate_const: see `level_to_arg`.
      cutout_op: include Cutout among the ops (noisystudent's
        `--cutout_op`; the TPU code always includes it).
      replace: fill value for geometric ops and Cutout.
      exclude: op names (of `RANDAUGMENT_OPS`) never drawn; the others
        keep equal odds.

    Returns:
      The augmented uint8 image, with the input's static shape.

    Raises:
      ValueError: non-uint8 image, bad channel count, or bad `exclude`.
    """
    image = tf.convert_to_tensor(image)
    _check_image(image)
    names = _op_names(cutout_op, exclude)
    args = level_to_arg(magnitude, cutout_const, translate_const)
    branches = [_make_branch(name, args[name], replace) for name in names]
    static_shape = image.shape
    for layer in range(num_layers):
        with tf.name_scope(f"randaug_layer_{layer}"):
            index = tf.random.uniform([], maxval=len(names), dtype=tf.int32)
            # switch_case runs only the drawn op; the reference's chain of
            # 16 tf.conds does the same with a larger graph.
            image = tf.switch_case(
                index, [functools.partial(b, image) for b in branches])
            image.set_shape(static_shape)
    return image


def _op_names(cutout_op, exclude):
    unknown = sorted(set(exclude) - set(RANDAUGMENT_OPS))
    if unknown:
        raise ValueError(f"unknown RandAugment op(s) {unknown} in exclude; "
                         f"valid: {', '.join(RANDAUGMENT_OPS)}")
    names = [name for name in RANDAUGMENT_OPS
             if name not in exclude and (cutout_op or name != "Cutout")]
    if not names:
        raise ValueError("exclude leaves no RandAugment op to draw")
    return names


def distort_batch_with_randaugment(images, num_layers, magnitude, **kwargs):
    """Applies RandAugment to a batch, drawing ops independently per image.

    Args:
      images: uint8 `[B, H, W, C]`.
      num_layers: N.
      magnitude: M.
      **kwargs: further arguments of `distort_image_with_randaugment`.

    Returns:
      The augmented uint8 batch.
    """
    images = tf.convert_to_tensor(images)
    return tf.map_fn(
        lambda im: distort_image_with_randaugment(
            im, num_layers, magnitude, **kwargs),
        images, fn_output_signature=tf.TensorSpec(images.shape[1:], tf.uint8))


@registry.register("randaug")
@registry.in_key_out_key()
def randaug_op(num_layers=2, magnitude=10, cutout_const=40,
               translate_const=100, cutout_op=True, fill=REPLACE,
               exclude=()):
    """pp op `randaug(N, M)`: reference RandAugment on a uint8 image.

    Args:
      num_layers: N, ops per image.
      magnitude: M; level = M / 10.
      cutout_const: Cutout pad at M=10 (40 ImageNet; 4 for SVHN at 32 px).
      translate_const: translation at M=10 (100 ImageNet; 4 for SVHN).
      cutout_op: whether Cutout is among the ops.
      fill: value of pixels uncovered by geometric ops and of Cutout (the
        reference's 128; a black-background data set such as Fashion-MNIST
        wants 0, or grey borders become a cue absent at test time).
      exclude: op names never drawn, e.g. `("Invert", "SolarizeAdd")`
        where they are not label-preserving for the data.

    Returns:
      A function from a uint8 image (or batch) to its augmented version.

    Raises:
      ValueError: negative or non-integer N, or negative M.
    """
    if not isinstance(num_layers, int) or num_layers < 0:
        raise ValueError(f"num_layers must be an int >= 0, got {num_layers}")
    if not isinstance(magnitude, (int, float)) or magnitude < 0:
        raise ValueError(f"magnitude must be a number >= 0, got {magnitude}")
    if not isinstance(fill, int) or not 0 <= fill <= 255:
        raise ValueError(f"fill must be an int in [0, 255], got {fill!r}")
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    _op_names(cutout_op, exclude)  # bad names fail when the string is built
    kwargs = dict(cutout_const=cutout_const, translate_const=translate_const,
                  cutout_op=cutout_op, replace=fill, exclude=exclude)

    def apply(image):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 4:
            return distort_batch_with_randaugment(
                image, num_layers, magnitude, **kwargs)
        return distort_image_with_randaugment(
            image, num_layers, magnitude, **kwargs)

    return apply
