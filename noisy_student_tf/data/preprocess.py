"""Builds preprocessing functions from big_vision-style pp strings.

A pp string is a '|'-separated chain of registered ops, each written like a
Python call with literal arguments:

    decode(channels=1)|pad_to_size(32)|flip_lr|randaug(2, 9)|
    normalize("fashion_mnist")|keep("image", "label")

Train, eval and serving pipelines are all built from such strings, so the
clean teacher pipeline and the noised student pipeline differ by visible
tokens. The string is parsed with `ast` (a chain of calls joined by `|` is
a valid Python expression) and every argument must be a literal: nothing
is evaluated, and a '|' inside a string argument is handled correctly.
"""

import ast
import inspect

from noisy_student_tf.data import registry


class OpSpec:
    """One parsed op of a pp string: its name and literal arguments.

    `str(spec)` is a pp-string token that parses back to an equal spec, so
    callers can edit a parsed pp string and join the tokens with '|'.
    """

    def __init__(self, name, args, kwargs):
        self.name = name
        self.args = args
        self.kwargs = kwargs

    def __eq__(self, other):
        return isinstance(other, OpSpec) and (
            (self.name, self.args, self.kwargs)
            == (other.name, other.args, other.kwargs))

    def __hash__(self):
        return hash((self.name, self.args))

    def __str__(self):
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"

    __repr__ = __str__


def _flatten_pipe(node):
    """Left-to-right operands of a chain `a | b | c` (left-associative)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_pipe(node.left) + _flatten_pipe(node.right)
    return [node]


def _literal(node, op_name, pp_string):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"Argument {ast.unparse(node)!r} of op {op_name!r} is not a "
            f"Python literal, in pp string {pp_string!r}.") from None


def _parse_op(node, pp_string):
    if isinstance(node, ast.Name):
        return OpSpec(node.id, (), {})
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                kw.arg is None for kw in node.keywords):
            raise ValueError(
                f"Op {name!r} uses * or ** arguments, which pp strings do "
                f"not allow, in pp string {pp_string!r}.")
        args = tuple(_literal(a, name, pp_string) for a in node.args)
        kwargs = {kw.arg: _literal(kw.value, name, pp_string)
                  for kw in node.keywords}
        return OpSpec(name, args, kwargs)
    raise ValueError(
        f"Cannot parse op {ast.unparse(node)!r}: expected `name` or "
        f"`name(literal args)`, in pp string {pp_string!r}.")


def parse_pp_string(pp_string):
    """Parses a pp string into op specs without looking the ops up.

    Args:
      pp_string: the pp string; empty or whitespace-only means no ops.

    Returns:
      A list of `OpSpec` with `name`, `args` (tuple), `kwargs` (dict).

    Raises:
      ValueError: the string is not a '|'-chain of literal-argument calls.
    """
    if not isinstance(pp_string, str):
        raise ValueError(f"pp string must be a str, got {pp_string!r}.")
    # Newlines are allowed for readability in configs.
    source = " ".join(pp_string.split())
    if not source:
        return []
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        raise ValueError(
            f"Cannot parse pp string {pp_string!r}: {e.msg} at column "
            f"{e.offset}.") from None
    return [_parse_op(node, pp_string) for node in _flatten_pipe(tree.body)]


def _build_op(spec, pp_string):
    try:
        factory = registry.get_op(spec.name)
    except ValueError as e:
        raise ValueError(f"{e} In pp string {pp_string!r}.") from None
    try:
        inspect.signature(factory).bind(*spec.args, **spec.kwargs)
    except TypeError as e:
        raise ValueError(
            f"Bad arguments for op {spec!r}: {e}; signature is "
            f"{spec.name}{inspect.signature(factory)}, in pp string "
            f"{pp_string!r}.") from None
    try:
        return factory(*spec.args, **spec.kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"Bad arguments for op {spec!r}: {e}, in pp string "
            f"{pp_string!r}.") from None


def validate_pp_string(pp_string):
    """Checks that a pp string parses and every op accepts its arguments.

    Builds each op (factories only check and store their arguments) but
    runs nothing, so it is cheap enough for config tests.

    Args:
      pp_string: the pp string to check.

    Returns:
      The list of op names in order.

    Raises:
      ValueError: parse error, unknown op, or arguments an op rejects; the
        message names the op and the full pp string.
    """
    specs = parse_pp_string(pp_string)
    for spec in specs:
        _build_op(spec, pp_string)
    return [spec.name for spec in specs]


def get_preprocess_fn(pp_string):
    """Builds the preprocessing function described by a pp string.

    Args:
      pp_string: '|'-separated registered ops, e.g.
        `decode|inception_crop(224)|flip_lr|randaug(2, 15)|
        normalize("imagenet")|keep("image", "label")`.

    Returns:
      `fn(data: dict) -> dict` applying the ops in order; safe to use in
      `tf.data.Dataset.map` and inside `tf.function`.

    Raises:
      ValueError: parse error, unknown op, or arguments an op rejects; the
        message names the op and the full pp string.
    """
    specs = parse_pp_string(pp_string)
    ops = [_build_op(spec, pp_string) for spec in specs]

    def preprocess_fn(data):
        if not isinstance(data, dict):
            raise ValueError(
                f"Preprocessing expects a dict of features, got "
                f"{type(data).__name__}, for pp string {pp_string!r}.")
        for op in ops:
            data = op(data)
        return data

    return preprocess_fn
