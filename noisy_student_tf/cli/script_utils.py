"""Shared by the absl binaries: runtime flags and one-line errors.

Known failures (bad data, bad checkpoint, NaN loss, missing path, bad
config) end the program with `error: <one line>` and exit status 1 instead
of a stack trace; `--debug` shows the trace. Installed as console scripts,
the binaries run from any directory: a `--config=noisy_student_tf/configs/
NAME.py[:arg]` that does not exist there is the installed package's file.
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

_DEBUG = flags.DEFINE_bool("debug", False, "Show full stack traces.")
_STRATEGY = flags.DEFINE_string(
    "strategy", None, "Override the strategy: auto, default, mirrored, "
    "multi_worker (reads TF_CONFIG) or tpu.")
_TPU = flags.DEFINE_string("tpu", None, "TPU name ('local' on a TPU VM); "
                           "implies --strategy=tpu.")


def define_engine_flags(module_name):
    """--engine / --beam_options of the labeling and filter programs,
    defined as `module_name`'s own flags."""
    engine = flags.DEFINE_enum(
        "engine", None, ["local", "beam"],
        "labeling.engine: local (this process) or beam (Apache Beam "
        "pipeline; pip install 'noisy-student-tf[beam]'). Default: the "
        "config's.", module_name=module_name)
    options = flags.DEFINE_string(
        "beam_options", None, "labeling.beam_options: Beam pipeline "
        "options, e.g. '--runner=DirectRunner --direct_num_workers=2'.",
        module_name=module_name)
    return engine, options


def apply_engine_flags(config, engine_flags):
    """Puts the given --engine / --beam_options into `config.labeling`."""
    engine, options = engine_flags
    if engine.value:
        config.labeling.engine = engine.value
    if options.value is not None:
        config.labeling.beam_options = options.value
    return config


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

    if isinstance(error, tf.errors.OpError):
        from noisy_student_tf.data import errors

        # Drops TF's "{{function_node ...}}", "[[node]]" and "[Op:...]".
        return errors.informative_line(error)
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip()]
    if lines and lines[0] == "in user code:":
        # Raised while tracing a tf.function: autograph lists the user
        # frames, then "SomeError: <the message>".
        lines = [line.split(": ", 1)[1] for line in lines
                 if re.match(r"^\w+(Error|Exception): ", line)][-1:] or lines
    for line in lines:
        if "assertion failed" in line or "corrupt image" in line:
            return line
        if "[Errno" in line:  # e.g. a --config file that does not exist
            return f"{lines[0]}: {line}"
    return lines[0] if lines else type(error).__name__


def _unknown_key_message(error):
    """ConfigDict's unknown-key error (a quoted repr) in plain words."""
    text = str(error).replace("\\n", " ").replace("\\'", "'")
    key = re.search(r"'([^'\s]+)'", text)
    if not key:
        return "unknown config key " + " ".join(text.strip("'\"").split())
    hint = re.search(r'Did you mean "([^"]+)"', text)
    return (f"unknown config key {key.group(1)!r}"
            + (f" (did you mean {hint.group(1)!r}?)" if hint else ""))


def _known_errors():
    import tensorflow as tf

    return (ValueError, KeyError, OSError, RuntimeError, tf.errors.OpError)


_CONFIGS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
_CONFIG_PREFIX = "noisy_student_tf/configs/"


def packaged_config(value):
    """`noisy_student_tf/configs/NAME.py[:arg]` as the installed package's
    file when no such path exists from here; anything else unchanged."""
    path, colon, arg = value.partition(":")
    if not path.startswith(_CONFIG_PREFIX) or os.path.exists(path):
        return value
    installed = os.path.join(_CONFIGS_DIR, path[len(_CONFIG_PREFIX):])
    return installed + colon + arg if os.path.exists(installed) else value


def resolve_config_args(argv):
    """`argv` with `--config=` values passed through `packaged_config`."""
    out = list(argv)
    for index, arg in enumerate(out):
        if arg.startswith("--config="):
            out[index] = "--config=" + packaged_config(arg[len("--config="):])
        elif arg == "--config" and index + 1 < len(out):
            out[index + 1] = packaged_config(out[index + 1])
    return out


def use_doc_of(main):
    """absl's --help prints `__main__`'s docstring and --helpshort its key
    flags: under a console script or a scripts/ wrapper that is not the
    program's module, so show those of the module that defines `main`."""
    module = sys.modules.get(main.__module__)
    if module is not None and module.__doc__:
        sys.modules["__main__"].__doc__ = module.__doc__
    # --helpshort lists the key flags of the program run (sys.argv[0]):
    # the wrapper's, so give it the defining module's.
    for flag in flags.FLAGS.get_key_flags_for_module(main.__module__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def add_override_fields(argv, flag_values=None):
    """Lets --config.<block>.KEY=... name any known key (common.py).

    config_flags loads the config file and then applies overrides to the
    fields it has; the loaded config first gets an empty, typed field for
    every known key an override names (`common.add_override_fields`).

    Args:
      argv: the command line, before flags are parsed.
      flag_values: the FlagValues holding `--config` (default absl's).
    """
    flag_values = flag_values or flags.FLAGS
    if "config" not in flag_values:
        return
    paths = [arg[len("--config."):].split("=", 1)[0] for arg in argv[1:]
             if arg.startswith("--config.")]
    parser = flag_values["config"].parser
    load = parser.parse

    def load_and_add(argument):
        from noisy_student_tf.configs import common

        return common.add_override_fields(load(argument), paths)

    if paths:
        parser.parse = load_and_add


def _config_cause(error):
    """The exception a config file raised, when absl wrapped it."""
    # absl and ml_collections each wrap it (with a traceback in the text):
    # the innermost exception of the chain is the config's own.
    cause = error.__cause__ or error.__context__
    while cause is not None and (cause.__cause__ or cause.__context__):
        cause = cause.__cause__ or cause.__context__
    return cause


def run(main):
    """`app.run(main)` with known errors reported on one line."""
    use_doc_of(main)

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except _known_errors() as error:
            if _DEBUG.value:
                raise
            sys.stderr.write(f"error: {one_line(error)}\n")
            # Keep the error the last line: TF warns at exit about objects
            # a failed run left half-done (e.g. an unmatched checkpoint).
            logging.set_verbosity(logging.ERROR)
            sys.exit(1)

    def parse_flags(argv):
        argv = resolve_config_args(argv)
        add_override_fields(argv)
        # Bad --config files or --config.x=y overrides fail while flags are
        # parsed, before `wrapped` runs: report those on one line too.
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            # A config file that raised (not a bad override value).
            cause = _config_cause(error) if str(error).startswith(
                "flag --config=") else None
            if cause is None:
                sys.stderr.write(
                    f"error: {error} (--helpshort lists flags)\n")
            else:  # a config file's get_config raised: its own line.
                sys.stderr.write(
                    f"error: bad flag or config: {one_line(cause)}\n")
            sys.exit(2)
        except Exception as error:  # config files raise anything.
            if "--debug" in argv:
                raise
            message = one_line(error)
            if isinstance(error, (AttributeError, KeyError)):
                # ConfigDict reports unknown keys as a quoted repr.
                message = _unknown_key_message(error)
            sys.stderr.write(f"error: bad flag or config: {message}\n")
            sys.exit(2)

    app.run(wrapped, flags_parser=parse_flags)
