"""scripts/device_check.sh: device detection, mode choice, dry run.

No accelerator here: the CPU path is detected for real; the GPU/TPU
branches are checked through DEVICE_CHECK_DEVICE (what detection would
print there). The slow test runs the whole check with --smoke.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import testing

SCRIPT = os.path.join(testing.REPO, "scripts", "device_check.sh")


def run_check(*args, device=None, timeout=120):
    env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("DEVICE_CHECK_DEVICE", None)
    if device:
        env["DEVICE_CHECK_DEVICE"] = device
    return subprocess.run(["bash", SCRIPT, *args], cwd=testing.REPO,
                          capture_output=True, text=True, env=env,
                          timeout=timeout)


def modes_line(stdout):
    return next(line for line in stdout.splitlines()
                if line.startswith("training modes"))


def test_dry_run_detects_this_cpu_and_lists_the_command():
    proc = run_check("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "device: CPU" in proc.stdout
    assert modes_line(proc.stdout).endswith(
        "none:off,none:xla,bf16:off")
    assert "skipped: fp16 on CPU" in proc.stdout
    assert ("scripts/benchmark.py --quick --sections=efficientnet_train,"
            "training_modes,pseudo_label") in proc.stdout


@pytest.mark.parametrize("device,modes,skipped", [
    ("GPU 9.0 H100", "none:off,none:xla,fp16:off,fp16:xla,bf16:off,bf16:xla",
     []),
    ("GPU 7.5 Tesla_T4", "none:off,none:xla,fp16:off,fp16:xla", ["bf16"]),
    ("GPU 6.0 P100", "none:off,none:xla", ["fp16", "bf16"]),
])
def test_gpu_modes_follow_compute_capability(device, modes, skipped):
    proc = run_check("--dry-run", device=device)
    assert proc.returncode == 0, proc.stderr
    assert modes_line(proc.stdout).endswith(modes)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("skipped")]
    assert [l.split()[1] for l in lines] == skipped


def test_tpu_is_named_and_skipped_with_a_reason():
    proc = run_check("--dry-run", device="TPU - TPU")
    assert proc.returncode == 0
    assert "skipped: TPU training and labeling rows" in proc.stdout


def test_unknown_argument_fails_with_one_line():
    proc = run_check("--quick")
    assert proc.returncode == 2
    assert proc.stderr.strip() == \
        "error: unknown argument '--quick' (see --help)"


@pytest.mark.slow
def test_smoke_run_prints_training_and_labeling_rows(tmp_path):
    output = tmp_path / "check.json"
    proc = run_check("--smoke", f"--output={output}", timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(output.read_text())
    assert set(report["sections"]) == {
        "efficientnet_train", "training_modes", "pseudo_label"}
    names = [r["name"] for r in report["sections"]["training_modes"]["rows"]]
    assert names == [f"Trainer loop, {p}, XLA {x}" for p, x in (
        ("none", "off"), ("none", "on"), ("bf16", "off"))]
    assert "device_check:" in proc.stdout
