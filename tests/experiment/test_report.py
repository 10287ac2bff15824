"""The experiment report: gains against the baseline and the ceiling."""

import pytest

from noisy_student_tf.experiment import report as report_lib


def _report(ceiling=0.95):
    report = {
        "teacher": {"top1": 0.85, "model": "b0", "steps": 10},
        "baseline": {"top1": 0.85, "same_as": "teacher"},
        "iterations": [{"student": {"top1": 0.88, "model": "b0",
                                    "steps": 20}},
                       {"student": {"top1": 0.90, "model": "b0",
                                    "steps": 20}}],
    }
    if ceiling is not None:
        report["ceiling"] = {"top1": ceiling, "model": "b0", "steps": 30}
    return report


def test_gains_against_baseline_and_ceiling():
    report = report_lib.add_gains(_report())
    first, second = report["iterations"]
    # Error 12% vs 15%; (88 - 85) / (95 - 85) of the gap.
    assert first["error_ratio"] == pytest.approx(0.8)
    assert first["gap_closed"] == pytest.approx(0.3)
    assert second["error_ratio"] == pytest.approx(10 / 15)
    assert second["gap_closed"] == pytest.approx(0.5)
    table = report_lib.format_table(report)
    assert "| student 1 | b0 | 88.00% | 12.00% | 0.800 | 30% | 20 |" in table
    assert "| ceiling | b0 | 95.00% |" in table


def test_no_ceiling_no_gap(tmp_path):
    report = report_lib.add_gains(_report(ceiling=None))
    assert "gap_closed" not in report["iterations"][0]
    assert report["iterations"][0]["error_ratio"] == pytest.approx(0.8)
    report_lib.plot_accuracy(report, str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").stat().st_size > 0


def test_plot_draws_baseline_and_ceiling(tmp_path):
    path = tmp_path / "accuracy.png"
    report_lib.plot_accuracy(report_lib.add_gains(_report()), str(path))
    assert path.stat().st_size > 0


def test_a_larger_student_is_compared_with_its_own_baseline():
    report = _report()
    own = {"top1": 0.87, "model": "b0-wide", "steps": 10}
    report["iterations"][1]["baseline"] = own
    report["iterations"][1]["student"]["model"] = "b0-wide"
    report_lib.add_gains(report)
    second = report["iterations"][1]
    # Error 10% vs its own baseline's 13%; (90 - 87) / (95 - 87).
    assert second["error_ratio"] == pytest.approx(10 / 13)
    assert second["gap_closed"] == pytest.approx(3 / 8)
    table = report_lib.format_table(report)
    assert "| baseline 2 | b0-wide | 87.00% | 13.00% | - | - | 10 |" in table
    assert "| student 2 | b0-wide | 90.00% | 10.00% | 0.769 | 38% |" in table


def test_a_teacher_file_gives_no_error_ratio():
    report = _report(ceiling=None)
    del report["baseline"]
    report["teacher"]["from_file"] = True
    report_lib.add_gains(report)
    assert "error_ratio" not in report["iterations"][0]
