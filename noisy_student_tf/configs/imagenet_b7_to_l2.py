r"""ImageNet Noisy Student: EfficientNet-B7 teacher -> L2 -> L2 -> L2.

The paper's main result (88.4% top-1 with JFT-300M as unlabeled data;
docs/reference/noisy_student.md sections 1, 6, 7, 12, 15). Labeled data are
ImageNet TFRecord shards in the `imagenet_to_gcs.py` layout (`image/encoded`,
1-based `image/class/label`); unlabeled data are any TFRecord shards with
`image/encoded` (a label, if present, is ignored).

    ARGS=data_dir=gs://BUCKET/imagenet,unlabeled=gs://BUCKET/unlabeled/*
    python scripts/noisy_student.py --tpu=local \
        --config=noisy_student_tf/configs/imagenet_b7_to_l2.py:$ARGS \
        --workdir=gs://BUCKET/runs/b7_to_l2

Stages: B7 teacher at 600 (RandAugment N=2 M=27, dropout 0.5, stochastic
depth 0.2, 350 epochs); three L2 students at 475 with unlabeled:labeled
batch ratios 14, 14, 28 (paper), each pseudo-labeled by the previous model
(soft labels, confidence >= 0.3, at most 130,000 images per class,
duplicates for sparse classes); then a 1.5-epoch resolution finetune of the
last L2 at 800 on unaugmented images with the stem and the first
FINETUNE_FROZEN_BLOCKS blocks frozen, reading the tail of the LR schedule.

Expected (paper, with JFT-300M): L2-475 88.2%, L2 at 800 88.4% top-1 on
ImageNet validation (tensorflow/tpu README). With other unlabeled data
expect less; no public-data number exists.

Runtime: paper-scale TPU pods (each L2 step is 2,048 labeled + 28,672 or
57,344 unlabeled images at 475x475). Not runnable on one machine; see
scripts/tpu/README.md. Pseudo-labeling 300M images runs per shard and can
be spread over hosts with scripts/pseudo_label.py.

Variants (comma-separated):
  data_dir=DIR    ImageNet shards `train-*`, `validation-*` (gs:// works).
  unlabeled=GLOB  unlabeled shards (`;` separates several globs).
  student=bN      one same-architecture iteration bN -> bN with that row of
                  STUDENTS (spec section 7, noisystudent imagenet/train.sh),
                  no finetune; default l2 (B7 -> L2 x 3 -> finetune).
  minival         hold out the last 20 of 1,024 train shards (25,022
                  images) as `validation` for checkpoint picking, as plain
                  EfficientNet training does; the paper's numbers do not.
  quick           tiny models and data, a few steps (tests).
"""

from noisy_student_tf.configs import common

NUM_TRAIN = 1_281_167
NUM_MINIVAL = 25_022  # train shards 01004..01023 of 01024.
NUM_CLASSES = 1000

# Per-student settings (spec section 7; noisystudent local_scripts/imagenet/
# train.sh for B0-B7, the paper for L2). randaug_m None: crop and flip
# only. unlabel_ratio: unlabeled:labeled batch ratio (one per iteration for
# L2). train_ratio multiplies the 350 epochs and the 2.4-epoch decay period.
STUDENTS = {
    "b0": dict(randaug_m=None, unlabel_ratio=1, train_ratio=2, dropout=0.2),
    "b1": dict(randaug_m=None, unlabel_ratio=3, train_ratio=2, dropout=0.2),
    "b2": dict(randaug_m=6, unlabel_ratio=3, train_ratio=2, dropout=0.3),
    "b3": dict(randaug_m=12, unlabel_ratio=3, train_ratio=2, dropout=0.3),
    "b4": dict(randaug_m=15, unlabel_ratio=3, train_ratio=2, dropout=0.4),
    "b5": dict(randaug_m=18, unlabel_ratio=3, train_ratio=1, dropout=0.4),
    "b6": dict(randaug_m=24, unlabel_ratio=3, train_ratio=1, dropout=0.5),
    "b7": dict(randaug_m=27, unlabel_ratio=3, train_ratio=1, dropout=0.5),
    "l2": dict(randaug_m=27, unlabel_ratio=(14, 14, 28), train_ratio=1,
               dropout=0.5),
}
# Native resolutions (efficientnet/variants.py), except L2, which trains
# at 475 and is finetuned and evaluated at 800 (tensorflow/tpu README).
RESOLUTION = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380,
              "b5": 456, "b6": 528, "b7": 600, "l2": 475}
L2_TEST_RESOLUTION = 800
EPOCHS = 350
DECAY_EPOCHS = 2.4
STOCHASTIC_DEPTH = 0.2
# `--fix_layer_num` for L2 is unpublished. L2 has 88 blocks in stages of
# 6, 11, 11, 16, 16, 22, 6: freezing the first three stages (28 blocks,
# everything up to stride 8) keeps the low-level filters that FixRes-style
# finetuning should not re-learn while the deeper 60 blocks adapt to the
# new apparent object size.
FINETUNE_FROZEN_BLOCKS = 28
FINETUNE_EPOCHS = 1.5

# Reference ImageNet train path: inception-style crop, bicubic resize,
# flip, then RandAugment on uint8 (ImageNet constants 40 / 100).
TRAIN_PP = ('decode|inception_crop({res})|flip_lr{randaug}|'
            'normalize("imagenet")')
# Eval / teacher / pseudo-labeling view: centre crop res / (res + 32).
EVAL_PP = 'decode|center_crop({res})|normalize("imagenet")'
LABELED_KEYS = '|keep("image", "label")'
UNLABELED_KEYS = '|keep("image", "label", "probabilities")'


def train_pp(res, randaug_m, keys=LABELED_KEYS):
    randaug = f"|randaug(2, {randaug_m})" if randaug_m else ""
    return TRAIN_PP.format(res=res, randaug=randaug) + keys


def eval_pp(res):
    return EVAL_PP.format(res=res) + LABELED_KEYS


def get_config(arg=None):
    arg = common.parse_arg(
        arg, data_dir="gs://YOUR_BUCKET/imagenet",
        unlabeled="gs://YOUR_BUCKET/unlabeled/train-*", student="l2",
        minival=False, quick=False)
    if arg.student not in STUDENTS:
        raise ValueError(f"student={arg.student!r}; valid: "
                         f"{sorted(STUDENTS)}")
    c = common.make_config()
    c.name = f"imagenet_{arg.student}" + (":quick" if arg.quick else "")
    c.seed = 0
    c.num_classes = NUM_CLASSES
    c.channels = 3
    c.data = _data(arg)
    c.defaults = dict(
        batch_size=2048,  # labeled images per step (paper).
        optimizer="rmsprop",
        learning_rate=0.016,  # per 256: 0.128 at 2048.
        schedule="exponential",
        warmup_epochs=5,
        decay_factor=0.97,
        weight_decay=1e-5,
        label_smoothing=0.1,
        ema_decay=0.9999,
        mixed_precision="bf16",  # on TPU, as the reference (use_bfloat16).
        cache=False,  # 1.28M JPEGs do not fit in host memory.
        steps_per_loop=100,  # fewer host round trips on TPU.
        checkpoint_every_steps=1000,
        log_every_steps=100,
        eval_every_steps=5000 if arg.minival else 0,
        eval_batch_size=1024,
    )
    # `:quick` keeps every stage and op but runs at 32 px.
    res = {k: 32 if arg.quick else v for k, v in RESOLUTION.items()}
    if arg.student == "l2":
        c.teacher = _stage("efficientnet_b7", res["b7"], STUDENTS["b7"])
        row = STUDENTS["l2"]
        c.students = {
            f"iter{i}": _student("efficientnet_l2", res["l2"], row, ratio)
            for i, ratio in enumerate(row["unlabel_ratio"], start=1)}
        c.finetune = _finetune(arg, 48 if arg.quick else L2_TEST_RESOLUTION)
    else:
        # noisystudent imagenet/train.sh: teacher and student share the
        # architecture; the teacher is that model trained on labels only.
        name, row = f"efficientnet_{arg.student}", STUDENTS[arg.student]
        c.teacher = _stage(name, res[arg.student], row)
        c.students = {"iter1": _student(name, res[arg.student], row,
                                        row["unlabel_ratio"])}
        c.finetune = None
    c.labeling = dict(num_shards=1024, batch_size=256, has_true_labels=False,
                      # "beam": Apache Beam pipelines (README).
                      engine="local", beam_options="")
    # filter_unlabel.py as the ImageNet scripts run it.
    c.filter = dict(min_threshold=0.3, num_image=130_000, upsample=True)
    c.export = dict(enabled=True)
    c.robustness = None
    if arg.quick:
        _shrink_for_tests(c)
    return c


def _data(arg):
    root = arg.data_dir.rstrip("/")
    train = f"{root}/train-*"
    validation = None
    if arg.minival:
        # Shards 00000-01003 train, 01004-01023 validate.
        train = ";".join(f"{root}/train-{p}-of-01024" for p in (
            "00[0-9][0-9][0-9]", "0100[0-3]"))
        validation = dict(
            kind="tfrecord", label_offset=1, num_classes=NUM_CLASSES,
            pattern=";".join(f"{root}/train-{p}-of-01024" for p in (
                "0100[4-9]", "0101[0-9]", "0102[0-3]")))
    data = dict(
        labeled=dict(kind="tfrecord", pattern=train, label_offset=1,
                     num_classes=NUM_CLASSES),
        # Labels of unlabeled shards are never used (has_true_labels off).
        unlabeled=dict(kind="tfrecord", pattern=arg.unlabeled),
        eval=dict(kind="tfrecord", pattern=f"{root}/validation-*",
                  label_offset=1, num_classes=NUM_CLASSES),
    )
    if validation:
        data["validation"] = validation
    return data


def _model(name, res, row):
    return dict(name=name, image_size=res, overrides=dict(
        dropout_rate=row["dropout"],
        stochastic_depth_rate=STOCHASTIC_DEPTH))


def _stage(name, res, row):
    """A supervised (teacher) stage with a row's noise and duration."""
    return dict(
        model=_model(name, res, row),
        pp=dict(labeled=train_pp(res, row["randaug_m"]), eval=eval_pp(res)),
        total_epochs=EPOCHS * row["train_ratio"],
        decay_epochs=DECAY_EPOCHS * row["train_ratio"],
    )


def _student(name, res, row, unlabel_ratio):
    """A noised student trained on labeled + filtered pseudo-labeled data."""
    stage = _stage(name, res, row)
    stage["pp"]["unlabeled"] = train_pp(res, row["randaug_m"],
                                        UNLABELED_KEYS)
    stage.update(unlabel_ratio=unlabel_ratio, label_type="soft",
                 temperature=1.0, mode="offline")
    return stage


def _steps(epochs, num_images, batch_size):
    """Steps as the trainer counts them (labeled epochs, floor batches)."""
    return int(round(epochs * max(1, num_images // batch_size)))


def _finetune(arg, res):
    """Resolution finetune (spec section 12): 1.5 epochs at `res` (800),
    centre crops only, frozen shallow blocks, LR from the schedule's end."""
    num_labeled = NUM_TRAIN - (NUM_MINIVAL if arg.minival else 0)
    batch = 2048
    steps = _steps(FINETUNE_EPOCHS, num_labeled, batch)
    total = _steps(EPOCHS * STUDENTS["l2"]["train_ratio"], num_labeled,
                   batch)
    return dict(
        image_size=res,
        freeze_blocks=FINETUNE_FROZEN_BLOCKS,
        pp=dict(labeled=eval_pp(res), eval=eval_pp(res)),
        total_steps=steps,
        # `train_last_step_num`: the last `steps` steps of the L2 schedule
        # (no warmup: the offset is far past it).
        schedule_offset_steps=total - steps,
        decay_epochs=DECAY_EPOCHS * STUDENTS["l2"]["train_ratio"],
    )


def _shrink_for_tests(c):
    """Seconds-long variant: tiny widths/depths, a few steps.

    Expects tiny ImageNet-layout shards under `data_dir` (`train-*`,
    `validation-*`, 1-based labels) and an unlabeled glob.
    """
    for stage in [c.teacher] + list(c.students.values()):
        stage.model.overrides.update(width_coefficient=0.1,
                                     depth_coefficient=0.1)
        stage.total_epochs = None
        stage.total_steps = 3
    for name, limit in (("labeled", 64), ("unlabeled", 96), ("eval", 32)):
        c.data[name].limit = limit
    if c.data.get("validation"):
        c.data.validation.limit = 32
    c.defaults.update(batch_size=8, warmup_epochs=0, mixed_precision="none",
                      steps_per_loop=1, log_every_steps=1,
                      checkpoint_every_steps=3, eval_batch_size=16)
    if c.defaults.eval_every_steps:
        c.defaults.eval_every_steps = 3
    if c.finetune:
        # Tiny models have one block per stage (7 in all).
        c.finetune.freeze_blocks = 2
        c.finetune.total_steps = 2
        c.finetune.schedule_offset_steps = 1
    c.labeling.update(num_shards=2, batch_size=32)
    # A 3-step teacher is unsure of everything; keep all its labels.
    c.filter.update(min_threshold=0.0, num_image=None)

