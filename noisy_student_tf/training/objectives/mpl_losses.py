"""Meta Pseudo Labels formulas: UDA, pseudo labels, the feedback reward.

Pure functions of tensors so the tests check them against hand values;
`mpl.py` wires them into the training step. Reference:
google-research `meta_pseudo_labels/training_utils.py` (`UDA.build_uda_
cross_entropy`, `MPL.step_fn`); differences are marked where they occur.
"""

import tensorflow as tf

PSEUDO_LABEL_KINDS = ("sample", "argmax")


def uda_weight_at(step, weight, ramp_steps):
    """weight * min(1, step / ramp_steps): linear ramp from 0 at step 0.

    Args:
      step: the global step before this step's update (0 first).
      weight: the final UDA weight.
      ramp_steps: ramp length; <= 0 or None means no ramp.

    Returns:
      A float32 scalar tensor.
    """
    step = tf.cast(step, tf.float32)
    if not ramp_steps or ramp_steps <= 0:
        return tf.constant(float(weight))
    return float(weight) * tf.minimum(1.0, step / float(ramp_steps))


def sharpened_targets(logits, temperature):
    """stop_gradient(softmax(logits / T)); T < 1 sharpens."""
    return tf.stop_gradient(tf.nn.softmax(
        tf.cast(logits, tf.float32) / temperature))


def uda_loss(weak_logits, strong_logits, temperature, threshold):
    """UDA consistency of the teacher between the two unlabeled views.

    Targets are the sharpened weak-view distribution; an example counts
    only when its *sharpened* top probability is >= threshold. The masked
    per-example cross-entropies are summed and divided by the unlabeled
    batch (not by the number kept), as the reference divides by
    train_batch_size * uda_data.

    Args:
      weak_logits: teacher logits on the clean/weak view, [U, C].
      strong_logits: teacher logits on the strong view, [U, C].
      temperature: sharpening temperature (0.7 on CIFAR-10).
      threshold: confidence threshold (0.6 on CIFAR-10).

    Returns:
      (loss, mask) with mask the float [U] keep-indicator.
    """
    targets = sharpened_targets(weak_logits, temperature)
    mask = tf.stop_gradient(tf.cast(
        tf.reduce_max(targets, axis=-1) >= threshold, tf.float32))
    per_example = -tf.reduce_sum(
        targets * tf.nn.log_softmax(tf.cast(strong_logits, tf.float32)),
        axis=-1)
    count = tf.cast(tf.shape(per_example)[0], tf.float32)
    return tf.reduce_sum(per_example * mask) / count, mask


def pseudo_labels(logits, kind="sample", seed=None):
    """Hard int64 pseudo labels from teacher logits, no gradient.

    Args:
      logits: [U, C] teacher logits on the view the student will see.
      kind: "sample" (one draw from softmax(logits), the paper) or
        "argmax".
      seed: int tensor of shape [2] for the stateless draw (fresh per
        step and replica, reproducible on resume).

    Raises:
      ValueError: unknown kind.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32))
    if kind == "argmax":
        return tf.argmax(logits, axis=-1)
    if kind == "sample":
        if seed is None:
            seed = tf.constant([0, 0], tf.int64)
        return tf.random.stateless_categorical(
            logits, 1, seed=seed, dtype=tf.int64)[:, 0]
    raise ValueError(f"pseudo-label kind must be one of "
                     f"{PSEUDO_LABEL_KINDS}, got {kind!r}")


def hard_cross_entropy(labels, logits):
    """mean_b CE(one_hot(labels), logits): the teacher's feedback term.

    Its gradient w.r.t. the logits is (softmax(z) - one_hot(y_hat)) / U,
    non-zero unlike the released code's CE(stop_grad(softmax(z)), z).
    """
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)))


def raw_reward(l_old, l_new, sign=1.0, clip=None):
    """h = sign * (L_old - L_new), optionally clipped to [-clip, clip].

    sign = +1 is the paper's first-order form (h > 0 when the student's
    labeled loss fell, reinforcing the teacher's label); the released code
    uses L_new - L_old (sign = -1; kekmodel #6). Its clip (0.1) sits here,
    before the baseline, but is commented out there; off by default.

    Args:
      l_old: the student's labeled CE before its pseudo-label step.
      l_new: the same loss after the step.
      sign: +1 (paper) or -1 (released code).
      clip: bound on |h|, or None.

    Returns:
      h, a float32 scalar with no gradient.
    """
    h = tf.stop_gradient(float(sign) * (tf.cast(l_old, tf.float32)
                                        - tf.cast(l_new, tf.float32)))
    if clip:
        h = tf.clip_by_value(h, -float(clip), float(clip))
    return h


def subtract_baseline(h, baseline, decay=0.99):
    """EMA baseline: b' = b + (1 - decay) * (h - b); returns (h - b', b').

    The released code updates the moving average first and subtracts the
    updated value (`moving_dot_product`, control dependency).

    Args:
      h: the raw reward (scalar tensor).
      baseline: the current baseline b (tensor, variable or float).
      decay: EMA decay (0.99 in the released code).

    Returns:
      (centred reward h - b', new baseline b').
    """
    baseline = tf.cast(tf.convert_to_tensor(baseline), tf.float32)
    new_baseline = baseline + (1.0 - decay) * (h - baseline)
    return tf.stop_gradient(h - new_baseline), new_baseline


def forward_without_updates(model, images, state=None):
    """Training-mode logits that leave batch-norm statistics untouched.

    L_new uses the student after its step in training mode, like the
    reference's second call; that call's batch-norm update ops are never
    run there, so this uses `stateless_call` and drops the new state.

    Args:
      model: a Keras model.
      images: its input batch.
      state: values for `model.non_trainable_variables` (BN statistics,
        dropout seed state); the current ones when None. Passing the same
        state twice gives the same dropout masks.
    """
    if state is None:
        state = [v.value for v in model.non_trainable_variables]
    logits, _ = model.stateless_call(
        [v.value for v in model.trainable_variables], state, images,
        training=True)
    return tf.cast(logits, tf.float32)
