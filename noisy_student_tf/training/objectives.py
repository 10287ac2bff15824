"""What a training run optimises: supervised or Noisy Student (offline or
online teacher). Methods in `noisy_student_tf/methods/` subclass these.

An objective builds its inputs and runs one replica step; the `Trainer`
owns everything else. Losses are computed per replica and divided by the
number of replicas, because gradients are summed across replicas.
"""

import tensorflow as tf

from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import losses
from noisy_student_tf.training import optimizers


class SupervisedObjective:
    """Labeled cross-entropy with label smoothing (the teacher, baselines).

    Config: data.labeled, data.eval, pp.labeled, pp.eval, batch_size,
    label_smoothing, weight_decay, eval_batch_size.
    """

    def __init__(self, config):
        self.config = config
        self._num_labeled = None

    # === Inputs ===

    def num_labeled(self):
        if self._num_labeled is None:
            self._num_labeled = sources.count_records(
                self.config.data.labeled)
            if self._num_labeled < self.config.batch_size:
                raise sources.DataError(
                    f"labeled data has {self._num_labeled} examples, fewer "
                    f"than one batch ({self.config.batch_size})")
        return self._num_labeled

    def micro_batch_size(self):
        """Labeled images per forward pass (and per dataset batch):
        batch_size / accumulation_steps (`accumulation.py`)."""
        return accumulation.micro_batch_size(self.config)

    def images_per_step(self):
        """Images one optimizer step trains on (all micro-batches)."""
        return self.config.batch_size

    def make_dataset(self, input_context, seed):
        config = self.config
        return pipeline.make_train_dataset(
            sources.make_source(config.data.labeled), config.pp.labeled,
            self.micro_batch_size(), seed=seed, cache=config.get("cache", True),
            input_context=input_context,
            skip_corrupt=config.get("skip_corrupt", False))

    def make_eval_dataset(self, split="eval"):
        """Clean eval batches of `data.eval` or `data.validation`."""
        config = self.config
        if not config.data.get(split):
            return None
        return pipeline.make_eval_dataset(
            sources.make_source(config.data[split]), config.pp.eval,
            config.get("eval_batch_size", 256),
            skip_corrupt=config.get("skip_corrupt", False))

    def input_sources(self):
        """(source config, pp string) pairs the training pipeline reads,
        for naming the bad file when it fails (data/diagnose.py)."""
        return [(self.config.data.labeled, self.config.pp.labeled)]

    # === Model state ===

    def build(self, trainer):
        """Creates extra models/variables (called inside strategy.scope)."""

    def trackables(self):
        return {}

    def extra_trainable_variables(self):
        return []

    def finalize(self, trainer):
        """Called once after training (final model saved); returns extra
        entries for the stage result, e.g. MPL's trained teacher."""
        return {}

    # === Step ===

    def regularization(self, trainer):
        return optimizers.l2_regularization(
            trainer.model.trainable_variables,
            self.config.get("weight_decay", 0.0)
            if self.config.get("optimizer", "rmsprop") != "adamw" else 0.0)

    def replica_step(self, trainer, batch):
        config = self.config
        labels = batch["label"]
        with tf.GradientTape() as tape:
            logits = tf.cast(trainer.model(batch["image"], training=True),
                             tf.float32)
            data_loss = losses.labeled_loss(
                labels, logits, config.get("label_smoothing", 0.1))
            loss = data_loss + self.regularization(trainer)
            scaled = loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape)
        return {"loss": loss, "lab_loss": data_loss,
                "lab_acc": _accuracy(labels, logits)}


class NoisyStudentObjective(SupervisedObjective):
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
        if not self.online:
            return
        self.teacher = checkpoints.load_model(self.config.teacher.path)
        self.teacher.trainable = False
        student_classes = trainer.model.output_shape[-1]
        teacher_classes = self.teacher.output_shape[-1]
        if student_classes != teacher_classes:
            raise checkpoints.CheckpointError(
                f"teacher {self.config.teacher.path} predicts "
                f"{teacher_classes} classes, the student {student_classes}")

    def targets(self, unlabeled):
        config = self.config
        kwargs = dict(label_type=config.get("label_type", "soft"),
                      temperature=config.get("temperature", 1.0),
                      label_smoothing=config.get("label_smoothing", 0.1))
        if self.online:
            logits = self.teacher(unlabeled["teacher_image"], training=False)
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
            "lab_acc": _accuracy(labeled["label"], lab_logits),
            "unl_agree": _accuracy(tf.argmax(targets, -1), unl_logits),
            "unl_pred_prob": tf.reduce_mean(tf.reduce_max(unl_probs, -1)),
            "unl_target_prob": tf.reduce_mean(tf.reduce_max(targets, -1)),
        }


def _accuracy(labels, logits):
    predictions = tf.argmax(logits, -1)
    return tf.reduce_mean(tf.cast(
        tf.equal(predictions, tf.cast(labels, predictions.dtype)),
        tf.float32))


def from_config(config):
    """The objective a stage config names.

    `config.method` picks a related method (kd, meal_v2, mpl; see
    `noisy_student_tf.methods`); otherwise supervised when `unlabel_ratio`
    is 0/absent, else Noisy Student.
    """
    method = config.get("method")
    if method:
        from noisy_student_tf import methods

        return methods.get_objective(method)(config)
    if config.get("unlabel_ratio"):
        return NoisyStudentObjective(config)
    return SupervisedObjective(config)
