"""Every experiment config builds, resolves and parses (no data, no TPU).

For each config module and each documented `:arg` variant: `get_config`
builds; every pp string (any string under a `pp` key) parses and its ops
accept their arguments; every stage (teacher, baseline, students, finetune)
resolves through the same functions the driver uses, its model name and
override names are valid, and its optimizer and schedule build. Quick
variants also build each stage's (tiny) model and run each pp string on a
synthetic image; full-size models (B7, L2, Mixer-B) are never built here.
"""

import ast
import importlib
import os
import pkgutil
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.experiment import stage_configs
from noisy_student_tf import models
from noisy_student_tf.configs import common
from noisy_student_tf.configs import imagenet_b7_to_l2
from noisy_student_tf.data import preprocess
from noisy_student_tf.training import finetune
from noisy_student_tf.training import objectives
from noisy_student_tf.training import optimizers
from noisy_student_tf.training import precision
from noisy_student_tf.training import schedules
from tests import image_tree

CONFIG_DIR = os.path.dirname(common.__file__)
NOT_EXPERIMENTS = {"common"}

# The variants each config's docstring documents. Config files not listed
# get `None` and, when they accept it, `quick` (see _variants).
DOCUMENTED = {
    "fashion_mnist_demo": [None, "quick", "full", "quick,ceiling", "paper",
                           "quick,paper",
                           "ceiling,iterations=3,student_epochs=24"],
    "svhn_b0": [None, "quick", "offline", "data_dir=/tmp/tfds",
                "offline,quick,data_dir=/tmp/tfds"],
    "imagenet_b7_to_l2": (
        [None, "quick", "minival", "minival,quick",
         "data_dir=gs://b/imagenet,unlabeled=gs://b/jft/*"]
        + [f"student={s}" for s in imagenet_b7_to_l2.STUDENTS]
        + ["student=b0,quick", "student=b4,minival,quick"]),
    "mixer_b16": [None, "quick", "baseline", "baseline,quick",
                  "data_dir=gs://b/imagenet"],
}
# image_folders reads its folders: a small real tree (seconds to write).
_TREE = image_tree.make_tree(tempfile.mkdtemp(prefix="config-tree-"),
                             per_class=4, eval_per_class=2)
_FOLDERS = f"labeled={_TREE['labeled']},unlabeled={_TREE['pile']}"
DOCUMENTED["image_folders"] = [
    _FOLDERS, f"{_FOLDERS},quick", f"{_FOLDERS},eval={_TREE['eval']},quick",
    f"{_FOLDERS},model=efficientnet_b1,image_size=64,teacher=/t.keras,"
    "teacher_size=96,iterations=2,holdout=0.25"]


def _config_modules():
    return sorted(m.name for m in pkgutil.iter_modules([CONFIG_DIR])
                  if m.name not in NOT_EXPERIMENTS)


def _module(name):
    return importlib.import_module(f"noisy_student_tf.configs.{name}")


def _valid_args(name):
    """The `:arg` keys a config accepts, read from its ValueError."""
    with pytest.raises(ValueError, match="Unknown config arg") as error:
        _module(name).get_config("no_such_arg")
    return ast.literal_eval(str(error.value).split("valid: ", 1)[1])


def _variants(name):
    if name in DOCUMENTED:
        return DOCUMENTED[name]
    return [None] + (["quick"] if "quick" in _valid_args(name) else [])


CASES = [(name, arg) for name in _config_modules()
         for arg in _variants(name)]


def _ids(cases):
    return [f"{name}:{arg}" if arg else name for name, arg in cases]


def _get_config(name, arg):
    return _module(name).get_config(arg)


def _is_quick(arg):
    return bool(arg) and "quick" in arg.split(",")


def _pp_strings(node, under_pp=False, path=""):
    """(path, string) for every string below a `pp` key, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _pp_strings(value, under_pp or key == "pp",
                                   f"{path}.{key}" if path else key)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _pp_strings(value, under_pp, f"{path}[{index}]")
    elif under_pp and isinstance(node, str):
        yield path, node


def _stages(config):
    """(name, resolved stage) for every stage of a config.

    Noisy Student experiments (`teacher`, `students`, no `method`) resolve
    exactly as the driver does (online/offline students, finetune); other
    configs (methods/) by `common.stage_config` on every top-level entry,
    or entry of a top-level dict, that has a `model`.
    """
    if config.get("method") or not config.get("teacher"):
        return [(name, common.stage_config(config, stage))
                for name, stage in _generic_stages(config)]
    teacher = common.stage_config(config, config.teacher)
    stages = [("teacher", teacher)]
    if config.get("baseline"):
        stages.append(("baseline",
                       common.stage_config(config, config.baseline)))
    last = teacher
    for index, student in enumerate(stage_configs.students_of(config), start=1):
        pseudo = {"kind": "pseudo_labels", "num_classes": config.num_classes,
                  "pattern": "/nonexistent/filter/data/train-*"}
        last = stage_configs.student_stage(
            config, student, {"model_path": "/nonexistent/model.keras"},
            None if student.get("mode", "offline") == "online" else pseudo)
        stages.append((f"iter{index}", last))
    if config.get("finetune") and config.finetune.get("enabled", True):
        stages.append(("finetune", finetune.finetune_config(
            config, last, "/nonexistent/model.keras")))
    if config.get("ceiling") and config.ceiling.get("enabled", True):
        stages.append(("ceiling", common.stage_config(
            config, stage_configs.ceiling_of(config))))
    return stages


def _generic_stages(config):
    for key, value in config.items():
        if not hasattr(value, "items"):
            continue
        if "model" in value:
            yield key, value
            continue
        for sub, stage in value.items():
            if hasattr(stage, "items") and "model" in stage:
                yield f"{key}.{sub}", stage


def test_every_config_file_is_tested():
    names = {name for name, _ in CASES}
    assert set(DOCUMENTED) <= names
    assert names == set(_config_modules())


@pytest.mark.parametrize("name,arg", CASES, ids=_ids(CASES))
def test_config_builds_and_pp_strings_parse(name, arg):
    config = _get_config(name, arg)
    assert config.num_classes > 1
    for key in ("data", "defaults"):
        assert config.get(key), f"{name}: missing {key}"
    if not config.get("method"):  # methods/ configs have their own keys.
        common.check_experiment(config)
    found = list(_pp_strings(config.to_dict()))
    assert found
    for path, pp_string in found:
        try:
            ops = preprocess.validate_pp_string(pp_string)
        except ValueError as error:
            raise AssertionError(f"{name}:{arg} {path}: {error}") from None
        assert ops, f"{name}:{arg} {path} is empty"


def _nested_dicts(value, path):
    if hasattr(value, "items"):
        yield path, value
        for key, item in value.items():
            yield from _nested_dicts(item, f"{path}.{key}")


@pytest.mark.parametrize("name,arg", CASES, ids=_ids(CASES))
def test_stages_share_no_nested_dict(name, arg):
    # ConfigDict keeps a dict shared by two stages shared: overriding
    # --config.students.iter2.model... would then change iter1 as well.
    config = _get_config(name, arg)
    owner = {}
    for stage_name, stage in _generic_stages(config):
        for path, value in _nested_dicts(stage, stage_name):
            other = owner.setdefault(id(value), path)
            assert other == path, f"{name}:{arg}: {path} is {other}"


@pytest.mark.parametrize("name,arg", CASES, ids=_ids(CASES))
def test_every_stage_resolves(name, arg):
    config = _get_config(name, arg)
    for stage_name, stage in _stages(config):
        where = f"{name}:{arg} {stage_name}"
        if not config.get("method"):
            # The keys the trainer accepts (it rejects unknown ones).
            # methods/ stages are completed by their runner, not here.
            teacher_keys = common.TEACHER_KEYS if stage_name == \
                "teacher" else set()
            common.check_keys(stage, set(common.TRAIN_DEFAULTS)
                              | common.STAGE_KEYS | teacher_keys | set(getattr(
                                  objectives.from_config(stage),
                                  "CONFIG_KEYS", ())), where)
        model = stage.model
        assert model.name in models.list_models(), where
        overrides = set((model.get("overrides") or {}).keys())
        invalid = overrides - set(models.valid_overrides(model.name))
        assert not invalid, f"{where}: invalid overrides {sorted(invalid)}"
        assert model.num_classes == config.num_classes
        assert stage.pp.get("labeled") and stage.pp.get("eval"), where
        assert stage.data.labeled and stage.data.eval, where
        # methods/ objectives name their own unlabeled views.
        if stage.get("unlabel_ratio") and not config.get("method"):
            assert stage.pp.get("unlabeled"), where
            assert stage.data.get("unlabeled"), where
            if stage.get("teacher") and stage.teacher.get("path"):
                assert stage.pp.get("teacher"), f"{where}: online needs it"
        # The optimizer and schedule a stage names exist and build.
        steps_per_epoch = 100
        total = schedules.resolve_steps(stage, "total", steps_per_epoch)
        assert total > 0, where
        schedule = schedules.build_schedule(
            stage, steps_per_epoch, total, stage.batch_size)
        assert np.isfinite(float(schedule(total // 2))), where
        optimizers.build_optimizer(stage, schedule)


QUICK = [case for case in CASES if _is_quick(case[1])]


@pytest.mark.parametrize("name,arg", QUICK, ids=_ids(QUICK))
def test_quick_models_and_pipelines_are_tiny(name, arg):
    config = _get_config(name, arg)
    seen = set()
    for stage_name, stage in _stages(config):
        where = f"{name}:{arg} {stage_name}"
        model = precision.build_model(stage.model)
        # Tiny widths, or B0 at 32x32 (SVHN's real model is cheap there).
        assert model.count_params() < 5_000_000, where
        if stage.get("freeze_blocks", -1) >= 0:
            finetune.freeze_stem_and_blocks(model, stage.freeze_blocks)
        size = model.input_shape[1]
        for key in ("labeled", "unlabeled", "eval", "teacher"):
            pp_string = stage.pp.get(key)
            if not pp_string or (pp_string, size) in seen:
                continue
            seen.add((pp_string, size))
            _check_pipeline(pp_string, size, config.get("channels", 3),
                            f"{where} pp.{key}")


def _check_pipeline(pp_string, size, channels, where):
    """The pp output is a float32 image of the model's input size."""
    if "inception_crop(" in pp_string or "center_crop(" in pp_string:
        shape = (50, 57, channels)  # any size: the crop resizes.
    elif channels == 1:
        shape = (28, 28, 1)  # Fashion-MNIST, padded to 32 by the pp.
    else:
        shape = (size, size, channels)  # SVHN: used at its own size.
    image = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    record = {"image": tf.constant(image), "label": tf.constant(3, tf.int64),
              "probabilities": tf.fill([10], 0.1),
              "id": tf.constant(0, tf.int64)}
    out = preprocess.get_preprocess_fn(pp_string)(record)
    assert out["image"].dtype == tf.float32, where
    assert tuple(out["image"].shape) == (size, size, channels), where


@pytest.mark.parametrize("name", _config_modules())
def test_unknown_arg_raises(name):
    assert _valid_args(name)  # raises ValueError naming the valid keys.


def test_imagenet_table_and_student_choice():
    table = imagenet_b7_to_l2.STUDENTS
    assert set(table) == {f"b{i}" for i in range(8)} | {"l2"}
    # docs/reference/noisy_student.md section 7.
    assert table["b0"] == dict(randaug_m=None, unlabel_ratio=1,
                               train_ratio=2, dropout=0.2)
    assert table["b7"]["randaug_m"] == 27
    assert table["l2"]["unlabel_ratio"] == (14, 14, 28)
    config = imagenet_b7_to_l2.get_config("student=b3")
    (_, teacher), (_, student) = _stages(config)
    assert teacher.model.name == student.model.name == "efficientnet_b3"
    assert student.unlabel_ratio == 3 and student.total_epochs == 700
    assert "randaug(2, 12)" in student.pp.unlabeled
    with pytest.raises(ValueError, match="student="):
        imagenet_b7_to_l2.get_config("student=b9")


def test_imagenet_default_is_b7_to_l2_with_800_finetune():
    config = imagenet_b7_to_l2.get_config()
    stages = dict(_stages(config))
    assert stages["teacher"].model.name == "efficientnet_b7"
    assert stages["teacher"].model.image_size == 600
    ratios = [stages[f"iter{i}"].unlabel_ratio for i in (1, 2, 3)]
    assert ratios == [14, 14, 28]
    assert stages["iter1"].model.image_size == 475
    assert stages["iter1"].batch_size * stages["iter1"].learning_rate \
        / 256 == pytest.approx(0.128)
    ft = stages["finetune"]
    assert ft.model.image_size == 800 and ft.unlabel_ratio == 0
    assert "randaug" not in ft.pp.labeled and "flip" not in ft.pp.labeled
    # The finetune reads the tail of the L2 schedule: 625 steps per epoch.
    assert ft.total_steps + ft.schedule_offset_steps == 350 * 625
    assert 0 < ft.freeze_blocks < 88  # L2 has 88 blocks.
    assert config.data.labeled.label_offset == 1
    assert config.filter.num_image == 130_000
    assert config.labeling.num_shards == 1024


def test_svhn_recipe_numbers():
    config = _get_config("svhn_b0", "data_dir=/tmp/tfds")
    (_, teacher), (_, student) = _stages(config)
    assert student.teacher.path  # online teacher.
    assert student.data.unlabeled.split == "extra"
    assert student.data.validation.split == "train[:4000]"
    assert student.data.labeled.split == "train[4000:]"
    assert all(s.data_dir == "/tmp/tfds" for s in config.data.values())
    assert (student.batch_size, student.unlabel_ratio) == (128, 5)
    assert (student.final_lr, student.weight_decay) == (2e-4, 1e-4)
    assert student.total_steps == 109_474
    assert "flip" not in student.pp.labeled
    assert "randaug(2, 5, cutout_const=4, translate_const=4)" in \
        student.pp.labeled
    # final_base_lr: x0.97 about every 1.37 labeled epochs (spec 14).
    steps_per_epoch = 69_257 // 128
    decay = schedules.decay_epochs_for_final_lr(
        0.016, 2e-4, 109_474 / steps_per_epoch, 5)
    assert decay == pytest.approx(1.37, abs=0.01)
    offline = _get_config("svhn_b0", "offline")
    (_, _), (_, student) = _stages(offline)
    assert student.data.unlabeled.kind == "pseudo_labels"


def test_mixer_recipe_numbers():
    config = _get_config("mixer_b16", None)
    (_, teacher), (_, student) = _stages(config)
    # Adam lr 1e-3 at batch 4096 (docs/reference/mixer.md section 6).
    assert teacher.learning_rate * teacher.batch_size / 256 == \
        pytest.approx(1e-3)
    assert (teacher.optimizer, teacher.weight_decay) == ("adamw", 0.1)
    assert teacher.clip_global_norm == 1.0
    assert teacher.warmup_steps == 10_000
    assert "value_range(-1, 1)" in teacher.pp.labeled
    assert "normalize" not in teacher.pp.eval
    assert teacher.model.overrides.stochastic_depth_rate == 0.1
    assert student.unlabel_ratio > 0
    assert not stage_configs.students_of(_get_config("mixer_b16", "baseline"))


def test_demo_iterations_and_student_epochs_set_every_student():
    config = _get_config("fashion_mnist_demo",
                         "ceiling,iterations=3,student_epochs=24")
    students = list(config.students.values())
    assert list(config.students) == ["iter1", "iter2", "iter3"]
    assert [s.total_epochs for s in students] == [24, 24, 24]
    assert all(s.init_from_teacher for s in students)
    assert config.ceiling.enabled
    assert config.name == "fashion_mnist_demo,iterations=3,student_epochs=24"
    # Students are independent copies: one override must not move another.
    students[0].unlabel_ratio = 7
    assert students[1].unlabel_ratio == 3
    grown = _get_config("fashion_mnist_demo", "paper,iterations=4")
    assert [s.model.overrides.width_coefficient
            for s in grown.students.values()] == [0.375, 0.5, 0.5, 0.5]
    assert [s.total_epochs for s in grown.students.values()] == [40] * 4
    with pytest.raises(ValueError, match="iterations"):
        _get_config("fashion_mnist_demo", "iterations=-1")


def test_demo_ceiling_is_the_last_student_on_every_label():
    config = _get_config("fashion_mnist_demo", "full")
    ceiling = common.stage_config(config, stage_configs.ceiling_of(config))
    last = list(config.students.values())[-1]
    assert common.model_key(ceiling) == common.model_key(last)
    # All 60,000 training labels: no per-class selection.
    assert ceiling.data.labeled.to_dict() == dict(
        kind="fashion_mnist", split="train", num_classes=10)
    assert ceiling.data.eval.to_dict() == dict(config.data.eval.to_dict(),
                                               num_classes=10)
    assert not _get_config("fashion_mnist_demo", None).ceiling.enabled
