"""Fashion-MNIST Noisy Student demo: the README's main job.

4,000 labels (400 per class) from Debian's `dataset-fashion-mnist`, the
other 56,000 training images unlabeled, evaluation on the 10,000 test
images. An EfficientNet teacher, then noised students (RandAugment,
dropout, stochastic depth) for two iterations, then a SavedModel export.

    python scripts/noisy_student.py \\
        --config=noisy_student_tf/configs/fashion_mnist_demo.py \\
        --workdir=runs/fashion_mnist_demo

Variants: `:quick` (seconds; CI end-to-end test), `:full` (longer
schedule). Expected results and runtimes: see the README.
"""

from noisy_student_tf.configs import common

CLEAN = 'decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")'
NOISY = ('decode(channels=1)|pad_to_size(32)|flip_lr|randaug(2, {m})|'
         'normalize("fashion_mnist")')
LABELED_KEYS = '|keep("image", "label")'
UNLABELED_KEYS = '|keep("image", "label", "probabilities")'


def get_config(arg=None):
    arg = common.parse_arg(arg, quick=False, full=False)
    c = common.make_config()
    c.name = "fashion_mnist_demo" + (":quick" if arg.quick else "")
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
        learning_rate=0.064,
        schedule="cosine",
        warmup_epochs=2,
        weight_decay=1e-5,
        label_smoothing=0.1,
        ema_decay=0.999,
        checkpoint_every_steps=500,
        log_every_steps=100,
        eval_batch_size=500,
    )
    small = dict(width_coefficient=0.25, depth_coefficient=0.25,
                 dropout_rate=0.2, stochastic_depth_rate=0.2)
    c.teacher = dict(
        model=dict(name="efficientnet_b0", image_size=32, overrides=small),
        pp=dict(labeled=NOISY.format(m=9) + LABELED_KEYS,
                eval=CLEAN + LABELED_KEYS),
        total_epochs=60,
    )
    student = dict(
        model=dict(name="efficientnet_b0", image_size=32, overrides=small),
        pp=dict(labeled=NOISY.format(m=9) + LABELED_KEYS,
                unlabeled=NOISY.format(m=9) + UNLABELED_KEYS,
                eval=CLEAN + LABELED_KEYS),
        unlabel_ratio=3,
        label_type="soft",
        mode="offline",
        total_epochs=120,
    )
    # One entry per iteration, in order; override e.g.
    # --config.students.iter2.unlabel_ratio=5.
    c.students = dict(iter1=student, iter2=dict(student))
    c.labeling = dict(num_shards=4, batch_size=500, temperature=1.0,
                      has_true_labels=True)
    c.filter = dict(min_threshold=0.3, num_image=None, upsample=True)
    c.finetune = None
    c.export = dict(enabled=True)
    c.robustness = None
    if arg.quick:
        _shrink_for_tests(c)
    return c


def _shrink_for_tests(c):
    """Seconds-long variant for the end-to-end test (same code paths)."""
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
    for student in c.students.values():
        student.total_epochs = None
        student.total_steps = 20
    c.labeling.num_shards = 2
    c.labeling.batch_size = 100
    # A 20-step teacher is unsure of everything; keep all its labels.
    c.filter.min_threshold = 0.0
