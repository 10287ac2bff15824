"""The driver's robustness stage: which models of a run, with which pp."""

import ml_collections

from noisy_student_tf.experiment import stages
from noisy_student_tf.robustness import model_suite

TEACHER_PP = 'decode|pad_to_size(32)|normalize("fashion_mnist")'
STUDENT_PP = 'decode|resize(40)|normalize("fashion_mnist")'
FINETUNE_PP = 'decode|resize(48)|normalize("fashion_mnist")'


def _config(**blocks):
    return ml_collections.ConfigDict(dict(
        teacher=dict(pp=dict(eval=TEACHER_PP)),
        data=dict(eval=dict(kind="fashion_mnist", split="test")),
        robustness=dict(num_examples=8), **blocks))


def _report(*stages):
    report = {"teacher": {"model_path": "/w/teacher/model.keras"},
              "iterations": [
                  {"student": {"model_path": f"/w/iter{i}/student/"
                                             "model.keras"}}
                  for i in (1, 2)]}
    for stage in stages:
        report[stage] = {"model_path": f"/w/{stage}/model.keras"}
    return report


def test_robustness_models_names_every_model_with_its_eval_pp():
    config = _config(
        baseline=dict(pp=dict(eval=STUDENT_PP)),
        # Student 1 keeps the teacher's pp; student 2 has its own.
        students=dict(s1=dict(pp=dict(labeled="x")),
                      s2=dict(pp=dict(eval=STUDENT_PP))),
        finetune=dict(pp=dict(eval=FINETUNE_PP)))
    rows = stages.robustness_models(
        config, _report("baseline", "finetune"))
    assert rows == [
        ("teacher", "/w/teacher/model.keras", TEACHER_PP, "/w/teacher"),
        ("baseline", "/w/baseline/model.keras", STUDENT_PP, "/w/baseline"),
        ("student 1", "/w/iter1/student/model.keras", TEACHER_PP,
         "/w/iter1/student"),
        ("student 2", "/w/iter2/student/model.keras", STUDENT_PP,
         "/w/iter2/student"),
        ("finetuned", "/w/finetune/model.keras", FINETUNE_PP,
         "/w/finetune")]
    # A baseline that is the teacher is not a model of its own; a
    # finetune without an eval pp uses the last student's.
    report = _report("finetune")
    report["baseline"] = {"same_as": "teacher",
                          "model_path": "/w/teacher/model.keras"}
    config = _config(students=dict(s1=dict(), s2=dict(
        pp=dict(eval=STUDENT_PP))), finetune=dict(enabled=True))
    rows = stages.robustness_models(config, report)
    assert [row[0] for row in rows] == [
        "teacher", "student 1", "student 2", "finetuned"]
    assert rows[-1][2] == STUDENT_PP


def test_robustness_hands_the_run_to_the_suite(monkeypatch):
    calls = []
    monkeypatch.setattr(model_suite, "evaluate_models",
                        lambda *args: calls.append(args) or {"names": []})
    config = _config()
    assert stages.robustness(config, _report(), "/w",
                            progress=False) == {"names": []}
    (runs, source, settings, output_dir, progress), = calls
    assert [row[0] for row in runs] == ["teacher", "student 1",
                                        "student 2"]
    assert source == {"kind": "fashion_mnist", "split": "test"}
    assert settings is config.robustness
    assert output_dir == "/w" and progress is False
