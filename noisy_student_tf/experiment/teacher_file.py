"""A teacher given as a model file: the `teacher/` stage without training.

The paper's large-scale use is a strong released teacher (NS-B7, L2)
labeling a big unlabeled pile. With `teacher.path` set (a `.keras` written
by a stage of this project, or by `scripts/convert_weights.py` from an
official checkpoint), the driver does not train a teacher: this stage
checks that the file fits the experiment (class count, input shape of the
teacher's eval view), measures its accuracy on the eval data and records
both in `teacher/result.json` (pointing at the file) and
`teacher/config.json`, like a trained stage. The labeling stage and the
per-stage binaries then find it as they find a trained teacher; a rerun
skips the stage.
"""

import os

from noisy_student_tf import io_utils
from noisy_student_tf.data import pipeline
from noisy_student_tf.experiment import workdir
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training import evaluate as evaluate_lib


def check_fits(model, stage, path):
    """Raises ValueError (one line) when the file cannot be this teacher.

    Args:
      model: the loaded Keras model.
      stage: the teacher's resolved stage config.
      path: the file, named in messages.
    """
    num_classes = stage.model.num_classes
    outputs = model.output_shape[-1]
    if outputs != num_classes:
        raise ValueError(
            f"teacher file {path} predicts {outputs} classes, the "
            f"experiment has {num_classes}: use a teacher trained on these "
            "classes")
    spec = evaluate_lib.eval_dataset(stage, skip_corrupt=False).element_spec
    try:
        pipeline.check_image_shapes(spec, model.input_shape, model.name,
                                    stream="eval")
    except ValueError as error:
        raise ValueError(f"teacher file {path}: {error}") from None


def evaluate_file(model, stage, path):
    """Top-1/top-5/loss of the teacher file on the experiment's eval data.

    Raises:
      sources.DataError: a bad eval image, named as training names it.
    """
    check_fits(model, stage, path)
    return evaluate_lib.evaluate_on_stage_data(model, stage)


def run(stage, stage_dir):
    """Checks, evaluates and records the teacher file (or reads its record).

    Args:
      stage: the teacher's resolved stage config, with `path`.
      stage_dir: the experiment's `teacher/` directory.

    Returns:
      The stage result: `model_path` (the file), `eval`, `model`,
      `from_file`, `steps` 0.

    Raises:
      FileNotFoundError: the file does not exist.
      checkpoints.CheckpointError: the file is not a loadable model.
      ValueError: wrong class count or input shape.
    """
    if io_utils.stage_done(stage_dir):
        workdir.log("teacher: complete (from file), skipped")
        return io_utils.read_stage_result(stage_dir)
    path = os.path.abspath(stage.path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher file {stage.path} does not exist "
                                "(teacher.path / teacher=)")
    workdir.log(f"teacher: from file {path}, no training")
    model = checkpoints.load_model(path)
    evaluation = evaluate_file(model, stage, path)
    io_utils.ensure_writable_dir(stage_dir)
    io_utils.atomic_write_json(os.path.join(stage_dir, "config.json"),
                               stage.to_dict())
    result = {"eval": evaluation, "steps": 0, "train_seconds": 0.0,
              "model": f"{model.name} ({os.path.basename(path)})",
              "model_path": path, "from_file": path}
    io_utils.mark_stage_done(stage_dir, result)
    workdir.log(f"teacher: top-1 {evaluation['top1']:.4f} on "
                f"{evaluation['num_examples']} eval images")
    return result
