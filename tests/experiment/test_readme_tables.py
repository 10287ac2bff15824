"""README tables are generated from the results files, never typed."""

import json
import os

import pytest

from noisy_student_tf.experiment import readme_tables
from tests import testing

REPORT = {
    "teacher": {"top1": 0.85, "model": "b0", "steps": 100},
    "baseline": {"top1": 0.85, "same_as": "teacher"},
    "iterations": [{"student": {"top1": 0.88, "model": "b0", "steps": 200},
                    "error_ratio": 0.8, "gap_closed": 0.3}],
    "ceiling": {"top1": 0.95, "model": "b0", "steps": 900},
    "robustness": {"models": {"student 1": {
        "corruptions": {"mean_corruption_error": 27.5},
        "adversarial": {"fgsm": {"8": 0.5, "2": 0.7}}}}},
    "wall_seconds": 600.0,
}
README = """# Title

<!-- generated: experiment results/demo/report.json -->
stale
<!-- /generated -->
text after
"""


def _tree(tmp_path):
    (tmp_path / "results" / "demo").mkdir(parents=True)
    (tmp_path / "results" / "demo" / "report.json").write_text(
        json.dumps(REPORT))
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def test_experiment_block_from_report(tmp_path):
    root = _tree(tmp_path)
    text = readme_tables.render(README, str(root))
    assert text.startswith("# Title\n\n<!-- generated: experiment ")
    assert text.endswith("<!-- /generated -->\ntext after\n")
    assert "stale" not in text
    assert ("| demo | student 1 | 88.00% | 0.800 | 30% | 27.50 | 50.00% | "
            "200 |  |") in text
    assert "| demo | teacher | 85.00% | - | - | - | - | 100 |  |" in text
    # The run's wall time on its last row.
    assert "| demo | ceiling | 95.00% | - | - | - | - | 900 | 10.0 min |" \
        in text
    # Regenerating is idempotent.
    assert readme_tables.render(text, str(root)) == text


def test_benchmark_block_lists_every_ratio_with_goal_and_status(tmp_path):
    runs = tmp_path / "results" / "labeling_runs"
    runs.mkdir(parents=True)
    (runs / "quiet.json").write_text(json.dumps({"summary": [
        {"section": "pseudo_label", "ratio": "shards/inference",
         "value": 0.73, "goal": ">= 0.9", "status": "miss"},
        {"section": "pseudo_label", "ratio": "bound", "value": 0.81,
         "goal": None, "status": "-"}]}))
    text = readme_tables.render(
        "<!-- generated: benchmark results/labeling_runs/quiet.json -->\n"
        "<!-- /generated -->\n", str(tmp_path))
    assert ("| labeling_runs/quiet | pseudo_label: shards/inference | 0.73 "
            "| >= 0.9 | **miss** |") in text
    assert "| labeling_runs/quiet | pseudo_label: bound | 0.81 | - | - |" \
        in text


def test_benchmark_rows_block_lists_the_measured_rows(tmp_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / "speed.json").write_text(json.dumps({"sections": {"a": {"rows": [
        {"name": "labeling", "images": 4096, "images_per_s": 2083.1,
         "cpu_ms_per_image": 0.778}]}}}))
    (runs / "memory.json").write_text(json.dumps({"sections": {"b": {"rows": [
        {"name": "100k images", "images": 100000, "peak_rss_mib": 753.9}]}}}))
    text = readme_tables.render(
        "<!-- generated: benchmark_rows results/runs/speed.json "
        "results/runs/memory.json -->\n<!-- /generated -->\n",
        str(tmp_path))
    assert "| row | images | img/s | CPU ms / image | peak RSS MiB |" in text
    assert "| labeling | 4,096 | 2,083.1 | 0.778 | - |" in text
    assert "| 100k images | 100,000 | - | - | 753.9 |" in text


def test_method_block_compares_the_final_model_with_labels_only(tmp_path):
    run = tmp_path / "results" / "kd_run"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({
        "method": "kd", "teachers": {"teacher": {"top1": 0.84}},
        "baseline": {"top1": 0.84, "selected_top1": 0.85},
        "student": {"top1": 0.86, "selected_top1": 0.88},
        "final": {"stage": "kd", "top1": 0.88}, "wall_seconds": 1800.0}))
    text = readme_tables.render(
        "<!-- generated: method results/kd_run/report.json -->\n"
        "<!-- /generated -->\n", str(tmp_path))
    # Error 12% against the labels-only student's 15%.
    assert ("| kd_run | kd | teacher 84.00% | 85.00% | 88.00% | - | 0.800 "
            "| 30 min |") in text


def test_missing_file_and_unknown_kind_are_named(tmp_path):
    root = _tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="results/none.json"):
        readme_tables.render(README.replace("results/demo/report.json",
                                             "results/none.json"), str(root))
    with pytest.raises(ValueError, match="unknown generated block kind"):
        readme_tables.render(README.replace("experiment", "bogus"),
                              str(root))


def test_layout_block_lists_modules_with_their_docstrings(tmp_path):
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text('"""The package."""\n')
    (package / "__init__.py").write_text('"""A subpackage.\n\nMore."""\n')
    (package / "mod.py").write_text('"""Does one thing.\n\nDetails."""\n')
    readme = "<!-- generated: layout pkg -->\nold\n<!-- /generated -->\n"
    text = readme_tables.render(readme, str(tmp_path))
    body = text.splitlines()[1:-1]
    assert body[0] == "```text" and body[-1] == "```"
    assert body[1].split() == ["pkg/", "The", "package."]
    assert body[2].split() == ["pkg/sub/", "A", "subpackage."]
    assert body[3].split() == ["mod.py", "Does", "one", "thing."]
    assert body[3].startswith("    mod.py")


def test_binary_rewrites_and_checks(tmp_path):
    root = _tree(tmp_path)
    readme = str(root / "README.md")
    check = testing.run_script(["scripts/readme_tables.py", "--check",
                                f"--readme={readme}"])
    assert check.returncode == 1
    assert "differ from results/" in testing.last_line(check.stderr)
    proc = testing.run_script(["scripts/readme_tables.py",
                               f"--readme={readme}"])
    assert proc.returncode == 0, proc.stderr
    assert "| demo | student 1 |" in (root / "README.md").read_text()
    again = testing.run_script(["scripts/readme_tables.py", "--check",
                                f"--readme={readme}"])
    assert again.returncode == 0, again.stderr


def test_the_readme_tables_match_the_committed_results():
    readme = os.path.join(testing.REPO, "README.md")
    with open(readme, encoding="utf-8") as handle:
        text = handle.read()
    assert readme_tables.render(text, testing.REPO) == text, (
        "README tables are stale: run python scripts/readme_tables.py")
