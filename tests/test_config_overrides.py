"""Every known key is settable from the command line; typos still fail.

The flags are parsed exactly as the absl binaries parse them
(`script_utils.add_override_fields` + ml_collections' config flag), on a
private FlagValues; no training runs here.
"""

import sys

from absl import flags
from ml_collections import config_flags
import pytest

from noisy_student_tf.cli import script_utils
from noisy_student_tf.configs import common
from noisy_student_tf.training import precision
from tests import testing

DEMO = "noisy_student_tf/configs/fashion_mnist_demo.py:quick"


def parse(*overrides, config=DEMO, monkeypatch=None):
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=values,
                                    lock_config=False)
    argv = ["prog", f"--config={config}", *overrides]
    # config_flags reads its overrides from sys.argv, as in a binary.
    monkeypatch.setattr(sys, "argv", argv)
    script_utils.add_override_fields(argv, values)
    values(argv)
    return values.config


@pytest.mark.parametrize("flag,path,value", [
    # Training defaults the demo does not list, of each type.
    ("--config.defaults.jit_compile=true", "defaults.jit_compile", True),
    ("--config.defaults.eval_every_steps=7", "defaults.eval_every_steps",
     7),
    ("--config.defaults.keep_checkpoints=1", "defaults.keep_checkpoints",
     1),
    # None-valued defaults take their key's type.
    ("--config.defaults.clip_global_norm=1", "defaults.clip_global_norm",
     1.0),
    ("--config.defaults.tpu=local", "defaults.tpu", "local"),
    # Any training default or stage key on one stage.
    ("--config.students.iter1.unlabel_ratio=5", "students.iter1."
     "unlabel_ratio", 5),
    ("--config.students.iter2.warmup_epochs=0.5", "students.iter2."
     "warmup_epochs", 0.5),
    ("--config.teacher.ema_decay=0.99", "teacher.ema_decay", 0.99),
    ("--config.teacher.total_epochs=2.5", "teacher.total_epochs", 2.5),
    ("--config.teacher.path=/models/t.keras", "teacher.path",
     "/models/t.keras"),
    # Labeling / filter / export keys, listed or not, None or not.
    ("--config.filter.num_image=100", "filter.num_image", 100),
    ("--config.filter.max_prob=0.9", "filter.max_prob", 0.9),
    ("--config.labeling.batch_size=32", "labeling.batch_size", 32),
    ("--config.labeling.engine=beam", "labeling.engine", "beam"),
    ("--config.export.enabled=false", "export.enabled", False),
])
def test_any_known_key_can_be_overridden(flag, path, value, monkeypatch):
    config = parse(flag, monkeypatch=monkeypatch)
    node = config
    for part in path.split("."):
        node = node[part]
    assert node == value and type(node) is type(value)
    common.check_experiment(config)
    # The override reaches the resolved stage the trainer gets.
    if path.startswith("students.iter1."):
        stage = common.stage_config(config, config.students.iter1)
        assert stage[path.rsplit(".", 1)[1]] == value
    if path.startswith("defaults."):
        stage = common.stage_config(config, config.teacher)
        assert stage[path.split(".")[1]] == value


@pytest.mark.parametrize("text,mode", [
    ("bf16", "bf16"), ("fp16", "fp16"), ("none", "none"),
    # The legacy bools, as the command line gives them (strings).
    ("True", "bf16"), ("false", "none")])
def test_mixed_precision_from_the_command_line(text, mode, monkeypatch):
    config = parse(f"--config.defaults.mixed_precision={text}",
                   monkeypatch=monkeypatch)
    assert config.defaults.mixed_precision == text
    stage = common.stage_config(config, config.teacher)
    assert precision.mode_of(stage) == mode


def test_new_training_defaults_are_picked_up(monkeypatch):
    # A key added to TRAIN_DEFAULTS later is overridable with its type.
    monkeypatch.setitem(common.TRAIN_DEFAULTS, "later_knob", 0.5)
    config = parse("--config.students.iter1.later_knob=4",
                   monkeypatch=monkeypatch)
    assert config.students.iter1.later_knob == 4.0
    assert type(config.students.iter1.later_knob) is float


@pytest.mark.parametrize("flag,message", [
    ("--config.filter.num_images=5",
     "unknown config key 'num_images' in filter (did you mean "
     "'num_image'?)"),
    ("--config.defaults.mixed_precison=True",
     "unknown config key 'mixed_precison' in defaults (did you mean "
     "'mixed_precision'?)"),
    ("--config.students.iter1.unlabel_ration=5",
     "unknown config key 'unlabel_ration' in students.iter1 (did you mean "
     "'unlabel_ratio'?)"),
    ("--config.labeling.num_shard=3",
     "unknown config key 'num_shard' in labeling (did you mean "
     "'num_shards'?)"),
    ("--config.students.0.unlabel_ratio=5",
     "students has no '0' (it has iter1, iter2)"),
])
def test_unknown_keys_fail_with_a_did_you_mean(flag, message, monkeypatch):
    with pytest.raises(common.ConfigKeyError) as error:
        parse(flag, monkeypatch=monkeypatch)
    assert message in str(error.value)


def test_wrong_type_fails_at_parse(monkeypatch):
    with pytest.raises(flags.IllegalFlagValueError, match="batch_size"):
        parse("--config.defaults.batch_size=abc", monkeypatch=monkeypatch)


@pytest.mark.parametrize("block,key", [
    ("filter", "num_images"), ("labeling", "shards"), ("export", "enable"),
    ("defaults", "learning_rat"), ("teacher", "pth")])
def test_blocks_are_key_checked(block, key, monkeypatch):
    from noisy_student_tf.configs import fashion_mnist_demo

    config = fashion_mnist_demo.get_config("quick")
    config[block][key] = 1
    with pytest.raises(ValueError, match=f"unknown config key.*{key}.*"
                       f"in {block}"):
        common.check_experiment(config)


def test_num_labeled_is_no_stage_key():
    assert "num_labeled" not in common.STAGE_KEYS


def test_the_drivers_help_example_works(monkeypatch):
    # The driver's docstring (its --help) shows this form.
    path = f"{testing.REPO}/noisy_student_tf/cli/noisy_student.py"
    with open(path) as handle:
        doc = handle.read()
    assert "--config.students.iter1.unlabel_ratio=5" in doc
    config = parse("--config.students.iter1.unlabel_ratio=5",
                   monkeypatch=monkeypatch)
    assert config.students.iter1.unlabel_ratio == 5


def test_a_typo_through_the_binary_is_one_line(tmp_path):
    proc = testing.run_script([
        "scripts/noisy_student.py", f"--config={DEMO}",
        f"--workdir={tmp_path / 'w'}", "--config.filter.num_images=5"])
    assert proc.returncode == 2
    assert testing.last_line(proc.stderr) == (
        "error: bad flag or config: unknown config key 'num_images' in "
        "filter (did you mean 'num_image'?)")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("script,config,overrides", [
    ("noisy_student.py", DEMO, ["--config.students.iter1.unlabel_ratio=5"]),
    ("filter.py", DEMO, ["--config.filter.min_threshold=0.5"]),
    ("finetune.py", "noisy_student_tf/configs/imagenet_b7_to_l2.py:quick",
     ["--config.finetune.image_size=800",
      "--config.finetune.freeze_blocks=20"]),
    ("run_method.py", "noisy_student_tf/configs/kd_fashion_mnist.py:quick",
     ["--config.student.alpha=0.5"]),
])
def test_every_help_override_parses(script, config, overrides,
                                    monkeypatch):
    # The overrides each script's docstring (its --help) shows.
    with open(f"{testing.REPO}/noisy_student_tf/cli/{script}") as handle:
        doc = handle.read()
    for flag in overrides:
        assert flag in doc, (script, flag)
    parsed = parse(*overrides, config=config, monkeypatch=monkeypatch)
    for flag in overrides:
        path, value = flag[len("--config."):].split("=")
        node = parsed
        for part in path.split("."):
            node = node[part]
        assert str(node) == value, flag
