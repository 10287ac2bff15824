"""The import graph: a library that never imports upward, and no cycles.

Read from the source with `ast` (function-level imports included), so a
hidden arrow inside a function counts like one at the top of a file.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("noisy_student_tf", "efficientnet", "mixer")
# Layers above the library: the orchestration and the binaries.
UPPER = ("noisy_student_tf.experiment", "noisy_student_tf.cli")
# Optional extras (setup.py extras_require) and heavy single-use tools:
# the only imports a library function may defer.
OPTIONAL = ("apache_beam", "imagecorruptions", "PIL", "cv2")
# Deliberate deferrals, each with its reason at the import: the NumPy-only
# Fashion-MNIST reader (used by the corruption oracle) would otherwise pull
# in tensorflow_datasets and TensorFlow (~4.5 s) for callers that need
# neither.
# efficientnet/ is backend-neutral Keras: its fused batch norm imports
# TensorFlow only when running on the TensorFlow backend.
DEFERRED = {("noisy_student_tf.data.fashion_mnist", "tensorflow_datasets"),
            ("efficientnet.blocks", "tensorflow")}
MAX_LINES = 400


def _modules():
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _resolve(name):
    """The longest module name of ours that `name` starts with."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name, path):
    """(target module of ours or external name, is function-local)."""
    tree = ast.parse(path.read_text())
    local = {id(node) for function in ast.walk(tree)
             if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(function)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import sub` imports the submodule, not just pkg.
            targets = [f"{base}.{alias.name}" if _resolve(
                f"{base}.{alias.name}") == f"{base}.{alias.name}" else base
                for alias in node.names]
        else:
            continue
        for target in targets:
            yield _resolve(target) or target, id(node) in local


GRAPH = {name: sorted({t for t, _ in _imports(name, path) if t in MODULES
                       and t != name})
         for name, path in MODULES.items()}


def _is_library(name):
    return name.startswith("noisy_student_tf") and not name.startswith(UPPER)


def _cycles():
    """Strongly connected components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    # The test would pass vacuously if it found nothing.
    assert "noisy_student_tf.experiment.noisy_student" in GRAPH
    assert "noisy_student_tf.experiment.stages" in GRAPH[
        "noisy_student_tf.experiment.noisy_student"]


def test_no_import_cycles():
    assert _cycles() == []


def test_the_library_never_imports_the_layers_above():
    upward = [(name, target) for name, targets in GRAPH.items()
              if _is_library(name) for target in targets
              if target.startswith(UPPER)]
    assert upward == []


@pytest.mark.parametrize("family", ["efficientnet", "mixer"])
def test_model_families_import_nothing_of_the_package(family):
    found = [(name, target) for name, targets in GRAPH.items()
             if name.split(".")[0] == family for target in targets
             if target.startswith("noisy_student_tf")]
    assert found == []


def test_function_level_imports_only_for_optional_dependencies():
    deferred = [(name, target) for name, path in MODULES.items()
                if not name.startswith(UPPER)
                for target, local in _imports(name, path)
                if local and not target.startswith(OPTIONAL)
                and (name, target.split(".")[0]) not in DEFERRED]
    assert deferred == []


def test_library_modules_stay_under_400_lines():
    long = {name: n for name, path in MODULES.items()
            if not name.startswith(UPPER)
            and (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_driver_is_algorithm_1_only():
    path = MODULES["noisy_student_tf.experiment.noisy_student"]
    assert len(path.read_text().splitlines()) <= 120
