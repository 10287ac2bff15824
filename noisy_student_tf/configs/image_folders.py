"""Noisy Student on your own images: class folders + an unlabeled pile.

    C=noisy_student_tf/configs/image_folders.py
    python scripts/noisy_student.py --workdir=runs/mine \\
        --config=$C:labeled=data/train,unlabeled=data/pile,teacher=t.keras

The argument is a comma list of `key=value` and flags:

- `labeled=DIR`: one sub-folder per class (sorted folder names are the
  classes, 0..K-1); the class names go into the config (`class_names`),
  `report.json`, the predictions and the export.
- `unlabeled=DIR_OR_GLOB`: the unlabeled pile, a directory walked to any
  depth (image extensions in any case; other files ignored) or globs
  separated by `;` (`pile/*.jpg;more/**/*.png`). Files that do not decode
  are skipped and counted in the log. A comma cannot be written inside the
  argument: for such a path use `--config.data.unlabeled.pattern=...`.
- `eval=DIR` (optional): class folders with the labeled folder's classes.
  Without it, `holdout` (default 0.1) of each labeled class is held out
  (seed 0), never trained on, and reported as such in `report.json`.
- `model=NAME` (default efficientnet_b0; see models.list_models()),
  `image_size=N` (default: the model's native size).
- `teacher=FILE` (optional): a `.keras` teacher (from this project or
  `scripts/convert_weights.py`); no teacher is trained, the file labels
  the first iteration and its eval accuracy is measured and reported.
  `teacher_size=N`: its input size when it differs from `image_size`.
- `iterations=N` (default 1): noised students, each teaching the next.
- `quick`: a tiny model and a few steps at 32x32 (seconds; tests).

Preprocessing is the reference ImageNet one (noisystudent `data_input.py`):
inception crop + flip + RandAugment(2, 9) for training, a centre crop of
res/(res+32) for evaluation and labeling, ImageNet mean/std.
"""

import copy

import tensorflow as tf

from noisy_student_tf import models
from noisy_student_tf.configs import common
from noisy_student_tf.data import image_files
from noisy_student_tf.data import readers
from noisy_student_tf.data import sources

TRAIN_PP = ('decode|inception_crop({size})|flip_lr|randaug(2, 9)|'
            'normalize("imagenet")')
EVAL_PP = 'decode|center_crop({size})|normalize("imagenet")'
LABELED_KEYS = '|keep("image", "label")'
UNLABELED_KEYS = '|keep("image", "label", "probabilities")'


def get_config(arg=None):
    arg = common.parse_arg(
        arg, labeled="", unlabeled="", eval="", model="efficientnet_b0",
        image_size=0, teacher="", teacher_size=0, holdout=0.1,
        iterations=1, quick=False)
    if not arg.labeled or not arg.unlabeled:
        raise ValueError("image_folders needs labeled=DIR and "
                         "unlabeled=DIR_OR_GLOB")
    classes = class_folders(arg.labeled)
    if arg.eval:
        _check_same_classes(arg.eval, classes, arg.labeled)
    # Fails early, on one line, for a pile without images.
    pile_size = len(image_files.list_image_files(arg.unlabeled))
    size = 32 if arg.quick else (
        arg.image_size or models.default_image_size(arg.model))
    c = common.make_config()
    c.name = "image_folders" + (":quick" if arg.quick else "")
    c.seed = 0
    c.num_classes = len(classes)
    c.class_names = classes
    c.channels = 3
    c.data = _data(arg)
    c.defaults = dict(
        batch_size=32, optimizer="rmsprop",
        learning_rate=0.064,  # per 256 images: 0.008 at batch 32
        schedule="cosine", warmup_epochs=2, weight_decay=1e-5,
        label_smoothing=0.1, ema_decay=0.999, eval_batch_size=64,
        log_every_steps=50, checkpoint_every_steps=500)
    model = dict(name=arg.model, image_size=size, overrides={})
    teacher_size = arg.teacher_size or size
    # Deep copies: ConfigDict keeps shared dicts shared, and an override of
    # one stage's model must not change another's.
    c.teacher = dict(
        model=dict(copy.deepcopy(model), image_size=teacher_size),
        pp=_pp(teacher_size), total_epochs=30)
    if arg.teacher:
        c.teacher.path = arg.teacher
    student = dict(model=model, pp=dict(
        _pp(size), unlabeled=TRAIN_PP.format(size=size) + UNLABELED_KEYS),
        unlabel_ratio=3, label_type="soft", mode="offline",
        total_epochs=30, init_from_teacher=False)
    c.students = {f"iter{i}": copy.deepcopy(student)
                  for i in range(1, arg.iterations + 1)}
    # No empty labeling shard for a tiny pile.
    c.labeling = dict(num_shards=min(4, pile_size), batch_size=64,
                      has_true_labels=False, engine="local",
                      beam_options="")
    c.filter = dict(min_threshold=0.3, num_image=None, upsample=True)
    c.finetune = None
    c.export = dict(enabled=True)
    c.robustness = None
    if arg.quick:
        _shrink_for_tests(c)
    return c


def class_folders(root):
    """Sorted class folder names of a labeled tree (errors on one line)."""
    _, labels = readers.list_folder(root)  # checks root, classes, images
    names = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(root)
                   if tf.io.gfile.isdir(f"{root}/{name}"))
    empty = [name for label, name in enumerate(names)
             if label not in set(labels)]
    if empty:
        raise sources.DataError(f"class folder(s) {empty} of {root!r} hold "
                                "no images")
    return names


def _check_same_classes(eval_root, classes, labeled_root):
    found = class_folders(eval_root)
    if found != classes:
        missing = sorted(set(classes) - set(found))
        extra = sorted(set(found) - set(classes))
        raise sources.DataError(
            f"eval folder {eval_root!r} has other classes than the labeled "
            f"folder {labeled_root!r}: missing {missing}, extra {extra}")


def _pp(size):
    return dict(labeled=TRAIN_PP.format(size=size) + LABELED_KEYS,
                eval=EVAL_PP.format(size=size) + LABELED_KEYS)


def _data(arg):
    labeled = dict(kind="folder", root=arg.labeled)
    if arg.eval:
        evaluation = dict(kind="folder", root=arg.eval,
                          note=f"eval folder {arg.eval}")
    else:
        split = dict(holdout_fraction=arg.holdout, seed=0)
        labeled["select"] = dict(split, part="labeled")
        evaluation = dict(
            kind="folder", root=arg.labeled,
            select=dict(split, part="validation"),
            note=(f"held out: {arg.holdout:.0%} of each class of "
                  f"{arg.labeled} (seed 0), not trained on"))
    return dict(labeled=labeled, eval=evaluation,
                unlabeled=dict(kind="files", pattern=arg.unlabeled))


def _shrink_for_tests(c):
    """Seconds: a quarter-width B0 at 32x32, a few steps."""
    for stage in [c.teacher] + list(c.students.values()):
        stage.model.overrides = dict(width_coefficient=0.25,
                                     depth_coefficient=0.25)
        stage.total_epochs = None
        stage.total_steps = 6
    c.defaults.update(batch_size=8, warmup_epochs=0, eval_batch_size=32,
                      log_every_steps=2, checkpoint_every_steps=3)
    c.labeling.update(num_shards=min(2, c.labeling.num_shards),
                      batch_size=16)
    # A few steps leave the teacher unsure of everything: keep all labels.
    c.filter.min_threshold = 0.0
