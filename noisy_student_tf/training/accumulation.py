"""Gradient accumulation: one optimizer step from k micro-batches.

`defaults.accumulation_steps=k` splits every optimizer step's batch into k
micro-batches of `batch_size / k` (big_vision's `accum_steps` convention:
`batch_size` stays the batch of one update). Each micro-batch runs forward
and backward; its gradients (of the replica's loss, a mean over the
micro-batch) are summed into per-replica accumulators, and after k of
them the optimizer applies the mean once. So the update equals the one of
a single batch of `batch_size` images, batch-norm aside (its statistics
come from micro-batches); the learning rate, warmup, epochs, checkpoints,
EMA and logging all count optimizer steps, unchanged by k.

Keras' own `gradient_accumulation_steps` is not used: its learning-rate
schedule is evaluated at the count of micro-steps (`_iterations`), not of
updates.
"""

import tensorflow as tf

from noisy_student_tf.training import precision


def steps_of(config):
    """`config.accumulation_steps` (1 when unset), validated.

    Raises:
      ValueError: not a positive integer.
    """
    steps = config.get("accumulation_steps", 1)
    if steps is None:
        return 1
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"accumulation_steps must be a positive integer, "
                         f"got {steps!r}")
    return steps


def micro_batch_size(config):
    """Labeled images per micro-batch: batch_size / accumulation_steps.

    Raises:
      ValueError: batch_size is not a multiple of accumulation_steps.
    """
    steps = steps_of(config)
    if config.batch_size % steps:
        raise ValueError(
            f"batch_size {config.batch_size} is not a multiple of "
            f"accumulation_steps {steps}: each optimizer step takes "
            f"accumulation_steps equal micro-batches")
    return config.batch_size // steps


class GradientAccumulator:
    """Per-replica gradient sums over the micro-batches of one step.

    Create it inside the strategy scope. The sums are sync-on-read
    variables, so each replica adds its own gradients; `apply` hands the
    replica's mean to the optimizer, which sums over replicas as for any
    step. The sums are zero between optimizer steps, so checkpoints need
    not hold them.
    """

    def __init__(self, variables, steps):
        self.steps = int(steps)
        self.variables = list(variables)
        self._index = {id(v): i for i, v in enumerate(self.variables)}
        self._unused = set()
        self.sums = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                        name=f"grad_accum_{i}",
                        synchronization=tf.VariableSynchronization.ON_READ,
                        aggregation=tf.VariableAggregation.SUM)
            for i, v in enumerate(self.variables)]

    def add(self, grads, variables):
        """Adds one micro-batch's gradients (replica context).

        Raises:
          ValueError: `variables` are not the ones the optimizer steps.
        """
        variables = list(variables)
        if [id(v) for v in variables] != [id(v) for v in self.variables]:
            raise ValueError(
                "gradient accumulation covers the trainer's trainable "
                "variables only; an objective that updates other variables "
                "(with its own optimizer) cannot use accumulation_steps > 1")
        for index, (total, grad) in enumerate(zip(self.sums, grads)):
            if grad is None:  # known when tracing: never used in the loss
                self._unused.add(index)
                continue
            total.assign_add(tf.convert_to_tensor(grad))

    def apply(self, optimizer):
        """Applies the mean gradient and zeroes the sums (replica context)."""
        grads = [None if i in self._unused else total / self.steps
                 for i, total in enumerate(self.sums)]
        precision.apply(optimizer, grads, self.variables)
        # tf.function orders these writes after the reads above (automatic
        # control dependencies on the same variables).
        for total in self.sums:
            total.assign(tf.zeros_like(total))
