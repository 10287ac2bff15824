"""Console scripts: every user-facing program is an entry point that
resolves, runs from another directory, and finds packaged configs there;
scripts/*.py are thin wrappers over the same modules."""

import ast
import glob
import importlib
import os
import shutil
import subprocess
import sys

import pytest

from noisy_student_tf.cli import script_utils
from tests import testing

# Checkout-only tools, not installed as commands.
# Development tools: they run from a checkout (they write results/ and the
# README), not as installed commands.
NOT_INSTALLED = {"benchmark.py", "corruption_oracle.py", "readme_tables.py"}


def console_scripts():
    """{command: "module:function"} read from setup.py (not imported: it
    would run setuptools)."""
    with open(os.path.join(testing.REPO, "setup.py")) as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return dict(entry.replace(" ", "").split("=")
                        for entry in entries)
    raise AssertionError("setup.py has no entry_points")


def console_script(tmp_path, target):
    """The launcher pip writes for an entry point."""
    module, function = target.split(":")
    path = tmp_path / "launcher.py"
    path.write_text(
        "import re\nimport sys\n"
        f"from {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', "
        "sys.argv[0])\n"
        f"    sys.exit({function}())\n")
    return str(path)


def run_elsewhere(args, cwd):
    """Runs Python in `cwd` (not the checkout) with the package importable,
    as after `pip install .`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=testing.REPO)
    return subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_every_user_facing_script_is_an_entry_point_and_a_thin_wrapper():
    scripts = console_scripts()
    modules = {target.split(":")[0] for target in scripts.values()}
    for path in sorted(glob.glob(os.path.join(testing.REPO, "scripts",
                                              "*.py"))):
        name = os.path.basename(path)
        if name in NOT_INSTALLED:
            continue
        module = f"noisy_student_tf.cli.{name[:-3]}"
        assert module in modules, f"scripts/{name} has no console script"
        with open(path) as handle:
            source = handle.read()
        # A wrapper imports the module's run() and does nothing else.
        assert f"from {module} import run" in source, name
        assert len(source.splitlines()) <= 20, name
    for command, target in scripts.items():
        module, function = target.split(":")
        assert command.startswith("noisy-student"), command
        assert callable(getattr(_import_alone(module), function)), command


def _import_alone(name):
    """Imports a program module, then forgets its absl flags: the programs
    define the same flag names (--config), which one process rejects."""
    from absl import flags

    module = importlib.import_module(name)
    for flag in flags.FLAGS.get_flags_for_module(module):
        delattr(flags.FLAGS, flag.name)
    return module


def test_help_from_another_directory(tmp_path):
    target = console_scripts()["noisy-student-predict"]
    proc = run_elsewhere([console_script(tmp_path, target), "--help"],
                         tmp_path)
    # absl ends --help with status 1 after printing the usage.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    # The program's own docstring, not the launcher's (which has none).
    assert proc.stdout.startswith("Top-k predictions for a folder")
    assert "--images" in proc.stdout and "--output" in proc.stdout


def test_packaged_config_resolves_from_another_directory(tmp_path,
                                                         monkeypatch):
    config = "noisy_student_tf/configs/fashion_mnist_demo.py"
    monkeypatch.chdir(tmp_path)
    resolved = script_utils.packaged_config(config + ":quick")
    assert resolved == os.path.join(testing.REPO, config) + ":quick"
    assert script_utils.resolve_config_args(["x", "--config", config]) == \
        ["x", "--config", os.path.join(testing.REPO, config)]
    # Other paths, and packaged names that do not exist, are left alone.
    assert script_utils.packaged_config("my.py:a") == "my.py:a"
    missing = "noisy_student_tf/configs/nope.py"
    assert script_utils.packaged_config(missing) == missing
    # End to end: the config loads (the run gets as far as the model).
    target = console_scripts()["noisy-student-evaluate"]
    proc = run_elsewhere([console_script(tmp_path, target),
                          f"--config={config}:quick",
                          f"--model={tmp_path / 'none.keras'}"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert testing.last_line(proc.stderr) == (
        f"error: model file {str(tmp_path / 'none.keras')!r} does not exist")


@pytest.mark.slow
def test_wheel_installs_commands_that_run_anywhere(tmp_path):
    """`pip wheel` + install (no dependencies: they are this venv's), then
    the installed command runs from an empty directory."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    # Built from a copy: setuptools writes build/ and *.egg-info beside it.
    source = tmp_path / "source"
    shutil.copytree(testing.REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-"
         "isolation", "-w", str(wheel_dir), str(source)],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheel_dir.glob("noisy_student_tf-*.whl"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target",
         str(target), str(wheel)], capture_output=True, text=True,
        timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    for command in console_scripts():
        assert (target / "bin" / command).exists(), command
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(target))
    proc = subprocess.run(
        [str(target / "bin" / "noisy-student-evaluate"),
         "--config=noisy_student_tf/configs/fashion_mnist_demo.py:quick",
         f"--model={empty / 'none.keras'}"],
        cwd=empty, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "does not exist" in testing.last_line(proc.stderr)
    # The installed copy ran, not the checkout.
    check = subprocess.run(
        [sys.executable, "-c", "import noisy_student_tf; "
         "print(noisy_student_tf.__file__)"], cwd=empty, env=env,
        capture_output=True, text=True)
    assert check.stdout.startswith(str(target)), check.stdout


def test_helpshort_of_a_wrapper_lists_the_programs_flags():
    proc = testing.run_script(["scripts/pseudo_label.py", "--helpshort"])
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    for flag in ("--config", "--shard_index", "--engine", "--beam_options"):
        assert flag in proc.stdout, flag
