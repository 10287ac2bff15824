"""Registry of preprocessing ops, addressed by name from pp strings.

An op is registered as a *factory*: called with the arguments written in
the pp string (`randaug(2, 15)` calls the factory with `2, 15`), it returns
a function `fn(data: dict) -> dict`. Most ops transform one entry of the
data dict; `in_key_out_key` adds big_vision's `key=` / `outkey=` keyword
arguments to such ops so `resize(64, key="mask")` works without each op
repeating the plumbing.

The built-in op modules are listed once in `_BUILTIN_OP_MODULES` and
imported the first time an op is looked up, so the registry is complete no
matter which module a caller imported first.
"""

import functools
import importlib
import inspect
import threading

# The one place that says which modules define built-in ops.
_BUILTIN_OP_MODULES = (
    "noisy_student_tf.data.decode_ops",
    "noisy_student_tf.data.geometry_ops",
    "noisy_student_tf.data.value_ops",
    "noisy_student_tf.data.randaugment",
)

_OPS = {}
_builtins_loaded = False
# Beam's DirectRunner looks ops up from several threads at once; without the
# lock a second thread saw the flag set while the first was still importing
# and found an almost empty registry.
_load_lock = threading.RLock()


def register(name):
    """Decorator registering an op factory under `name`.

    Args:
      name: the identifier used in pp strings; a valid Python name.

    Returns:
      A decorator that registers the factory and returns it unchanged.

    Raises:
      ValueError: `name` is not an identifier or is already registered.
    """
    if not name.isidentifier():
        raise ValueError(f"Op name {name!r} is not a Python identifier.")

    def decorator(factory):
        existing = _OPS.get(name)
        # Re-registering the same function (a module reloaded by a test
        # runner) is harmless; two different ops under one name are not.
        if existing is not None and (
                existing.__qualname__ != factory.__qualname__
                or existing.__module__ != factory.__module__):
            raise ValueError(
                f"Op {name!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}.")
        _OPS[name] = factory
        return factory

    return decorator


def _load_builtins():
    global _builtins_loaded
    if _builtins_loaded:
        return
    # Reentrant: an op module being imported may itself look an op up; the
    # import system then hands back the partly imported module.
    with _load_lock:
        if not _builtins_loaded:
            for module in _BUILTIN_OP_MODULES:
                importlib.import_module(module)
            # Set last, so no thread sees a half-filled registry.
            _builtins_loaded = True


def list_ops():
    """Returns the names of all registered ops, sorted."""
    _load_builtins()
    return sorted(_OPS)


def get_op(name):
    """Returns the factory registered under `name`.

    Args:
      name: an op name as written in a pp string.

    Returns:
      The op factory.

    Raises:
      ValueError: no op is registered under `name`; the message lists the
        known ops.
    """
    _load_builtins()
    if name not in _OPS:
        raise ValueError(
            f"Unknown preprocessing op {name!r}. Known ops: "
            f"{', '.join(sorted(_OPS))}.")
    return _OPS[name]


def in_key_out_key(default_key="image", default_outkey=None):
    """Turns a factory of `fn(value) -> value` into a factory of dict ops.

    The wrapped factory accepts two extra keyword arguments: `key` (which
    entry to read, default `default_key`) and `outkey` (which entry to
    write, default `default_outkey`, or `key` when that is None). Every
    other entry of the data dict passes through untouched.

    Args:
      default_key: the entry read when the pp string gives no `key=`.
      default_outkey: the entry written when the pp string gives no
        `outkey=`; None means "the same as key".

    Returns:
      A decorator for op factories.
    """

    def decorator(factory):
        @functools.wraps(factory)
        def wrapped(*args, key=default_key, outkey=default_outkey, **kwargs):
            value_fn = factory(*args, **kwargs)
            target = key if outkey is None else outkey

            def op(data):
                if key not in data:
                    raise KeyError(
                        f"Op {factory.__name__!r} reads {key!r} but the "
                        f"data has only {sorted(data)}.")
                out = dict(data)
                out[target] = value_fn(data[key])
                return out

            return op

        # Expose key/outkey in the signature so argument checking (see
        # preprocess.validate_pp_string) accepts them.
        signature = inspect.signature(factory)
        params = [p for p in signature.parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD]
        extra = [
            inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY,
                              default=default_key),
            inspect.Parameter("outkey", inspect.Parameter.KEYWORD_ONLY,
                              default=default_outkey),
        ]
        # Keyword-only parameters must follow positional ones.
        positional = [p for p in params
                      if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in params
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        wrapped.__signature__ = signature.replace(
            parameters=positional + keyword + extra)
        return wrapped

    return decorator
