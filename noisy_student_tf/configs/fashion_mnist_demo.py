"""Fashion-MNIST Noisy Student demo: the README's main job.

4,000 labels (400 per class) from Debian's `dataset-fashion-mnist`, the
other 56,000 training images unlabeled, evaluation on the 10,000 test
images. A small-image EfficientNet-B0 (the reference's SVHN model: 4x4
final features at 32x32) at quarter width and depth teaches; two noised
students of the same architecture follow; the last one is exported as a
SavedModel and the robustness suite runs on all three.

    python scripts/noisy_student.py \\
        --config=noisy_student_tf/configs/fashion_mnist_demo.py \\
        --workdir=runs/fashion_mnist_demo

Noise (teacher and students alike, so the teacher is the fair labeled-only
baseline): flip, 2 px reflect-pad crop, RandAugment(2, 5) with the
reference's small-image constants, dropout 0.2, stochastic depth 0.2.
Fill 0 and no Invert/SolarizeAdd: Fashion-MNIST's background is black,
and grey borders or a white background cost a labeled-only model ~6
points here (see the README's demo section for what was measured).

Variants: default (15 min on 2 idle CPU cores, see
results/fashion_mnist_demo; students start from their teacher and train
briefly), `:full` (longer: a longer teacher, students from scratch for
many more steps, and the ceiling), `:ceiling` (adds the
last student's architecture trained on all 60,000 labels, for
`gap_closed`), `:paper` (`:full` with students that grow, 0.25 -> 0.375
-> 0.5 -> 0.5 of B0's width and depth over three iterations, each with a
labeled-only baseline of its own architecture; many hours here), `:quick`
(seconds; the end-to-end and fault tests; standard strides). Two knobs
combine with any of them: `iterations=N` (N students of the variant's
kind, default 2; 3 under :paper) and `student_epochs=E` (each student's
epochs of the labels, default 8, or 40 under :full), e.g.
`:ceiling,iterations=3,student_epochs=24` (the README's long-student
run). Results and runtimes: see the README.
"""

import copy

from noisy_student_tf.configs import common

CLEAN = 'decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")'
NOISY = ('decode(channels=1)|pad_to_size(32)|flip_lr|pad_crop(32, 2)|'
         'randaug(2, 5, cutout_const=4, translate_const=4, fill=0, '
         'exclude=("Invert", "SolarizeAdd"))|normalize("fashion_mnist")')
LABELED_KEYS = '|keep("image", "label")'
UNLABELED_KEYS = '|keep("image", "label", "probabilities")'


def get_config(arg=None):
    arg = common.parse_arg(arg, quick=False, full=False, ceiling=False,
                           paper=False, iterations=0, student_epochs=0)
    if arg.quick and arg.full:
        raise ValueError("choose one of :quick and :full")
    if arg.iterations < 0 or arg.student_epochs < 0:
        raise ValueError("iterations and student_epochs must be >= 1 "
                         "(unset: the variant's default)")
    arg.full = arg.full or arg.paper
    c = common.make_config()
    c.name = "fashion_mnist_demo" + (
        ":quick" if arg.quick else ":paper" if arg.paper else
        ":full" if arg.full else "") + "".join(
            f",{key}={arg[key]}" for key in ("iterations", "student_epochs")
            if arg[key])
    c.seed = 0
    c.num_classes = 10
    c.channels = 1
    fm = dict(kind="fashion_mnist", split="train")
    split = dict(per_class=400, seed=0)
    c.data = dict(
        labeled=dict(fm, select=dict(split, part="labeled")),
        unlabeled=dict(fm, select=dict(split, part="unlabeled")),
        eval=dict(kind="fashion_mnist", split="test"),
    )
    c.defaults = dict(
        batch_size=64,
        optimizer="rmsprop",
        learning_rate=0.064,  # per 256 labeled images: 0.016 at batch 64
        schedule="cosine",
        warmup_epochs=2,
        weight_decay=1e-5,
        label_smoothing=0.1,
        ema_decay=0.999,
        checkpoint_every_steps=500,
        log_every_steps=100,
        eval_batch_size=500,
    )
    model = dict(name="efficientnet_b0", image_size=32, overrides=dict(
        width_coefficient=0.25, depth_coefficient=0.25, small_image=True,
        dropout_rate=0.2, stochastic_depth_rate=0.2))
    noised = dict(labeled=NOISY + LABELED_KEYS, eval=CLEAN + LABELED_KEYS)
    c.teacher = dict(model=model, pp=noised,
                     total_epochs=60 if arg.full else 25)
    student = dict(
        model=model,
        pp=dict(noised, unlabeled=NOISY + UNLABELED_KEYS),
        unlabel_ratio=3,
        label_type="soft",
        mode="offline",
        # Epochs of the 4,000 labeled images; each step also takes 3x as
        # many pseudo-labeled images.
        total_epochs=arg.student_epochs or (40 if arg.full else 8),
        # The 20-minute default fine-tunes its teacher; :full trains each
        # student from scratch, as the paper does.
        init_from_teacher=not arg.full,
    )
    # One entry per iteration, in order; override e.g.
    # --config.students.iter2.unlabel_ratio=5.
    # Deep copies: ConfigDict keeps shared dicts shared, and an override of
    # one student's model must not change the other's.
    c.students = {f"iter{i}": copy.deepcopy(student)
                  for i in range(1, (arg.iterations or 2) + 1)}
    if arg.paper:
        _grow_students(c, arg.iterations or 3)
    c.labeling = dict(num_shards=4, batch_size=500, has_true_labels=True,
                      # "beam": Apache Beam pipelines (README).
                      engine="local", beam_options="")
    c.filter = dict(min_threshold=0.3, num_image=None, upsample=True)
    c.finetune = None
    # The last student's architecture on all 60,000 labels: the headroom
    # the unlabeled data can close (report.json `gap_closed`). Runs in
    # :full and with :ceiling (~30 min here).
    c.ceiling = dict(enabled=arg.full or arg.ceiling, pp=copy.deepcopy(noised),
                     data=dict(labeled=dict(fm)), total_epochs=15)
    c.export = dict(enabled=True)
    c.robustness = common.robustness_config()
    if not arg.full:
        # A sample of the test set keeps the suite to ~1 min for 3 models
        # (the 20-minute budget); :full uses the suite's defaults.
        c.robustness.update(num_examples=300, num_adversarial_examples=150,
                            num_perturbation_sequences=30)
    if arg.quick:
        _shrink_for_tests(c)
    return c


def _grow_students(c, iterations):
    """The paper's recipe at small scale (Section 3, B7 -> L2): students
    wider and deeper than their teachers (three iterations by default),
    each compared with its own architecture trained on the labels alone."""
    first = c.students.iter1
    c.students = {}
    for index in range(1, iterations + 1):
        scale = (0.375, 0.5)[min(index, 2) - 1]
        student = copy.deepcopy(first)
        student.model.overrides.width_coefficient = scale
        student.model.overrides.depth_coefficient = scale
        c.students[f"iter{index}"] = student
    c.student_baselines = dict(enabled=True)


def _shrink_for_tests(c):
    """Seconds-long variant for the end-to-end test (same code paths;
    standard strides, 4x cheaper than the small-image model)."""
    for stage in [c.teacher] + list(c.students.values()):
        stage.model.overrides.small_image = False
    c.robustness = common.robustness_config(quick=True)
    c.data.labeled.select.per_class = 20
    c.data.unlabeled.limit = 600
    c.data.eval = dict(kind="fashion_mnist", split="test", limit=200)
    c.defaults.batch_size = 16
    c.defaults.warmup_epochs = 0
    c.defaults.log_every_steps = 5
    c.defaults.checkpoint_every_steps = 10
    c.defaults.eval_batch_size = 100
    c.teacher.total_epochs = None
    c.teacher.total_steps = 20
    c.ceiling.data.labeled.limit = 600
    c.ceiling.total_epochs = None
    c.ceiling.total_steps = 20
    for student in c.students.values():
        student.total_epochs = None
        student.total_steps = 20
    c.labeling.num_shards = 2
    c.labeling.batch_size = 100
    # A 20-step teacher is unsure of everything; keep all its labels.
    c.filter.min_threshold = 0.0
