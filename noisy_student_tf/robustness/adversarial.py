"""FGSM and PGD-k L-infinity attacks in pixel space.

Protocol of docs/reference/related_methods.md section 4.5: images are
float32 on the 0-255 scale, epsilon is given on the same scale (16 means
16/255 of the range), every iterate is clipped to [0, 255], and the model's
input normalisation lives inside `logits_fn`, so the attack perturbs raw
pixels. Untargeted: ascend the cross-entropy of the true label.

`logits_fn` maps a float32 [N, H, W, C] pixel batch to [N, K] logits and
should run the model in inference mode, e.g.
`lambda x: model(normalize(x), training=False)`.
"""

from typing import Callable, Iterable, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
PIXEL_MAX = 255.0


def _input_gradient(logits_fn: LogitsFn, x: tf.Tensor,
                    labels: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(logits_fn(x), tf.float32)
        # A sum, not a mean: only the sign is used, and a batch mean can
        # underflow per-pixel gradients of confident models.
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    # A constant classifier has no path to x; its gradient is 0, not None.
    return tape.gradient(
        loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _prepare(images, labels):
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)
    y = tf.cast(tf.reshape(tf.convert_to_tensor(labels), [-1]), tf.int64)
    return x, y


def fgsm(logits_fn: LogitsFn, images, labels, epsilon) -> tf.Tensor:
    """Fast gradient sign method: x' = clip(x + eps * sign(grad), 0, 255).

    Args:
        logits_fn: pixel batch -> logits.
        images: [N, H, W, C] pixels on the 0-255 scale (any real dtype).
        labels: [N] integer labels.
        epsilon: L-infinity budget on the 0-255 scale.

    Returns:
        float32 adversarial images, same shape as `images`.
    """
    x, y = _prepare(images, labels)
    grad = _input_gradient(logits_fn, x, y)
    adv = x + tf.cast(epsilon, tf.float32) * tf.sign(grad)
    return tf.clip_by_value(adv, 0.0, PIXEL_MAX)


def pgd(logits_fn: LogitsFn, images, labels, epsilon, steps: int = 10,
        step_size=None, random_start: bool = False,
        seed: int = 0) -> tf.Tensor:
    """Projected gradient descent (PGD-k) in the L-infinity ball.

    Each of `steps` iterations takes a signed gradient step of `step_size`,
    projects onto the epsilon-ball around the clean images and clips to
    [0, 255]. Works eagerly and inside tf.function (a tf.while_loop).

    Args:
        logits_fn: pixel batch -> logits.
        images: [N, H, W, C] pixels on the 0-255 scale.
        labels: [N] integer labels.
        epsilon: L-infinity budget on the 0-255 scale.
        steps: number of iterations k (10 in the paper).
        step_size: per-step size on the 0-255 scale; default
            2.5 * epsilon / steps (Madry et al.), enough to cross the ball.
        random_start: start from a uniform point in the ball.
        seed: seed of the stateless random start.

    Returns:
        float32 adversarial images, same shape as `images`.
    """
    x, y = _prepare(images, labels)
    eps = tf.cast(epsilon, tf.float32)
    alpha = (2.5 * eps / steps if step_size is None
             else tf.cast(step_size, tf.float32))
    lower = tf.maximum(x - eps, 0.0)
    upper = tf.minimum(x + eps, PIXEL_MAX)
    adv = x
    if random_start:
        noise = tf.random.stateless_uniform(
            tf.shape(x), seed=[seed, 0], minval=-1.0, maxval=1.0)
        adv = tf.clip_by_value(x + eps * noise, lower, upper)

    def step(i, adv):
        grad = _input_gradient(logits_fn, adv, y)
        # Projection onto the ball and [0, 255] at once: both are boxes.
        return i + 1, tf.clip_by_value(adv + alpha * tf.sign(grad), lower,
                                       upper)

    # An explicit while_loop (not autograph) so callers may trace with
    # tf.function(autograph=False); it also runs eagerly.
    _, adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), adv))
    return adv


ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def _batches(data, batch_size: int) -> Iterable:
    if isinstance(data, tf.data.Dataset):
        return data
    images, labels = data
    n = len(labels)
    return ((images[i:i + batch_size], labels[i:i + batch_size])
            for i in range(0, n, batch_size))


def adversarial_accuracy(
        logits_fn: LogitsFn,
        data: Union[tf.data.Dataset, tuple],
        epsilons: Sequence[float] = (1, 2, 4, 8, 16),
        attack: str = "fgsm",
        steps: int = 10,
        step_size: Optional[float] = None,
        random_start: bool = False,
        seed: int = 0,
        batch_size: int = 256,
        progress: bool = False) -> dict:
    """Top-1 accuracy under an attack, per epsilon.

    Args:
        logits_fn: pixel batch -> logits.
        data: a tf.data.Dataset of (images, labels) batches, or a pair of
            arrays (images [N, H, W, C] on 0-255, labels [N]).
        epsilons: budgets on the 0-255 scale.
        attack: "fgsm" or "pgd".
        steps: PGD iterations.
        step_size: PGD step size (default 2.5 * eps / steps).
        random_start: PGD random start.
        seed: PGD random-start seed; batch b uses seed + b.
        batch_size: batch size when `data` is a pair of arrays.
        progress: show a progress bar over batches.

    Returns:
        {epsilon: accuracy in [0, 1]}, in the order given.

    Raises:
        ValueError: on an unknown attack.
    """
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; valid: "
                         f"{', '.join(ATTACKS)}")

    # No autograph: nothing here needs it, and it would try to convert the
    # caller's logits_fn (warning on lambdas without source).
    @tf.function(reduce_retracing=True, autograph=False)
    def correct(x, y, eps, batch_seed):
        if attack == "fgsm":
            adv = fgsm(logits_fn, x, y, eps)
        else:
            adv = pgd(logits_fn, x, y, eps, steps=steps, step_size=step_size,
                      random_start=random_start, seed=batch_seed)
        pred = tf.argmax(logits_fn(adv), axis=-1)
        return tf.reduce_sum(tf.cast(
            pred == tf.cast(tf.reshape(y, [-1]), pred.dtype), tf.int64))

    hits = np.zeros(len(epsilons), np.int64)
    total = 0
    bar = None
    if progress:
        bar = keras.utils.Progbar(None, unit_name="batch")
    for b, (images, labels) in enumerate(_batches(data, batch_size)):
        x = tf.cast(images, tf.float32)
        y = tf.cast(tf.reshape(labels, [-1]), tf.int64)
        for i, eps in enumerate(epsilons):
            hits[i] += int(correct(x, y, tf.constant(eps, tf.float32),
                                   tf.constant(seed + b, tf.int32)))
        total += int(y.shape[0])
        if bar is not None:
            bar.add(1)
    return {eps: float(h) / max(total, 1) for eps, h in zip(epsilons, hits)}
