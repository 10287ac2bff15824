"""Learning-rate schedules and duration arithmetic (reference semantics).

Durations may be given in steps or in epochs of *labeled* data, as in
noisystudent (`steps_per_epoch = num_labeled / labeled_batch`).
"""

import math

import keras
import tensorflow as tf


def resolve_steps(config, prefix, steps_per_epoch, default=None):
    """`{prefix}_steps`, else `{prefix}_epochs` * steps_per_epoch (rounded).

    Steps win when both are set, so a stage can give steps over inherited
    epoch defaults.
    """
    steps = config.get(f"{prefix}_steps")
    epochs = config.get(f"{prefix}_epochs")
    if steps is not None:
        return int(steps)
    if epochs is not None:
        return int(round(epochs * steps_per_epoch))
    if default is None:
        raise ValueError(f"Config needs {prefix}_steps or {prefix}_epochs")
    return default


def decay_epochs_for_final_lr(base_lr, final_lr, total_epochs, warmup_epochs,
                              decay_factor=0.97):
    """noisystudent `final_base_lr`: decay from base to final over the run.

    Compares against the *unscaled* base rate, as the reference does.
    """
    num_decays = math.log(final_lr / base_lr) / math.log(decay_factor)
    return (total_epochs - warmup_epochs) / num_decays


@keras.saving.register_keras_serializable(package="noisy_student_tf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0, then staircase exponential or cosine decay.

    Exponential decay is counted from step 0, not from the end of warmup
    (noisystudent `utils.build_learning_rate`), so the rate steps down by
    decay_factor^(warmup/decay_steps) right when warmup ends.

    Args:
      base_lr: peak learning rate (already scaled by batch size).
      total_steps: length of the run (cosine reaches 0 there).
      warmup_steps: linear warmup length.
      kind: "exponential", "cosine" or "constant".
      decay_steps: steps per decay for "exponential".
      decay_factor: multiplier per decay.
      offset: added to the step before evaluating, so a short finetune
        can read the tail of a longer schedule (`train_last_step_num`).
    """

    def __init__(self, base_lr, total_steps, warmup_steps=0,
                 kind="exponential", decay_steps=1, decay_factor=0.97,
                 offset=0):
        if kind not in ("exponential", "cosine", "constant"):
            raise ValueError(f"schedule kind must be exponential, cosine or "
                             f"constant, got {kind!r}")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.decay_steps = max(1, int(decay_steps))
        self.decay_factor = float(decay_factor)
        self.offset = int(offset)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + float(self.offset)
        if self.kind == "exponential":
            lr = self.base_lr * tf.pow(
                self.decay_factor, tf.floor(step / self.decay_steps))
        elif self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = tf.clip_by_value(
                (step - self.warmup_steps) / span, 0.0, 1.0)
            lr = 0.5 * self.base_lr * (1.0 + tf.cos(math.pi * progress))
        else:
            lr = tf.constant(self.base_lr)
        if self.warmup_steps > 0:
            warm = self.base_lr * step / self.warmup_steps
            lr = tf.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "kind": self.kind,
            "decay_steps": self.decay_steps,
            "decay_factor": self.decay_factor, "offset": self.offset,
        }


def build_schedule(config, steps_per_epoch, total_steps, batch_size):
    """The schedule an optimizer config describes.

    Config fields: `learning_rate` (per 256 labeled images, scaled by
    batch/256 like the reference's 0.016), `schedule` kind, `warmup_epochs`
    or `warmup_steps`, `decay_epochs`, `decay_factor`, `final_lr`
    (overrides decay_epochs), `schedule_offset_steps`.
    """
    base_lr = config.learning_rate * batch_size / 256.0
    warmup = resolve_steps(config, "warmup", steps_per_epoch, default=0)
    decay_epochs = config.get("decay_epochs", 2.4)
    if config.get("final_lr"):
        decay_epochs = decay_epochs_for_final_lr(
            config.learning_rate, config.final_lr,
            total_steps / steps_per_epoch, warmup / steps_per_epoch,
            config.get("decay_factor", 0.97))
    return WarmupDecay(
        base_lr, total_steps, warmup_steps=warmup,
        kind=config.get("schedule", "exponential"),
        decay_steps=decay_epochs * steps_per_epoch,
        decay_factor=config.get("decay_factor", 0.97),
        offset=config.get("schedule_offset_steps", 0))
