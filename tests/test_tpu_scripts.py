"""scripts/tpu: syntax, required-variable checks, and the gcloud calls.

No TPU or Google Cloud access here: a stub `gcloud` first on PATH records
its arguments, so the real CLI (if installed) is never called.
"""

import os
import subprocess

import pytest

from tests import testing

TPU_DIR = os.path.join(testing.REPO, "scripts", "tpu")
SCRIPTS = ("create_tpu_vm.sh", "install.sh", "run.sh", "teardown.sh")
STUB = """#!/bin/sh
echo "$@" >> "$GCLOUD_LOG"
"""


def _run(script, env, tmp_path):
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    (stub_dir / "gcloud").write_text(STUB)
    (stub_dir / "gcloud").chmod(0o755)
    full_env = {"PATH": f"{stub_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
                "GCLOUD_LOG": str(tmp_path / "gcloud.log"), **env}
    return subprocess.run(
        ["bash", os.path.join(TPU_DIR, script)], env=full_env,
        capture_output=True, text=True, timeout=30, cwd=tmp_path)


def _gcloud_calls(tmp_path):
    log = tmp_path / "gcloud.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("script", SCRIPTS + ("env.sh",))
def test_syntax_and_strict_mode(script):
    path = os.path.join(TPU_DIR, script)
    subprocess.run(["bash", "-n", path], check=True)
    if script != "env.sh":  # sourced by the others.
        assert "set -euo pipefail" in open(path).read()


def test_run_script_calls_the_driver_on_the_tpu():
    text = open(os.path.join(TPU_DIR, "run.sh")).read()
    assert "scripts/noisy_student.py" in text
    assert "--tpu=local" in text
    readme = open(os.path.join(TPU_DIR, "README.md")).read()
    for needle in ("scripts/noisy_student.py", "--tpu", *SCRIPTS,
                   "Could not connect to TPU"):
        assert needle in readme, needle


@pytest.mark.parametrize("script,missing", [
    ("create_tpu_vm.sh", "PROJECT"),
    ("teardown.sh", "PROJECT"),
    ("run.sh", "CONFIG"),
])
def test_missing_variable_is_named(script, missing, tmp_path):
    result = _run(script, {}, tmp_path)
    assert result.returncode == 2
    assert f"error: {missing} is not set" in result.stderr
    assert not _gcloud_calls(tmp_path)


def test_run_needs_workdir(tmp_path):
    result = _run("run.sh", {"CONFIG": "c.py"}, tmp_path)
    assert result.returncode == 2
    assert "error: WORKDIR is not set" in result.stderr


def test_create_and_teardown_call_gcloud(tmp_path):
    env = {"PROJECT": "p", "TPU_NAME": "ns", "ZONE": "z",
           "ACCELERATOR_TYPE": "v4-32", "SPOT": "1"}
    assert _run("create_tpu_vm.sh", env, tmp_path).returncode == 0
    create = _gcloud_calls(tmp_path)[0].split()
    assert create[:5] == ["compute", "tpus", "tpu-vm", "create", "ns"]
    for flag in ("--project=p", "--zone=z", "--accelerator-type=v4-32",
                 "--version=tpu-ubuntu2204-base", "--spot"):
        assert flag in create
    result = _run("teardown.sh", dict(env, YES="1"), tmp_path)
    assert result.returncode == 0
    delete = _gcloud_calls(tmp_path)[-1].split()
    assert delete[:5] == ["compute", "tpus", "tpu-vm", "delete", "ns"]
    assert "--quiet" in delete


def test_install_refuses_a_non_checkout(tmp_path):
    # Run a copy of the script outside a checkout: it must stop before pip.
    fake = tmp_path / "x" / "scripts" / "tpu"
    fake.mkdir(parents=True)
    for name in ("install.sh", "env.sh"):
        (fake / name).write_text(open(os.path.join(TPU_DIR, name)).read())
    result = subprocess.run(
        ["bash", str(fake / "install.sh")], capture_output=True, text=True,
        timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "not a noisy-student-tf checkout" in result.stderr
