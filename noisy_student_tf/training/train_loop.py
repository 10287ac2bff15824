"""The traced training loop of the `Trainer`.

`make_train_loop(trainer)` returns `loop(iterator, num_steps)`, a
`tf.function` running `num_steps` optimizer steps (the config's
`steps_per_loop`) and returning the last step's metrics. One optimizer step
is, per replica, the objective's `replica_step` on one batch -- or on
`accumulation_steps` micro-batches whose gradients are accumulated and
applied once -- then, across replicas: batch-norm statistics averaged,
the non-finite guard, the step counter and the EMA update.

With `jit_compile`, XLA compiles the replica step (model, loss, update);
the input iterator and the loop stay outside XLA, as in Keras' own
`Model.fit`.
"""

import tensorflow as tf

from noisy_student_tf.training import distribute
from noisy_student_tf.training import precision


def batch_norm_statistics(model):
    """The model's batch-norm moving means and variances."""
    return [v for v in model.non_trainable_variables
            if v.path.rsplit("/", 1)[-1] in ("moving_mean",
                                             "moving_variance")]


def make_train_loop(trainer):
    """The loop function `Trainer.run` calls (see the module docstring).

    Args:
      trainer: a built `Trainer` (strategy, model, objective, optimizer,
        accumulator, step, ema, nonfinite_steps, config).

    Returns:
      A `tf.function` `loop(iterator, num_steps) -> metrics`.
    """
    strategy = trainer.strategy
    explicit = distribute.is_explicit(strategy)
    # Keras 3 keeps batch-norm moving statistics per replica (weight
    # aggregation "none"), so replicas and workers drift apart and save
    # different values; average them after every forward pass instead.
    local_state = batch_norm_statistics(trainer.model)
    accumulator = trainer.accumulator
    jit = bool(trainer.config.get("jit_compile", False))

    def replica_step(batch):
        return trainer.objective.replica_step(trainer, batch)

    if jit:
        replica_step = tf.function(replica_step, jit_compile=True)

    def on_replicas(fn, *args):
        return strategy.run(fn, args=args) if explicit else fn(*args)

    def sync_local_state():
        values = [v.value for v in local_state]  # tf MirroredVariables
        means = strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.MEAN, [(v, v) for v in values])
        for variable, mean in zip(values, means):
            variable.assign(mean)

    def forward_backward(iterator):
        """One batch through `replica_step` on every replica; metrics
        averaged over replicas."""
        per_replica = on_replicas(replica_step, next(iterator))
        if not explicit:
            return per_replica
        if local_state and trainer.num_replicas > 1:
            sync_local_state()
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    def accumulated(iterator):
        """k micro-batches, metrics averaged over them, one update."""
        metrics = _as_float(micro(iterator))
        for _ in tf.range(accumulator.steps - 1):
            more = _as_float(micro(iterator))
            metrics = {k: metrics[k] + more[k] for k in metrics}
        metrics = {k: v / accumulator.steps for k, v in metrics.items()}
        on_replicas(accumulator.apply, trainer.optimizer)
        return metrics

    if accumulator is not None:
        # Its own function: traced once, called k times per step.
        micro = tf.function(forward_backward)

    def one_step(iterator):
        if accumulator is None:
            metrics = forward_backward(iterator)
        else:
            metrics = accumulated(iterator)
        finite = tf.math.is_finite(metrics["loss"])
        trainer.nonfinite_steps.assign_add(
            tf.cast(tf.logical_not(finite), tf.int64))
        trainer.step.assign_add(1)
        if trainer.ema is not None:
            trainer.ema.update(trainer.step)
        scale = precision.loss_scale(trainer.optimizer)
        if scale is not None:
            metrics = dict(metrics, loss_scale=scale)
        return metrics

    def loop(iterator, num_steps):
        metrics = one_step(iterator)
        for _ in tf.range(num_steps - 1):
            metrics = one_step(iterator)
        return metrics

    return tf.function(loop)


def _as_float(metrics):
    return {k: tf.cast(v, tf.float32) for k, v in metrics.items()}
