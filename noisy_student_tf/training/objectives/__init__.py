"""What a training run optimises: supervised, Noisy Student (offline or
online teacher), or a related method (KD, MEAL V2, Meta Pseudo Labels).

Each objective builds its inputs and runs one replica step for the
`Trainer` (`base.py`). `from_config` picks the one a stage config asks
for; `OBJECTIVES` below is the one place method names live.
"""

from noisy_student_tf.training.objectives import base
from noisy_student_tf.training.objectives import kd
from noisy_student_tf.training.objectives import meal_v2
from noisy_student_tf.training.objectives import mpl
from noisy_student_tf.training.objectives import noisy_student

# A stage config's `method` -> its objective class.
OBJECTIVES = {
    "kd": kd.DistillationObjective,
    "meal_v2": meal_v2.MealV2Objective,
    "mpl": mpl.MetaPseudoLabelsObjective,
}


def list_methods():
    """Every registered method name, sorted."""
    return sorted(OBJECTIVES)


def get(name):
    """The objective class of a method.

    Args:
      name: one of `list_methods()`.

    Returns:
      The objective class; call it with the stage config.

    Raises:
      ValueError: unknown method name (the message lists the valid ones).
    """
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown method {name!r}; valid: "
                         f"{', '.join(list_methods())}")
    return OBJECTIVES[name]


def from_config(config):
    """The objective a stage config asks for.

    `config.method` names a related method (see `get`); otherwise
    supervised when `unlabel_ratio` is 0/absent, else Noisy Student.
    """
    method = config.get("method")
    if method:
        return get(method)(config)
    if config.get("unlabel_ratio"):
        return noisy_student.NoisyStudentObjective(config)
    return base.SupervisedObjective(config)
