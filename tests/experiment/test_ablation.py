"""Ablation harness: variant edits, shared stages, the binary end to end."""

import json

import pytest

from noisy_student_tf.experiment import ablation
from noisy_student_tf.experiment import report as report_lib
from noisy_student_tf import io_utils
from noisy_student_tf.configs import fashion_mnist_demo
from noisy_student_tf.configs import imagenet_b7_to_l2
from tests import testing

CONFIG = "noisy_student_tf/configs/fashion_mnist_demo.py:quick"


def test_strip_noise_removes_exactly_the_noise_ops():
    noised = ('decode(channels=1)|pad_to_size(32)|flip_lr|pad_crop(32, 2)|'
              'randaug(2, 9, cutout_const=4, translate_const=4)|cutout(8)|'
              'normalize("fashion_mnist")|keep("image", "label")')
    assert ablation.strip_noise(noised) == (
        "decode(channels=1)|pad_to_size(32)|normalize('fashion_mnist')|"
        "keep('image', 'label')")
    assert ablation.strip_noise(
        'decode|inception_crop(224)|flip_lr|randaug(2, 27)|'
        'normalize("imagenet")') == \
        "decode()|center_crop(224)|normalize('imagenet')"


def test_variant_configs_change_only_their_knob():
    config = fashion_mnist_demo.get_config()
    base = ablation.variant_config(config, "base", iterations=1)
    assert list(base.students) == ["iter1"]
    assert base.export.enabled is False
    quiet = ablation.variant_config(config, "no_noise")
    assert len(quiet.students) == 2
    for student in quiet.students.values():
        assert "randaug" not in student.pp.labeled
        assert "randaug" not in student.pp.unlabeled
        assert student.model.overrides.dropout_rate == 0.0
        assert student.model.overrides.stochastic_depth_rate == 0.0
        # The model's shape knobs stay.
        assert student.model.overrides.width_coefficient == \
            config.students.iter1.model.overrides.width_coefficient
    inputs_only = ablation.variant_config(config, "no_input_noise")
    model_only = ablation.variant_config(config, "no_model_noise")
    for key in ("iter1", "iter2"):
        plain, noisy = inputs_only.students[key], model_only.students[key]
        assert "randaug" not in plain.pp.unlabeled
        assert plain.model.overrides.dropout_rate == 0.2
        assert noisy.pp.unlabeled == config.students[key].pp.unlabeled
        assert noisy.model.overrides.stochastic_depth_rate == 0.0
    # The teacher keeps its noise: only students are ablated.
    assert quiet.teacher.pp.labeled == config.teacher.pp.labeled
    assert ablation.variant_config(
        config, "hard_labels").students.iter1.label_type == "hard"
    assert ablation.variant_config(
        config, "unlabel_ratio_1").students.iter2.unlabel_ratio == 1
    assert ablation.variant_config(
        config, "no_balancing").filter.use_all is True
    assert ablation.variant_config(
        config, "init_from_teacher").students.iter1.init_from_teacher
    assert not ablation.variant_config(
        config, "from_scratch").students.iter2.init_from_teacher
    wide = ablation.variant_config(config, "base")
    wide.students.iter1.model.overrides.width_coefficient = 0.5
    same = ablation.variant_config(wide, "teacher_size_students")
    assert same.students.iter1.model.to_dict() == \
        config.teacher.model.to_dict()
    # The input config is untouched.
    assert config.students.iter1.label_type == "soft"
    assert "randaug" in config.students.iter1.pp.labeled


def test_no_noise_works_for_other_families_and_recipes():
    config = imagenet_b7_to_l2.get_config("quick")
    quiet = ablation.variant_config(config, "no_noise", iterations=1)
    student = quiet.students.iter1
    assert "inception_crop" not in student.pp.labeled
    assert "center_crop" in student.pp.labeled


def test_bad_variant_and_iterations_are_named():
    config = fashion_mnist_demo.get_config("quick")
    with pytest.raises(ValueError, match="unknown ablation variant 'noise'"):
        ablation.variant_config(config, "noise")
    with pytest.raises(ValueError, match="iterations=3"):
        ablation.variant_config(config, "base", iterations=3)


def test_shared_stages_follow_the_inputs():
    config = fashion_mnist_demo.get_config("quick")
    keys = {name: dict(ablation.shared_stages(
        ablation.variant_config(config, name, 1)))
        for name in ("base", "hard_labels", "no_balancing")}
    assert keys["base"]["iter1/filter"] == keys["hard_labels"]["iter1/filter"]
    assert keys["base"]["iter1/student"] != \
        keys["hard_labels"]["iter1/student"]
    # The base variant's stages are the experiment's own (--reuse).
    assert keys["base"] == dict(ablation.shared_stages(config))
    assert keys["base"]["teacher"] == keys["no_balancing"]["teacher"]
    assert keys["base"]["iter1/labels"] == keys["no_balancing"]["iter1/labels"]
    assert keys["base"]["iter1/filter"] != keys["no_balancing"]["iter1/filter"]


def test_copy_stage_rewrites_paths_and_keeps_finished_targets(tmp_path):
    source, target = tmp_path / "a" / "teacher", tmp_path / "b" / "teacher"
    source.mkdir(parents=True)
    (source / "model.keras").write_bytes(b"weights")
    io_utils.mark_stage_done(str(source),
                             {"model_path": str(source / "model.keras")})
    ablation.copy_stage(str(source), str(target))
    result = io_utils.read_stage_result(str(target))
    assert result["model_path"] == str(target / "model.keras")
    assert (target / "model.keras").read_bytes() == b"weights"
    (target / "model.keras").write_bytes(b"mine")
    ablation.copy_stage(str(source), str(target))  # finished: left alone
    assert (target / "model.keras").read_bytes() == b"mine"


def test_table_rows_against_hand_values():
    def report(top1s):
        return {"teacher": {"top1": 0.80}, "baseline": {"top1": 0.80},
                "iterations": [{"student": {"top1": t, "steps": 20},
                                "num_pseudo_labeled": 100} for t in top1s]}

    rows = report_lib.summarize_ablation(
        {"base": report([0.85, 0.88]), "no_noise": report([0.81, 0.80])},
        {"no_noise": "students without noise"})
    assert [row["what"] for row in rows] == ["", "students without noise"]
    assert rows[0]["error_vs_baseline"] == pytest.approx(0.12 / 0.20)
    assert rows[1]["delta_vs_base"] == pytest.approx(-0.08)
    table = report_lib.format_ablation_table(rows)
    assert "| no_noise | 81.00% | 80.00% | 1.000 | -8.00 | 100 |" in table
    # With the robustness suite: the last student's corruption error and
    # FGSM accuracy join the row.
    robust = report([0.85, 0.88])
    robust["robustness"] = {"models": {"student 2": {
        "corruptions": {"mean_corruption_error": 25.0},
        "adversarial": {"fgsm": {"2": 0.7, "8": 0.4}}}}}
    rows = report_lib.summarize_ablation({"base": robust})
    assert rows[0]["fgsm_epsilon"] == "8"
    assert report_lib.format_ablation_table(rows).splitlines()[-1] == (
        "| base | 85.00% | 88.00% | 0.600 | +0.00 | 100 | 25.00 | 40.00% |")


def test_ablate_binary_end_to_end(tmp_path):
    # A first ablation's base variant stands in for a finished demo run
    # (a driver workdir); the second ablation reuses its stages.
    first = testing.run_script(
        ["scripts/ablate.py", f"--config={CONFIG}",
         f"--workdir={tmp_path / 'first'}", "--variants=base",
         "--no_progress"])
    assert first.returncode == 0, first.stderr[-3000:]
    workdir = tmp_path / "ablation"
    args = ["scripts/ablate.py", f"--config={CONFIG}",
            f"--workdir={workdir}", "--variants=base,no_noise",
            f"--reuse={tmp_path / 'first' / 'base'}", "--no_progress"]
    proc = testing.run_script(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((workdir / "ablation.json").read_text())
    assert [row["variant"] for row in result["rows"]] == ["base", "no_noise"]
    for row in result["rows"]:
        assert len(row["student_top1"]) == 1
        assert row["num_pseudo_labeled"][0] > 0
        assert 0 <= row["corruption_error"] <= 100  # :quick runs the suite
    # Only the no_noise student trained; the rest was copied.
    assert "teacher: training" not in proc.stdout
    assert "labeling fashion_mnist" not in proc.stdout
    assert proc.stdout.count("iter1/student: training") == 1
    first_base = json.loads(
        (tmp_path / "first" / "ablation.json").read_text())["rows"][0]
    assert result["rows"][0]["student_top1"] == first_base["student_top1"]
    copied = io_utils.read_stage_result(str(workdir / "no_noise" / "teacher"))
    assert copied["model_path"].startswith(str(workdir / "no_noise"))
    assert (workdir / "ablation.png").exists()
    assert "| no_noise |" in (workdir / "ablation.md").read_text()
    student = json.loads((workdir / "no_noise" / "iter1" / "student" /
                          "config.json").read_text())
    assert "randaug" not in student["pp"]["unlabeled"]
    assert student["model"]["overrides"]["dropout_rate"] == 0.0
    # A rerun resumes: nothing is trained again.
    again = testing.run_script(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training" not in again.stdout
    bad = testing.run_script(args[:4] + ["--variants=base,noise"])
    assert bad.returncode == 1
    assert "unknown ablation variant 'noise'" in testing.last_line(bad.stderr)
    missing = testing.run_script(args[:4] + [f"--reuse={tmp_path}"])
    assert missing.returncode == 1
    assert "--reuse takes the workdir" in testing.last_line(missing.stderr)
