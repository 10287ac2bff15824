"""The labels-only control: a student with an explicit unlabel_ratio=0
trains on the labels alone (same init, schedule and noise), so nothing is
labeled or filtered for it; a student without unlabel_ratio is an error."""

import pytest

from noisy_student_tf.configs import fashion_mnist_demo
from noisy_student_tf.experiment import ablation
from noisy_student_tf.experiment import report as report_lib
from noisy_student_tf.experiment import stage_configs
from noisy_student_tf.experiment import stages
from noisy_student_tf.training import objectives
from noisy_student_tf.training.objectives import base
from noisy_student_tf.training.objectives import noisy_student

TEACHER = {"model_path": "/models/teacher.keras", "eval": {"top1": 0.5},
           "model": "efficientnet_b0", "steps": 20}


def test_explicit_zero_is_a_supervised_student_from_its_teacher():
    config = fashion_mnist_demo.get_config("quick")
    config.students.iter1.unlabel_ratio = 0
    stage = stage_configs.student_stage(config, config.students.iter1,
                                        TEACHER, pseudo={"kind": "x"})
    assert "unlabeled" not in stage.data
    assert "teacher" not in stage
    assert stage.model.init == "/models/teacher.keras"
    assert stage.pp.labeled == config.students.iter1.pp.labeled
    assert isinstance(objectives.from_config(stage), base.SupervisedObjective)
    assert not isinstance(objectives.from_config(stage),
                          noisy_student.NoisyStudentObjective)
    assert not stage_configs.reads_pseudo_labels(config,
                                                 config.students.iter1)
    online = config.students.iter1.to_dict()
    online["mode"] = "online"
    config.students.iter1 = online
    stage = stage_configs.student_stage(config, config.students.iter1,
                                        TEACHER)
    assert "teacher" not in stage and "unlabeled" not in stage.data


def test_a_student_without_unlabel_ratio_is_an_error():
    config = fashion_mnist_demo.get_config("quick")
    del config.students.iter1["unlabel_ratio"]
    with pytest.raises(ValueError, match="unlabel_ratio"):
        stage_configs.student_stage(config, config.students.iter1, TEACHER,
                                    pseudo={"kind": "x"})
    config.students.iter1.unlabel_ratio = -1
    with pytest.raises(ValueError, match="unlabel_ratio"):
        stage_configs.reads_pseudo_labels(config, config.students.iter1)


def test_driver_trains_it_without_labeling(monkeypatch, tmp_path):
    config = ablation.variant_config(
        fashion_mnist_demo.get_config("quick"), "labels_only")
    assert [s.unlabel_ratio for s in config.students.values()] == [0, 0]
    monkeypatch.setattr(stages, "label", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(stages, "filter_labels", lambda *a, **k: 1 / 0)
    trained = {}

    def fake_train(name, stage, workdir, progress=True):
        trained[name] = stage
        return {"eval": {"top1": 0.6}, "model": stage.model.name,
                "steps": 20, "model_path": f"{workdir}/{name}/model.keras"}

    monkeypatch.setattr(stages, "train", fake_train)
    _, stage, row = stages.student(config, 1, TEACHER, None,
                                   str(tmp_path), progress=False)
    assert list(trained) == ["iter1/student"]
    assert not stage.unlabel_ratio and "unlabeled" not in stage.data
    assert row["mode"] == "labels_only"
    assert row["num_pseudo_labeled"] is None
    # The ablation shares only the teacher and the student with such a
    # variant: it has no labels or filter stage.
    names = [name for name, _ in ablation.shared_stages(config)]
    assert names == ["teacher", "iter1/student"]


def test_ablation_table_shows_no_pseudo_labels_as_a_dash():
    def report(top1, pseudo):
        return {"teacher": {"top1": 0.8},
                "iterations": [{"student": {"top1": top1, "steps": 9},
                                "num_pseudo_labeled": pseudo}]}
    rows = report_lib.summarize_ablation(
        {"base": report(0.85, 1200), "labels_only": report(0.84, None)})
    table = report_lib.format_ablation_table(rows)
    assert "| labels_only | 84.00% | 0.800 | -1.00 | - |" in table
    assert "| base | 85.00% | 0.750 | +0.00 | 1200 |" in table
