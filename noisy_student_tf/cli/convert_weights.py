r"""Converts released checkpoints into a Keras `.keras` model file.

EfficientNet / Noisy Student: a tensorflow/tpu TF1 checkpoint (directory or
`.../model.ckpt` prefix), EMA weights by default. MLP-Mixer: a vit_jax
`.npz`. For example:

  python scripts/convert_weights.py --model=efficientnet_b0 \
      --checkpoint=noisy_student_efficientnet-b0 \
      --output=weights/noisy_student_efficientnet_b0.keras

Prints one summary line; on a bad path, name or shape exits non-zero with a
one-line `error: ...` message.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import tensorflow as tf  # noqa: E402

import efficientnet  # noqa: E402
from efficientnet import convert as efficientnet_convert  # noqa: E402
from noisy_student_tf import models  # noqa: E402

_MODEL = flags.DEFINE_string(
    "model", None, "Registry name, e.g. efficientnet_b0 or mixer_b16.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "TF1 checkpoint directory or prefix (EfficientNet), or .npz (Mixer).")
_OUTPUT = flags.DEFINE_string("output", None, "Destination .keras file.")
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", 1000, "Logits width of the built model.")
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", None, "Square input resolution; default: the variant's.")
_NO_EMA = flags.DEFINE_bool(
    "no_ema", False, "EfficientNet: load raw weights, not EMA shadows.")
_SKIP_HEAD = flags.DEFINE_bool(
    "skip_head", False,
    "Keep a freshly initialised classifier (another --num_classes).")
_MODEL_SCOPE = flags.DEFINE_string(
    "model_scope", None,
    "EfficientNet: checkpoint scope; default: detected (efficientnet-b0).")
_WIDTH = flags.DEFINE_float(
    "width_coefficient", None, "EfficientNet: override the table width.")
_DEPTH = flags.DEFINE_float(
    "depth_coefficient", None, "EfficientNet: override the table depth.")


def _save_atomically(model, output):
    """Saves to a temporary `.keras` beside `output`, then renames."""
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=".tmp-", suffix=".keras", dir=directory)
    os.close(handle)
    # mkstemp creates 0600; give the result the usual umask permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        model.save(temporary)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def convert_weights(model_name, checkpoint, output, num_classes=1000,
                    input_size=None, prefer_ema=True, include_head=True,
                    model_scope=None, **overrides):
    """Builds `model_name`, loads `checkpoint` into it, saves `output`.

    Args:
      model_name: a `noisy_student_tf.models` registry name.
      checkpoint: TF1 checkpoint (EfficientNet) or `.npz` (Mixer) path.
      output: destination path ending in `.keras`.
      num_classes: logits width.
      input_size: square input resolution; None for the variant's.
      prefer_ema: EfficientNet: read EMA shadows where present.
      include_head: load the checkpoint's classifier.
      model_scope: EfficientNet: checkpoint scope; None to detect it.
      **overrides: `create_model` overrides; None values are dropped.

    Returns:
      A one-line summary.

    Raises:
      ValueError: bad name, flags, or checkpoint contents.
      FileNotFoundError: no checkpoint at `checkpoint`.
    """
    if not output.endswith(".keras"):
        raise ValueError(f"--output must end in .keras, got {output!r}")
    is_efficientnet = model_name in efficientnet.VARIANTS
    if not is_efficientnet and (not prefer_ema or model_scope):
        raise ValueError(
            "--no_ema and --model_scope apply to EfficientNet only")
    input_shape = (input_size, input_size, 3) if input_size else None
    model = models.create_model(
        model_name, num_classes=num_classes, input_shape=input_shape,
        **overrides)
    if is_efficientnet:
        report = efficientnet_convert.load_tf1_checkpoint(
            model, checkpoint, model_scope=model_scope,
            prefer_ema=prefer_ema, include_head=include_head)
        loaded = str(report)
    else:
        # Imported here so EfficientNet conversion never depends on it.
        from mixer import convert as mixer_convert

        keys = mixer_convert.load_vit_jax_npz(
            model, checkpoint, include_head=include_head)
        loaded = f"loaded {len(keys)} arrays"
    _save_atomically(model, output)
    return f"{model_name}: {loaded} from {checkpoint} -> {output}"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        summary = convert_weights(
            _MODEL.value, _CHECKPOINT.value, _OUTPUT.value,
            num_classes=_NUM_CLASSES.value, input_size=_INPUT_SIZE.value,
            prefer_ema=not _NO_EMA.value, include_head=not _SKIP_HEAD.value,
            model_scope=_MODEL_SCOPE.value,
            width_coefficient=_WIDTH.value, depth_coefficient=_DEPTH.value)
    except (ValueError, OSError, tf.errors.OpError) as error:
        # One line for the user, not a stack trace.
        message = " ".join(str(error).split("\n"))
        raise SystemExit(f"error: {message}") from None
    print(summary)


def run():
    """Console-script entry point (setup.py)."""
    from noisy_student_tf.cli import script_utils

    script_utils.use_doc_of(main)
    flags.mark_flags_as_required(["model", "checkpoint", "output"])
    app.run(main)


if __name__ == "__main__":
    run()
