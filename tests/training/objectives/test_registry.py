"""The objective registry: every method name a config uses is known, an
unknown name fails clearly, and `from_config` picks supervised, Noisy
Student or the named method."""

import ast
import os

import ml_collections
import pytest

from noisy_student_tf.configs import common
from noisy_student_tf.training import objectives
from noisy_student_tf.training.objectives import base
from noisy_student_tf.training.objectives import kd
from noisy_student_tf.training.objectives import noisy_student

CONFIG_DIR = os.path.dirname(common.__file__)


def _config_method_names():
    """Every string assigned to a `.method` attribute or passed as
    `method=` in the config modules (read, not run: no data needed)."""
    names = set()
    for file_name in sorted(os.listdir(CONFIG_DIR)):
        if not file_name.endswith(".py"):
            continue
        with open(os.path.join(CONFIG_DIR, file_name)) as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and t.attr == "method"
                    for t in node.targets):
                value = node.value
            elif isinstance(node, ast.keyword) and node.arg == "method":
                value = node.value
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(
                    value.value, str):
                names.add(value.value)
    return names


def test_get_knows_every_method_the_configs_use():
    used = _config_method_names()
    assert {"kd", "meal_v2", "mpl"} <= used
    for name in used:
        assert issubclass(objectives.get(name), base.SupervisedObjective)
    assert objectives.list_methods() == ["kd", "meal_v2", "mpl"]


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError,
                       match=r"Unknown method 'distill'; valid: kd, "
                             r"meal_v2, mpl"):
        objectives.get("distill")
    with pytest.raises(ValueError, match="Unknown method"):
        objectives.from_config(ml_collections.ConfigDict(
            {"method": "distill"}))


def test_from_config_picks_the_objective():
    def pick(**config):
        return type(objectives.from_config(
            ml_collections.ConfigDict(config)))

    assert pick(batch_size=8) is base.SupervisedObjective
    assert pick(unlabel_ratio=0) is base.SupervisedObjective
    assert pick(unlabel_ratio=3) is noisy_student.NoisyStudentObjective
    assert pick(method="kd", teacher={"path": "/t.keras"}) is \
        kd.DistillationObjective


def test_mode_defaults_to_offline():
    assert noisy_student.mode_of({}) == "offline"
    assert not noisy_student.is_online({"mode": "offline"})
    assert noisy_student.is_online(
        ml_collections.ConfigDict({"mode": "online"}))
