"""The method runner: teacher wiring, config checks, finetune stage, report
lines (the end-to-end runs live in each method's test file)."""

import ml_collections
import pytest

from noisy_student_tf.configs import kd_fashion_mnist
from noisy_student_tf.configs import meal_v2_fashion_mnist
from noisy_student_tf.configs import mpl_fashion_mnist
from noisy_student_tf.experiment import methods
from noisy_student_tf.experiment import report as report_lib


def test_teachers_reach_each_method_in_its_own_field():
    assert methods._teacher_fields("kd", ["a.keras"]) == {
        "teacher": {"path": "a.keras"}}
    assert methods._teacher_fields("meal_v2", ["a", "b"]) == {
        "teacher": {"paths": ["a", "b"]}}
    assert methods._teacher_fields("mpl", []) == {}
    with pytest.raises(ValueError, match="one teacher"):
        methods._teacher_fields("kd", ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        methods._teacher_fields("meal_v2", [])
    with pytest.raises(ValueError, match="trains its own teacher"):
        methods._teacher_fields("mpl", ["a"])


def test_bad_method_or_key_fails_before_any_work(tmp_path):
    config = kd_fashion_mnist.get_config("quick")
    config.method = "distill"
    with pytest.raises(ValueError, match="kd, meal_v2, mpl"):
        methods.run_method(config, str(tmp_path / "a"))
    config = kd_fashion_mnist.get_config("quick")
    config.studnet = ml_collections.ConfigDict({})
    with pytest.raises(ValueError, match="studnet"):
        methods.run_method(config, str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_finetune_stage_inherits_the_student_and_validation():
    config = mpl_fashion_mnist.get_config("quick")
    stage = methods.finetune_stage(config, "/x/best.keras")
    assert stage.model.init == "/x/best.keras"
    assert stage.model.name == config.student.model.name
    assert stage.model.overrides.dropout_rate == 0.0
    assert stage.data.validation.select.part == "validation"
    assert not stage.get("method") and not stage.get("unlabel_ratio")
    assert stage.weight_decay == 0.0 and "randaug" in stage.pp.labeled


def test_meal_v2_config_pretrains_the_student_architecture():
    config = meal_v2_fashion_mnist.get_config()
    assert config.student_init.model == config.student.model
    assert len(config.teachers) == 2
    assert config.student.weight_decay == 0.0


def test_format_lines_names_selection_on_validation():
    report = {"teachers": {"t": {"top1": 0.9}},
              "student": {"top1": 0.8, "selected_top1": 0.85,
                          "best_validation": {"step": 40, "top1": 0.86}}}
    lines = report_lib.format_method_lines(report)
    assert lines[0] == "teacher t: test top-1 90.00%"
    assert lines[1] == ("student: test top-1 80.00%, best validation "
                        "86.00% at step 40 -> test 85.00%")
