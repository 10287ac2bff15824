"""Shared by the absl binaries: runtime flags and one-line errors.

Known failures (bad data, bad checkpoint, NaN loss, missing path, bad
config) end the program with `error: <one line>` and exit status 1 instead
of a stack trace; `--debug` shows the trace.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Make the repository importable when run as `python scripts/x.py`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

_DEBUG = flags.DEFINE_bool("debug", False, "Show full stack traces.")
_STRATEGY = flags.DEFINE_string(
    "strategy", None, "Override the strategy: auto, default, mirrored, "
    "multi_worker (reads TF_CONFIG) or tpu.")
_TPU = flags.DEFINE_string("tpu", None, "TPU name ('local' on a TPU VM); "
                           "implies --strategy=tpu.")


def apply_runtime_flags(config):
    """Puts --strategy/--tpu into the experiment's training defaults."""
    target = config.defaults if "defaults" in config else config
    if _TPU.value:
        target.tpu = _TPU.value
        target.strategy = "tpu"
    if _STRATEGY.value:
        target.strategy = _STRATEGY.value
    return config


def one_line(error):
    """The informative line of an exception (TF errors are verbose)."""
    import tensorflow as tf

    text = error.message if isinstance(error, tf.errors.OpError) \
        else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed" in line or "corrupt image" in line:
            return line
        if "[Errno" in line:  # e.g. a --config file that does not exist
            return f"{lines[0]}: {line}"
    return lines[0] if lines else type(error).__name__


def _known_errors():
    import tensorflow as tf

    return (ValueError, KeyError, OSError, RuntimeError, tf.errors.OpError)


def run(main):
    """`app.run(main)` with known errors reported on one line."""

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except _known_errors() as error:
            if _DEBUG.value:
                raise
            sys.stderr.write(f"error: {one_line(error)}\n")
            sys.exit(1)

    def parse_flags(argv):
        # Bad --config files or --config.x=y overrides fail while flags are
        # parsed, before `wrapped` runs: report those on one line too.
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            sys.stderr.write(f"error: {error}\nPass --helpshort for help.\n")
            sys.exit(2)
        except Exception as error:  # config files raise anything.
            if "--debug" in argv:
                raise
            message = one_line(error)
            if isinstance(error, (AttributeError, KeyError)):
                # ConfigDict reports unknown keys as a quoted repr.
                message = "unknown config key " + " ".join(
                    str(error).replace("\\n", " ").replace("\\'", "'")
                    .strip("'\"").split())
            sys.stderr.write(f"error: bad flag or config: {message}\n")
            sys.exit(2)

    app.run(wrapped, flags_parser=parse_flags)
