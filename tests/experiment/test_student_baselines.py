"""Larger students get labeled-only baselines of their own architecture."""

from noisy_student_tf.experiment import stages
from noisy_student_tf.configs import fashion_mnist_demo


def test_one_baseline_per_new_architecture(monkeypatch, tmp_path):
    config = fashion_mnist_demo.get_config("quick,paper")
    trained = {}

    def fake_run_stage(name, stage, workdir, progress=True):
        trained[name] = stage
        width = stage.model.overrides.width_coefficient
        return {"eval": {"top1": width}, "model": stage.model.name,
                "steps": stage.get("total_steps")}

    monkeypatch.setattr(stages, "train", fake_run_stage)
    teacher = {"top1": 0.5, "model": "efficientnet_b0"}
    report = {"teacher": teacher,
              "iterations": [{"student": {}} for _ in range(3)]}
    stages.student_baselines(config, report, str(tmp_path), False)
    # iter1 (0.375) and iter2 (0.5) are new architectures; iter3 repeats
    # iter2's and shares its baseline.
    assert sorted(trained) == ["iter1/baseline", "iter2/baseline"]
    assert [it["baseline"]["top1"] for it in report["iterations"]] == [
        0.375, 0.5, 0.5]
    # The teacher's recipe (labeled data, schedule), the student's model.
    stage = trained["iter1/baseline"]
    assert stage.total_steps == config.teacher.total_steps
    assert stage.data.labeled.to_dict() == dict(
        config.data.labeled.to_dict(), num_classes=10)
    assert not stage.get("unlabel_ratio")
    assert stage.model.overrides.depth_coefficient == 0.375


def test_students_of_the_teachers_size_use_the_teacher(monkeypatch,
                                                      tmp_path):
    config = fashion_mnist_demo.get_config("quick")
    config.student_baselines = dict(enabled=True)
    monkeypatch.setattr(stages, "train", lambda *a, **k: 1 / 0)
    teacher = {"top1": 0.5}
    report = {"teacher": teacher, "iterations": [{}, {}]}
    stages.student_baselines(config, report, str(tmp_path), False)
    assert [it["baseline"] for it in report["iterations"]] == [teacher] * 2


def test_a_teacher_file_is_no_baseline(monkeypatch, tmp_path):
    # A released teacher did not learn from these labels alone: students
    # of its architecture get a trained baseline, without the file's path.
    config = fashion_mnist_demo.get_config("quick")
    config.teacher.path = "/models/teacher.keras"
    config.student_baselines = dict(enabled=True)
    trained = {}

    def fake_run_stage(name, stage, workdir, progress=True):
        trained[name] = stage
        return {"eval": {"top1": 0.6}}

    monkeypatch.setattr(stages, "train", fake_run_stage)
    report = {"teacher": {"top1": 0.9, "from_file": True},
              "iterations": [{}, {}]}
    stages.student_baselines(config, report, str(tmp_path), False)
    assert sorted(trained) == ["iter1/baseline"]
    assert "path" not in trained["iter1/baseline"]
    assert [it["baseline"]["top1"] for it in report["iterations"]] == [
        0.6, 0.6]
