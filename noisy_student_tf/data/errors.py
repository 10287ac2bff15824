"""The data layer's exception, and reading TF's error text about input.

`DataError` is what every source, listing and diagnosis raises for bad
input (missing path, empty glob, corrupt or invalid record). Callers
usually catch it as `sources.DataError`, the name the public entry points
(`sources.make_source`, `sources.count_records`) document.

Inside tf.data a failing op cannot be caught and re-worded, so the rest of
this module recognises input problems by the text TF puts in its errors:
`is_corrupt_image_error` for damaged images, `informative_line` for the
one line of a long graph error that says what went wrong.
"""

import re

CORRUPT_IMAGE = "corrupt image"
SKIP_HINT = "; skip_corrupt=True drops such records"

# Messages of TF's image decoders for damaged data. Inside tf.data a
# decoder error cannot be caught and re-worded, so data-level corruption
# the header checks miss surfaces with one of these texts.
_DECODER_ERRORS = (
    CORRUPT_IMAGE, "Invalid PNG data", "Invalid JPEG data",
    "jpeg::Uncompress failed", "Unknown image file format",
    "Failed to initialize decoder", "Invalid GIF data",
)
# Lines that name the problem, ahead of the graph's bookkeeping lines.
_PROBLEM_KEYS = ("assertion failed", CORRUPT_IMAGE, "truncated record",
                 "corrupted record")
_NOISE_PREFIXES = ("Graph execution error", "Detected at node", "<stack",
                   "[[")


class DataError(ValueError):
    """Bad input data: missing path, empty glob, corrupt or invalid record."""


def is_corrupt_image_error(error):
    """Whether an exception (or message) reports an undecodable image.

    Args:
      error: a `tf.errors.OpError` or a message string.

    Returns:
      True for the `decode` op's own "corrupt image" errors and for TF
      decoder errors about damaged data.
    """
    message = getattr(error, "message", None) or str(error)
    return any(text in message for text in _DECODER_ERRORS)


def informative_line(error):
    """The line of a TF error that says what went wrong, without noise."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((text for text in lines
                 if any(key in text for key in _PROBLEM_KEYS)), None)
    if line is None:
        line = next((text for text in lines
                     if not text.startswith(_NOISE_PREFIXES)),
                    lines[0] if lines else type(error).__name__)
    line = re.sub(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]", "", line)
    # "Error in user-defined function passed to X transformation with
    # iterator: Iterator::Root::...: <the real message>".
    line = re.sub(r"^.*Iterator::\S+: ", "", line)
    line = re.sub(r"\s*name:\s*$", "", line.strip())
    return " ".join(line.split()).rstrip(" '\"") or type(error).__name__


def corrupt_image_problem(error):
    """ "corrupt image (<decoder's reason>); <hint>" from a decode error."""
    detail = re.sub(r"^(assertion failed: )?\[?corrupt image: ?", "",
                    informative_line(error)).strip("[] ")
    return f"corrupt image ({detail}){SKIP_HINT}"
