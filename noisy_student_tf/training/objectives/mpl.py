"""Meta Pseudo Labels (Pham et al. 2021) as an objective of the `Trainer`.

Each step, on a labeled batch (x_l, y_l) and unlabeled images seen twice,
x_w (clean/weak view) and x_s (strongly augmented view):

1. Teacher forward on [x_l; x_w; x_s] (one pass, as the released code).
2. Hard pseudo label y_hat ~ softmax(T(x_s)) (sampled; `argmax` option).
3. Student step on CE(smooth(y_hat), S(x_s)) only (no true labels);
   L_old / L_new = the student's labeled CE (no smoothing) before / after
   that step (same forward kind, see `_student_step`), replica-averaged.
4. h = sign * (L_old - L_new), optionally clipped and minus an EMA
   baseline; the first-order form of the paper's dot product.
5. Teacher step on CE(smooth(y_l), T(x_l)) + w_uda(t) * UDA
   + feedback_weight * h * CE(y_hat, T(x_s)).

The feedback term is the score-function (REINFORCE) gradient of the
student's labeled loss through the *same* hard label the student used, so
it is non-zero; the released code's soft-target term CE(stop_grad(softmax
(z)), z) has zero gradient (google-research #534, #541). After this phase
the student is fine-tuned on the labeled data (a second stage, see
`scripts/run_method.py`); checkpoints are chosen on `data.validation`.

Config (stage): unlabel_ratio (uda_data), label_smoothing (student),
pp.{labeled, unlabeled_weak, unlabeled_strong, eval}, `teacher` (model and
its own optimizer knobs, see TEACHER_DEFAULTS) and `mpl` (MPL_DEFAULTS).
"""

import copy
import os

import ml_collections
import tensorflow as tf

from noisy_student_tf.configs import common
from noisy_student_tf.data import pipeline
from noisy_student_tf.data import sources
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import evaluate as evaluate_lib
from noisy_student_tf.training import losses
from noisy_student_tf.training.objectives import base
from noisy_student_tf.training.objectives import mpl_losses
from noisy_student_tf.training import optimizers
from noisy_student_tf.training import precision

TEACHER_FILE = "teacher.keras"

# The teacher's own optimizer (the spec's CIFAR-10-4K column): SGD with
# Nesterov momentum, cosine decay, wd 5e-4, label smoothing 0.15.
TEACHER_DEFAULTS = dict(
    optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.1,
    schedule="cosine", warmup_steps=0, weight_decay=5e-4,
    label_smoothing=0.15, clip_global_norm=None, init=None)

MPL_DEFAULTS = dict(
    uda_weight=8.0,         # final weight of the UDA consistency loss
    uda_steps=5000,         # linear ramp of that weight from step 0
    uda_temperature=0.7,    # sharpening of the weak-view targets
    uda_threshold=0.6,      # confidence mask on the *sharpened* targets
    pseudo_label="sample",  # paper: sampled hard label; or "argmax"
    feedback_weight=1.0,    # 0 = the "MPL term off" ablation
    reward_sign=1.0,        # +1 paper (L_old - L_new); -1 released code
    baseline=False,         # released code subtracts an EMA baseline
    baseline_decay=0.99,
    reward_clip=None,       # released code: 0.1, commented out
    matched_losses=True,    # L_old/L_new from one forward kind (see below)
)


# Schedule/optimizer knobs the teacher may also set (read with defaults).
_TEACHER_OPTIONAL = frozenset({
    "model", "warmup_epochs", "decay_epochs", "decay_factor", "final_lr",
    "schedule_offset_steps", "rmsprop_decay", "rmsprop_epsilon", "beta_1",
    "beta_2"})


def teacher_config(config):
    """The teacher's training knobs: TEACHER_DEFAULTS under `teacher`.

    Raises:
      ValueError: an unknown key under `teacher` (typos never pass).
    """
    given = dict(config.get("teacher") or {})
    common.check_keys(given, set(TEACHER_DEFAULTS) | _TEACHER_OPTIONAL,
                      "the MPL teacher config")
    merged = copy.deepcopy(TEACHER_DEFAULTS)
    merged.update({k: v for k, v in given.items() if k != "model"})
    return ml_collections.ConfigDict(merged)


def mpl_options(config):
    """MPL_DEFAULTS under the stage's `mpl` dict, validated.

    Raises:
      ValueError: unknown key, bad pseudo_label kind or reward sign.
    """
    given = dict(config.get("mpl") or {})
    unknown = sorted(set(given) - set(MPL_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown mpl option(s) {unknown}; valid: "
                         f"{sorted(MPL_DEFAULTS)}")
    options = ml_collections.ConfigDict(dict(MPL_DEFAULTS, **given),
                                        type_safe=False)
    if options.pseudo_label not in mpl_losses.PSEUDO_LABEL_KINDS:
        raise ValueError(f"mpl.pseudo_label must be one of "
                         f"{mpl_losses.PSEUDO_LABEL_KINDS}, got "
                         f"{options.pseudo_label!r}")
    if options.reward_sign not in (1.0, -1.0):
        raise ValueError(f"mpl.reward_sign must be 1 or -1, got "
                         f"{options.reward_sign}")
    return options


class MetaPseudoLabelsObjective(base.SupervisedObjective):
    """UDA teacher + pseudo-label student with the MPL feedback term.

    `trainer.model` is the student (its optimizer, EMA, evaluation and
    `model.keras` are the trainer's); the teacher, its optimizer and the
    reward baseline are built here and checkpointed with the run.
    """

    # Stage keys beyond the trainer's (it rejects unknown ones).
    CONFIG_KEYS = ("mpl", "nesterov")

    def __init__(self, config):
        super().__init__(config)
        if not config.get("unlabel_ratio"):
            raise ValueError("method 'mpl' needs unlabel_ratio > 0")
        for key in ("unlabeled_weak", "unlabeled_strong"):
            if not config.pp.get(key):
                raise ValueError(f"method 'mpl' needs pp.{key}")
        teacher = config.get("teacher") or {}
        if not teacher.get("model"):
            raise ValueError("method 'mpl' needs teacher.model (the "
                             "teacher's architecture)")
        if accumulation.steps_of(config) > 1:
            raise ValueError(
                "method 'mpl' cannot use accumulation_steps > 1: the "
                "teacher's reward needs the student's update on the same "
                "batch, every step; lower batch_size instead")
        self.options = mpl_options(config)
        self.teacher_config = teacher_config(config)
        self.teacher = None
        self.teacher_optimizer = None
        self.teacher_schedule = None
        self.baseline = None

    # === Inputs ===

    def unlabeled_batch_size(self):
        return pipeline.unlabeled_batch_size(self.config.batch_size,
                                             self.config.unlabel_ratio)

    def images_per_step(self):
        return self.config.batch_size + 2 * self.unlabeled_batch_size()

    def make_dataset(self, input_context, seed):
        config = self.config
        # "image" is the strong view (student and teacher feedback), the
        # "teacher_image" slot carries the weak view of the same record.
        return pipeline.make_mixed_dataset(
            sources.make_source(config.data.labeled),
            sources.make_source(config.data.unlabeled),
            labeled_pp=config.pp.labeled,
            unlabeled_pp=config.pp.unlabeled_strong,
            teacher_pp=config.pp.unlabeled_weak,
            batch_size=config.batch_size, unlabel_ratio=config.unlabel_ratio,
            seed=seed, cache_labeled=config.get("cache", True),
            input_context=input_context,
            skip_corrupt=config.get("skip_corrupt", False))

    # === Model state ===

    def build(self, trainer):
        config = self.config
        model = copy.deepcopy(config.teacher.model.to_dict())
        model.setdefault("num_classes", config.model.num_classes)
        model.setdefault("channels", config.model.get("channels", 3))
        self.teacher = precision.build_model(
            ml_collections.ConfigDict(model), trainer.precision)
        if tuple(self.teacher.input_shape[1:]) != tuple(
                trainer.model.input_shape[1:]):
            raise ValueError(
                f"MPL teacher input {self.teacher.input_shape[1:]} differs "
                f"from the student's {trainer.model.input_shape[1:]}: both "
                "see the same strong view")
        if self.teacher_config.get("init"):
            checkpoints.load_weights_from(self.teacher,
                                          self.teacher_config.init)
        optimizer, self.teacher_schedule = optimizers.make_optimizer(
            self.teacher_config, trainer.steps_per_epoch,
            trainer.total_steps, config.batch_size)
        # Under fp16 the teacher has its own loss scale.
        self.teacher_optimizer = precision.wrap_optimizer(
            optimizer, trainer.precision)
        self.teacher_optimizer.build(self.teacher.trainable_variables)
        # Same value on every replica (h is replica-averaged).
        self.baseline = tf.Variable(
            0.0, trainable=False, name="mpl_baseline",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def trackables(self):
        return {"teacher": self.teacher,
                "teacher_optimizer": self.teacher_optimizer,
                "mpl_baseline": self.baseline}

    def finalize(self, trainer):
        path = os.path.join(trainer.workdir, TEACHER_FILE)
        checkpoints.save_model_atomic(self.teacher, path)
        summary = {"model_path": path}
        dataset = self.make_eval_dataset("eval")
        if dataset is not None:
            summary["eval"] = {k: float(v) for k, v in evaluate_lib.evaluate(
                self.teacher, dataset, trainer.strategy).items()}
        return {"teacher": summary}

    # === Step ===

    def replica_step(self, trainer, batch):
        options, tconfig = self.options, self.teacher_config
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        x_l, y_l = labeled["image"], labeled["label"]
        x_weak, x_strong = unlabeled["teacher_image"], unlabeled["image"]
        n_l, n_u = tf.shape(x_l)[0], tf.shape(x_strong)[0]
        uda_weight = mpl_losses.uda_weight_at(
            trainer.step, options.uda_weight, options.uda_steps)
        with tf.GradientTape() as tape:
            logits = tf.cast(self.teacher(
                tf.concat([x_l, x_weak, x_strong], 0), training=True),
                tf.float32)
            t_lab = logits[:n_l]
            t_weak = logits[n_l:n_l + n_u]
            t_strong = logits[n_l + n_u:]
            t_sup = losses.labeled_loss(y_l, t_lab, tconfig.label_smoothing)
            uda, mask = mpl_losses.uda_loss(
                t_weak, t_strong, options.uda_temperature,
                options.uda_threshold)
            pseudo = mpl_losses.pseudo_labels(
                t_strong, options.pseudo_label,
                self._sample_seed(trainer.step))
            feedback_ce = mpl_losses.hard_cross_entropy(pseudo, t_strong)
            with tape.stop_recording():
                student = self._student_step(trainer, x_l, y_l, x_strong,
                                             pseudo)
                h, h_raw = self._reward(student["l_old"], student["l_new"])
            t_loss = (t_sup + uda_weight * uda
                      + options.feedback_weight * h * feedback_ce
                      + optimizers.l2_regularization(
                          self.teacher.trainable_variables,
                          tconfig.weight_decay))
            scaled = t_loss / trainer.num_replicas
        variables = self.teacher.trainable_variables
        grads = precision.gradients(self.teacher_optimizer, tape, scaled,
                                    variables)
        precision.apply(self.teacher_optimizer, grads, variables)
        metrics = {
            "loss": student["student_loss"] + t_loss,
            "teacher_loss": t_loss, "teacher_sup": t_sup, "uda_loss": uda,
            "uda_mask": tf.reduce_mean(mask), "uda_weight": uda_weight,
            "feedback_ce": feedback_ce, "h": h, "h_raw": h_raw,
            "baseline": tf.identity(self.baseline),
            "teacher_lab_acc": base.accuracy(y_l, t_lab),
            "teacher_lr": tf.cast(self.teacher_optimizer.learning_rate,
                                  tf.float32), **student}
        if "label" in unlabeled:
            metrics["pseudo_acc"] = tf.reduce_mean(tf.cast(tf.equal(
                pseudo, tf.cast(unlabeled["label"], pseudo.dtype)),
                tf.float32))
        return metrics

    def _student_step(self, trainer, x_l, y_l, x_strong, pseudo):
        """One student update on pseudo labels; L_old and L_new around it.

        With `mpl.matched_losses` (default) both losses come from the same
        labeled-only training-mode forward, with the same batch-norm batch
        and dropout masks, before and after the update, so h measures the
        update alone. The released code takes L_old from the joint
        [strong; labeled] pass and L_new from a labeled-only pass: its h
        also carries the batch-statistics difference (False reproduces it).
        """
        student = trainer.model
        n_u = tf.shape(x_strong)[0]
        num_classes = student.output_shape[-1]
        targets = losses.smoothed_one_hot(
            pseudo, num_classes, self.config.get("label_smoothing", 0.0))
        matched = self.options.matched_losses
        # Batch-norm statistics and dropout seeds as of before the step.
        state = [tf.identity(v.value)
                 for v in student.non_trainable_variables]
        if matched:
            old_logits = mpl_losses.forward_without_updates(student, x_l,
                                                            state)
        with tf.GradientTape() as tape:
            # [strong; labeled] in one pass, as the released code.
            logits = tf.cast(student(tf.concat([x_strong, x_l], 0),
                                     training=True), tf.float32)
            s_unl = losses.soft_cross_entropy(targets, logits[:n_u])
            s_loss = s_unl + self.regularization(trainer)
            scaled = s_loss / trainer.num_replicas
        trainer.apply_gradients(scaled, tape, student.trainable_variables)
        if not matched:
            old_logits = logits[n_u:]
        l_old = _replica_mean(losses.labeled_loss(y_l, old_logits, 0.0))
        new_logits = mpl_losses.forward_without_updates(
            student, x_l, state if matched else None)
        l_new = _replica_mean(losses.labeled_loss(y_l, new_logits, 0.0))
        return {"student_loss": s_loss, "student_unl": s_unl,
                "l_old": l_old, "l_new": l_new,
                "lab_acc": base.accuracy(y_l, logits[n_u:])}

    def _reward(self, l_old, l_new):
        """(h used by the teacher, h before the baseline)."""
        options = self.options
        h_raw = mpl_losses.raw_reward(l_old, l_new, options.reward_sign,
                                      options.reward_clip)
        if not options.baseline:
            return h_raw, h_raw
        h, new_baseline = mpl_losses.subtract_baseline(
            h_raw, self.baseline, options.baseline_decay)
        self.baseline.assign(new_baseline)
        return h, h_raw

    def _sample_seed(self, step):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        base = tf.cast(self.config.get("seed", 0), tf.int64) * 4096
        return tf.stack([base + tf.cast(replica, tf.int64),
                         tf.cast(step, tf.int64)])


def _replica_mean(value):
    """Mean over replicas (identity on one), so h is the same everywhere."""
    return tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.MEAN, value)
