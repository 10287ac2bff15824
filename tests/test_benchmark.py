"""scripts/benchmark.py --smoke: every section runs and reports its ratios.

Timings are never asserted (shared machines are noisy); this only checks
the plumbing and the JSON layout the README's performance table is
built from. Marked slow: even with tiny models it traces a dozen
functions and starts two labeling subprocesses (~1.5 min on an idle
2-core machine, several on a busy one).
"""

import json

import pytest

from tests import testing

RATIOS = {
    "efficientnet_train": [
        "ours/keras.applications @32", "ours/keras.applications @224",
        "ours/keras.applications @32 (CPU time)",
        "ours/keras.applications @224 (CPU time)",
        "Trainer loop/bare step @32", "Trainer loop/bare step @32 (CPU time)"],
    "timm_train": [
        f"ours/timm{variant} @{size}{cpu}" for size in (32, 224)
        for variant, cpu in (("", ""), ("", " (CPU time)"),
                             (" 1 thread", ""))],
    "training_modes": [
        f"{mode}/none, XLA off" for mode in (
            "none, XLA on", "bf16, XLA off")],
    "randaugment": [
        f"ours/{other} @{size}" for size in (32, 224)
        for other in ("keras-cv", "keras", "ceiling", "student train")],
    "pseudo_label": [
        f"{ratio}{teacher}" for teacher in ("", ", SVHN small-image teacher")
        for ratio in ("label shards/inference (steady)",
                      "label shards/inference (steady, CPU time)",
                      "generate_pseudo_labels/inference (incl. load + trace)",
                      "saturated-core bound: inference CPU/(inference + "
                      "input CPU)")],
    "labeling_memory": ["peak RSS 10x images/1x"],
    "beam_label": ["beam/local labeling", "beam 2 threads/local labeling"],
}


@pytest.mark.slow
def test_smoke_run_reports_every_section_and_ratio(tmp_path):
    output = tmp_path / "benchmark.json"
    result = testing.run_script(
        ["scripts/benchmark.py", "--smoke", "--sections=all",
         f"--output={output}"],
        timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["mode"] == "smoke"
    assert set(report["sections"]) == set(RATIOS)
    for name, keys in RATIOS.items():
        section = report["sections"][name]
        assert set(keys) <= set(section["ratios"]), name
        assert section["rows"] and all("name" in r for r in section["rows"])
    goals = {(s["section"], s["ratio"]): s for s in report["summary"]}
    assert len(goals) == sum(len(r["ratios"])
                             for r in report["sections"].values())
    assert {s["status"] for s in report["summary"]} <= {
        "pass", "miss", "n/a", "-"}
    assert "== summary ==" in result.stdout
