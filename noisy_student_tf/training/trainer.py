"""The training loop: one custom loop on tf.distribute for every method.

`train(config, workdir)` runs a supervised teacher, a Noisy Student student
(offline or online) or, through an objective from `objectives/`, KD,
MEAL V2 or MPL. The loop owns what every method shares: strategy, model
build and init, optimizer and schedule, EMA, checkpoints and resume,
TensorBoard, progress, NaN guard, evaluation and the final model file.

Initialisation order (big_vision's, written out): workdir checkpoint
(resume) -> `config.model.init` (e.g. the teacher) -> scratch.
"""

import contextlib
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf import io_utils
from noisy_student_tf.configs import common
from noisy_student_tf.data import diagnose
from noisy_student_tf.data import pipeline
from noisy_student_tf.training import accumulation
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import distribute
from noisy_student_tf.training import ema as ema_lib
from noisy_student_tf.training import evaluate as evaluate_lib
from noisy_student_tf.training import finetune
from noisy_student_tf.training import objectives
from noisy_student_tf.training import optimizers
from noisy_student_tf.training import precision
from noisy_student_tf.training import run_log as run_log_lib
from noisy_student_tf.training import schedules
from noisy_student_tf.training import train_loop

MODEL_FILE = "model.keras"


class TrainingError(RuntimeError):
    """Training cannot continue (NaN loss, bad checkpoint, ...)."""


class Trainer:
    """State of one training run; objectives read and update it.

    Attributes:
      config: the stage config.
      strategy: the tf.distribute strategy.
      model: the model being trained.
      optimizer: its optimizer; `schedule` its learning-rate schedule.
      ema: `ExponentialMovingAverage` of the model (None if disabled).
      step: int64 step counter (optimizer steps).
      num_replicas: replicas in sync (losses are divided by it).
      precision: "none", "bf16" or "fp16" (`precision.py`).
      accumulator: `GradientAccumulator` when accumulation_steps > 1.
      train_loop: the loop function the last `run` traced (benchmarks).
    """

    def __init__(self, config, workdir, objective=None, strategy=None):
        self.config = config
        self.workdir = io_utils.ensure_writable_dir(workdir)
        self.strategy = strategy or distribute.get_strategy(
            config.get("strategy", "auto"), config.get("tpu"))
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.objective = objective or objectives.from_config(config)
        common.check_keys(
            config, set(common.TRAIN_DEFAULTS) | common.STAGE_KEYS
            | set(getattr(self.objective, "CONFIG_KEYS", ())),
            f"the stage config of {workdir}")
        self.precision = precision.mode_of(config)
        accumulation.micro_batch_size(config)  # fails early if it can't
        # Epochs, warmup and decay count optimizer steps of batch_size
        # images, whatever the accumulation.
        self.steps_per_epoch = max(
            1, self.objective.num_labeled() // config.batch_size)
        self.total_steps = schedules.resolve_steps(
            config, "total", self.steps_per_epoch)
        self.train_loop = None
        keras.utils.set_random_seed(config.get("seed", 0))
        with self.strategy.scope():
            self._build_state()
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            **({"ema": self.ema} if self.ema else {}),
            **self.objective.trackables())
        # Multi-worker (TF's multi-worker guide): every worker runs the same
        # steps and saves, but only the chief writes into the workdir; the
        # others write to a local scratch directory. All resume from the
        # chief's checkpoints.
        self.checkpoint_dir = os.path.join(self.workdir, "checkpoints")
        self.is_chief = distribute.is_chief()
        if not self.is_chief:
            self.workdir = tempfile.mkdtemp(prefix="noisy-student-worker-")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(self.workdir, "checkpoints"),
            max_to_keep=config.get("keep_checkpoints", 3))

    def _build_state(self):
        """Model, optimizer, objective state, EMA, counters (in scope)."""
        config = self.config
        self.model = precision.build_model(config.model, self.precision)
        if config.get("freeze_blocks", -1) >= 0:
            finetune.freeze_stem_and_blocks(self.model, config.freeze_blocks)
        optimizer, self.schedule = optimizers.make_optimizer(
            config, self.steps_per_epoch, self.total_steps,
            config.batch_size)
        self.optimizer = precision.wrap_optimizer(optimizer, self.precision)
        self.objective.build(self)
        # Building here (in scope) avoids a placeholder error ("You must
        # feed a value for placeholder tensor") on the first step with
        # several replicas in a custom loop (measured on TF 2.21).
        self.optimizer.build(self.trainable_variables)
        steps = accumulation.steps_of(config)
        self.accumulator = accumulation.GradientAccumulator(
            self.trainable_variables, steps) if steps > 1 else None
        self.ema = None
        if config.get("ema_decay"):
            # Shadows copy the variables: float32 in every precision mode.
            self.ema = ema_lib.ExponentialMovingAverage(
                self.model, config.ema_decay)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                name="step")
        self.nonfinite_steps = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="nonfinite_steps")

    @property
    def trainable_variables(self):
        return (self.model.trainable_variables
                + self.objective.extra_trainable_variables())

    # === Initialisation ===

    def initialize(self):
        """Resume from the workdir, else init from `model.init`, else scratch.

        Returns:
          The step training starts at.
        """
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest:
            checkpoints.restore(self.checkpoint, latest)
            log(f"resumed from {latest} at step {int(self.step.numpy())}")
            return int(self.step.numpy())
        init = self.config.model.get("init")
        if init:
            checkpoints.load_weights_from(
                self.model, init, skip_head=self.config.model.get(
                    "init_skip_head", False))
            log(f"initialised {self.config.model.name} from {init}")
        if self.ema is not None:
            self.ema.reset()
        return 0

    # === Steps ===

    def apply_gradients(self, loss, tape, variables=None):
        """Gradients of the replica's `loss` on `tape`, then the update.

        Objectives call this in their `replica_step`. Under fp16 the loss
        is scaled for the gradients (and unscaled by the optimizer); with
        accumulation the gradients are summed and applied after the last
        micro-batch (`train_loop`).

        Returns:
          The gradients (of the scaled loss under fp16).
        """
        variables = variables or self.trainable_variables
        grads = precision.gradients(self.optimizer, tape, loss, variables)
        if self.accumulator is not None:
            self.accumulator.add(grads, variables)
        else:
            precision.apply(self.optimizer, grads, variables)
        return grads

    # === Checkpoints and evaluation ===

    def save_checkpoint(self, last_loss):
        # A step's loss is computed before its update, so a finite loss can
        # still leave non-finite weights: check those too, or the "last
        # good" checkpoint would hold NaNs.
        if int(self.nonfinite_steps.numpy()) > 0 or not all(
                bool(tf.reduce_all(tf.math.is_finite(v)))
                for v in self.model.trainable_variables):
            raise TrainingError(self._nan_message(last_loss))
        self.manager.save(checkpoint_number=int(self.step.numpy()))

    def _nan_message(self, loss):
        good = self.manager.latest_checkpoint or "none (no checkpoint yet)"
        return (f"loss or weights became non-finite (loss {loss}) by step "
                f"{int(self.step.numpy())} in {self.workdir}; stopped "
                f"without saving. Last good checkpoint: {good}. Lower the "
                "learning rate or check the inputs, then rerun to resume.")

    def evaluate(self, max_batches=None, split="eval"):
        """EMA-weight metrics on `data.eval` (or `data.validation`)."""
        dataset = self.objective.make_eval_dataset(split)
        if dataset is None:
            return {}
        try:
            with self._ema_weights():
                return evaluate_lib.evaluate(self.model, dataset,
                                             self.strategy, max_batches)
        except (tf.errors.InvalidArgumentError,
                tf.errors.DataLossError) as error:
            if not diagnose.is_input_error(error):
                raise
            raise diagnose.explain_data_error(
                error, self.config.data[split], self.config.pp.eval,
                max_records=self.config.get("diagnose_max_records")) \
                from error

    def save_final_model(self):
        """Writes the (EMA) model as `model.keras`, atomically."""
        return self._save_model(os.path.join(self.workdir, MODEL_FILE))

    def _save_model(self, path):
        """The (EMA) weights in a float32 model (any precision mode), so
        labeling, export and later stages never inherit a training-time
        policy."""
        with self._ema_weights():
            model = precision.to_float32(self.model)
            return checkpoints.save_model_atomic(model, path)

    def _ema_weights(self):
        """Context with the EMA weights in the model (if there is one)."""
        return self.ema.swapped() if self.ema else contextlib.nullcontext()

    def _periodic_evaluation(self, step, run_log):
        """Evaluates on `data.validation` if given (else `data.eval`) and
        keeps the best validation model as `best.keras`: checkpoints are
        chosen on validation data, never on the test set."""
        has_validation = bool(self.config.data.get("validation"))
        split = "validation" if has_validation else "eval"
        result = run_log_lib.floats(self.evaluate(split=split))
        run_log.record(step, result, prefix=split)
        if not has_validation:
            return
        path = os.path.join(self.workdir, "best.json")
        best = io_utils.read_json(path) if tf.io.gfile.exists(path) else None
        if best is None or result["top1"] > best["top1"]:
            model_path = self._save_model(
                os.path.join(self.workdir, "best.keras"))
            io_utils.atomic_write_json(path, {
                "step": step, "top1": result["top1"],
                "model_path": model_path})

    # === Loop ===

    def run(self, progress=True):
        """Trains to `total_steps` (resuming), evaluates, saves the model.

        Returns:
          The stage result: eval metrics, steps, timing, `model_path`.
        """
        start = self.initialize()
        if start >= self.total_steps:
            log(f"already trained to step {start}")
        self._check_eval_shapes()
        iterator = self.make_iterator(start)
        self.train_loop = train_loop.make_train_loop(self)
        t0 = time.time()
        step, metrics = self._train(iterator, start, progress)
        if step > start:
            self.save_checkpoint(float(metrics["loss"]))
        return self._result(start, step, time.time() - t0)

    def _check_eval_shapes(self):
        # A pp string that does not fit the model fails deep in Keras inside
        # the traced step; name it before training instead.
        for split in ("validation", "eval"):
            eval_dataset = self.objective.make_eval_dataset(split)
            if eval_dataset is not None:
                pipeline.check_image_shapes(
                    eval_dataset.element_spec, self.model.input_shape,
                    self.model.name, stream="eval")

    def make_iterator(self, start=0):
        """Distributed iterator over the objective's training batches.

        Args:
          start: the step training resumes at (offsets the data seed).
        """
        def make_dataset(context):
            dataset = self.objective.make_dataset(
                context, seed=self.config.get("seed", 0) + start)
            pipeline.check_image_shapes(dataset.element_spec,
                                        self.model.input_shape,
                                        self.model.name)
            return dataset

        return iter(self.strategy.distribute_datasets_from_function(
            make_dataset))

    def _train(self, iterator, start, progress):
        """Calls the loop between log/checkpoint/eval boundaries.

        Returns:
          (last step, its metrics).
        """
        config = self.config
        log_every = max(1, config.get("log_every_steps", 50))
        ckpt_every = config.get("checkpoint_every_steps", 500)
        eval_every = config.get("eval_every_steps", 0)
        per_loop = max(1, config.get("steps_per_loop", 1))
        run_log = run_log_lib.RunLog(self.workdir, self.total_steps, start,
                                     progress)
        metrics, step = {}, start
        while step < self.total_steps:
            boundaries = [self.total_steps, _next_multiple(step, log_every)]
            if ckpt_every:
                boundaries.append(_next_multiple(step, ckpt_every))
            if eval_every:
                boundaries.append(_next_multiple(step, eval_every))
            num = min(per_loop, min(boundaries) - step)
            metrics = self._call_loop(iterator, num)
            step += num
            if step % log_every == 0 or step == self.total_steps:
                self._log(step, metrics, run_log)
            if ckpt_every and step % ckpt_every == 0:
                self.save_checkpoint(float(metrics["loss"]))
            if eval_every and (step % eval_every == 0
                               or step == self.total_steps):
                self._periodic_evaluation(step, run_log)
        return step, metrics

    def _call_loop(self, iterator, num):
        try:
            return self.train_loop(iterator, tf.constant(num, tf.int32))
        except (tf.errors.InvalidArgumentError,
                tf.errors.DataLossError) as error:
            if not diagnose.is_input_error(error):
                raise
            raise diagnose.explain_pipeline_error(
                error, self.objective.input_sources(),
                max_records=self.config.get("diagnose_max_records")) \
                from error

    def _log(self, step, metrics, run_log):
        """Records one log window; stops on a non-finite loss."""
        values = {k: float(v) for k, v in metrics.items()}
        if not np.isfinite(values["loss"]) or \
                int(self.nonfinite_steps.numpy()):
            raise TrainingError(self._nan_message(values["loss"]))
        values["lr"] = float(self.schedule(step))
        run_log.window(step, values, self.objective.images_per_step())

    def _result(self, start, step, wall):
        result = {"eval": run_log_lib.floats(self.evaluate()),
                  "steps": int(self.step.numpy()),
                  "train_seconds": wall, "model": self.config.model.name,
                  "model_path": self.save_final_model()}
        best = os.path.join(self.workdir, "best.json")
        if tf.io.gfile.exists(best):
            result["best_validation"] = io_utils.read_json(best)
        if step > start:
            result["img_per_s"] = (self.objective.images_per_step()
                                   * (step - start) / wall)
        result.update(self.objective.finalize(self))
        return result



def train(config, workdir, objective=None, strategy=None, progress=True,
          name=None):
    """Trains one stage into `workdir` (`name` in log lines, when given)
    and returns its result (eval metrics, steps, timing, `model_path`);
    the one place that skips a complete stage (`result.json` exists)."""
    if io_utils.stage_done(workdir):
        if name:
            log(f"{name}: complete, skipped")
        return io_utils.read_stage_result(workdir)
    if name:
        steps = config.get("total_steps")
        length = f"{steps} steps" if steps else \
            f"{config.get('total_epochs')} epochs"
        log(f"{name}: training {config.model.name} for {length}")
    io_utils.ensure_writable_dir(workdir)
    if distribute.is_chief():  # other workers write elsewhere (Trainer)
        # Temporaries of a killed run (model.keras, JSON) would stay.
        io_utils.remove_stale_temporaries(workdir)
        io_utils.atomic_write_json(os.path.join(workdir, "config.json"),
                                   config.to_dict())
    trainer = Trainer(config, workdir, objective, strategy)
    result = trainer.run(progress=progress)
    if trainer.is_chief:
        io_utils.mark_stage_done(workdir, result)
    if name:
        log(f"{name}: top-1 {result['eval'].get('top1', float('nan')):.4f}")
    return result


def log(message):
    print(f"[noisy-student] {message}", flush=True)


def _next_multiple(step, every):
    return (step // every + 1) * every
