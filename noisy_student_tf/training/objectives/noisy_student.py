"""The Noisy Student objective (Xie et al. 2020, section 2): the noised
student learns from labels and from its teacher's targets on unlabeled
images, stored beforehand (offline) or computed in the step (online).

A student config's `mode` (default offline) is read by `mode_of`; the
layers above import it so they all agree on the default. The objective
itself goes by its stage config: online when `teacher.path` is set.
"""

import tensorflow as tf

from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import losses
from noisy_student_tf.training.objectives import base

OFFLINE = "offline"
ONLINE = "online"


def mode_of(student):
    """How a student gets its targets: "offline" (default) or "online".

    Args:
      student: a student's config (an experiment's `students` entry, or
        its stage config, which keeps the key).
    """
    mode = student.get("mode", OFFLINE)
    if mode not in (OFFLINE, ONLINE):  # a typo would silently pick one
        raise ValueError(f"student mode must be {OFFLINE!r} or {ONLINE!r}, "
                         f"got {mode!r}")
    return mode


def is_online(student):
    """True when the student's teacher runs in its training step."""
    return mode_of(student) == ONLINE


class NoisyStudentObjective(base.SupervisedObjective):
    """Labeled CE + w * CE against teacher targets on unlabeled images.

    Offline (default): targets from the stored "probabilities" of filtered
    pseudo-label records. Online (`teacher.path` set): the clean teacher
    runs in the step on "teacher_image" (eval view at its own resolution),
    in inference mode, its gradient stopped; only the student trains.

    Config adds: data.unlabeled, pp.unlabeled, pp.teacher (online),
    unlabel_ratio, unlabeled_loss_weight (default = unlabel_ratio, as the
    reference), label_type ("soft"/"hard"), temperature, teacher.path.
    """

    def __init__(self, config):
        super().__init__(config)
        self.teacher = None
        self.online = bool(config.get("teacher") and config.teacher.get("path"))
        ratio = config.unlabel_ratio
        weight = config.get("unlabeled_loss_weight")
        self.unlabeled_weight = ratio if weight is None else weight

    def images_per_step(self):
        micro = self.micro_batch_size()
        return accumulation.steps_of(self.config) * (
            micro + pipeline.unlabeled_batch_size(
                micro, self.config.unlabel_ratio))

    def make_dataset(self, input_context, seed):
        config = self.config
        return pipeline.make_mixed_dataset(
            sources.make_source(config.data.labeled),
            sources.make_source(config.data.unlabeled),
            labeled_pp=config.pp.labeled, unlabeled_pp=config.pp.unlabeled,
            teacher_pp=config.pp.teacher if self.online else None,
            batch_size=self.micro_batch_size(),
            unlabel_ratio=config.unlabel_ratio,
            seed=seed, cache_labeled=config.get("cache", True),
            input_context=input_context,
            skip_corrupt=config.get("skip_corrupt", False))

    def input_sources(self):
        config = self.config
        pairs = super().input_sources() + [
            (config.data.unlabeled, config.pp.unlabeled)]
        if self.online:
            pairs.append((config.data.unlabeled, config.pp.teacher))
        return pairs

    def build(self, trainer):
        if self.online:
            # The teacher sees its own view ("teacher_image") at its own
            # resolution, so only the class counts must agree.
            self.teacher = base.load_frozen_teacher(
                self.config.teacher.path, trainer.model, same_input=False)

    def targets(self, unlabeled):
        config = self.config
        kwargs = dict(label_type=config.get("label_type", "soft"),
                      temperature=config.get("temperature", 1.0),
                      label_smoothing=config.get("label_smoothing", 0.1))
        if self.online:
            logits = base.teacher_logits(self.teacher,
                                         unlabeled["teacher_image"])
            return losses.targets_from_logits(logits, **kwargs)
        return losses.targets_from_probabilities(
            unlabeled["probabilities"], **kwargs)

    def replica_step(self, trainer, batch):
        config = self.config
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        targets = self.targets(unlabeled)
        lab_images, unl_images = labeled["image"], unlabeled["image"]
        if lab_images.shape[1:] != unl_images.shape[1:]:
            raise ValueError(
                f"labeled images {lab_images.shape[1:]} and unlabeled images"
                f" {unl_images.shape[1:]} differ: pp.labeled and "
                "pp.unlabeled must produce the student's input size")
        num_labeled = tf.shape(lab_images)[0]
        # One forward pass over [labeled; unlabeled] so batch norm sees the
        # mixed batch, as the reference's `flatten_input` does.
        images = tf.concat([lab_images, unl_images], axis=0)
        with tf.GradientTape() as tape:
            logits = tf.cast(trainer.model(images, training=True), tf.float32)
            lab_logits, unl_logits = logits[:num_labeled], logits[num_labeled:]
            data_loss, parts = losses.noisy_student_loss(
                labeled["label"], lab_logits, targets, unl_logits,
                self.unlabeled_weight, config.get("label_smoothing", 0.1))
            loss = data_loss + self.regularization(trainer)
            scaled = loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape)
        unl_probs = tf.nn.softmax(unl_logits)
        return {
            "loss": loss, **parts,
            "lab_acc": base.accuracy(labeled["label"], lab_logits),
            "unl_agree": base.accuracy(tf.argmax(targets, -1), unl_logits),
            "unl_pred_prob": tf.reduce_mean(tf.reduce_max(unl_probs, -1)),
            "unl_target_prob": tf.reduce_mean(tf.reduce_max(targets, -1)),
        }
