"""Related methods run by the same `Trainer`: KD, MEAL V2, Meta Pseudo Labels.

Each method is an `Objective` (see `training/objectives.py`) picked by the
stage config's `method` field; `runner.run_method` trains the teachers a
method needs and then its stage(s). The registry below is the one place
method names live; modules are imported on first use so `import
noisy_student_tf.methods` stays cheap.
"""

import importlib

# name -> (module under noisy_student_tf.methods, objective class name)
_OBJECTIVES = {
    "kd": ("kd", "DistillationObjective"),
    "meal_v2": ("meal_v2", "MealV2Objective"),
    "mpl": ("mpl", "MetaPseudoLabelsObjective"),
}


def list_methods():
    """Every registered method name, sorted."""
    return sorted(_OBJECTIVES)


def get_objective(name):
    """The objective class of a method.

    Args:
      name: one of `list_methods()`.

    Returns:
      The `Objective` subclass; call it with the stage config.

    Raises:
      ValueError: unknown method name (the message lists the valid ones).
    """
    if name not in _OBJECTIVES:
        raise ValueError(f"Unknown method {name!r}; valid: "
                         f"{', '.join(list_methods())}")
    module_name, class_name = _OBJECTIVES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)
