"""Knowledge distillation on Fashion-MNIST: a wider teacher -> a small
student (Hinton et al. 2015), with the student-alone baseline.

4,000 labels (400 per class, the demo's split), 1,000 more held out as the
validation split that picks checkpoints, evaluation on the 10,000 test
images. The teacher (EfficientNet-B0 at width/depth 0.5) trains with
flips and crops; the student (width/depth 0.25, no dropout or stochastic
depth, clean inputs: KD does not noise the student) minimises
(1 - alpha) CE + alpha T^2 KL(teacher/T || student/T); the baseline is the
same student trained on the labels alone.

    python scripts/run_method.py \\
        --config=noisy_student_tf/configs/kd_fashion_mnist.py \\
        --workdir=runs/kd_fashion_mnist

Variants: `:quick` (tens of seconds on 2 cores; the end-to-end test);
`:alpha=0.5,temperature=2` change the KD knobs. Results: `report.json`.
"""

from noisy_student_tf.configs import common

CLEAN = 'decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")'
# The teacher's light augmentation: at 60 epochs a RandAugment(2, 9)
# teacher (81.7% test, measured) was weaker than the clean student alone.
AUGMENTED = ('decode(channels=1)|pad_to_size(32)|flip_lr|pad_crop(32, 2)|'
             'normalize("fashion_mnist")')
KEYS = '|keep("image", "label")'


def get_config(arg=None):
    arg = common.parse_arg(arg, quick=False, alpha=0.9, temperature=4.0)
    c = common.make_config()
    c.name = "kd_fashion_mnist" + (":quick" if arg.quick else "")
    c.method = "kd"
    c.seed = 0
    c.num_classes = 10
    c.channels = 1
    fm = dict(kind="fashion_mnist", split="train")
    split = dict(per_class=400, seed=0, validation_per_class=100)
    c.data = dict(
        labeled=dict(fm, select=dict(split, part="labeled")),
        validation=dict(fm, select=dict(split, part="validation")),
        eval=dict(kind="fashion_mnist", split="test"),
    )
    c.defaults = dict(
        batch_size=64, optimizer="rmsprop", learning_rate=0.064,
        schedule="cosine", warmup_epochs=2, weight_decay=1e-5,
        label_smoothing=0.1, ema_decay=0.999, checkpoint_every_steps=500,
        log_every_steps=100, eval_every_steps=500, eval_batch_size=500)
    big = dict(width_coefficient=0.5, depth_coefficient=0.5,
               dropout_rate=0.2, stochastic_depth_rate=0.2)
    small = dict(width_coefficient=0.25, depth_coefficient=0.25,
                 dropout_rate=0.0, stochastic_depth_rate=0.0)
    c.teachers = dict(teacher=dict(
        model=dict(name="efficientnet_b0", image_size=32, overrides=big),
        pp=dict(labeled=AUGMENTED + KEYS, eval=CLEAN + KEYS),
        total_epochs=60))
    student = dict(
        model=dict(name="efficientnet_b0", image_size=32, overrides=small),
        # The teacher sees this same clean batch (inference mode).
        pp=dict(labeled=CLEAN + KEYS, eval=CLEAN + KEYS),
        total_epochs=60)
    c.student = dict(student, alpha=arg.alpha, temperature=arg.temperature,
                     label_smoothing=0.0)  # Hinton: plain CE on labels.
    c.baseline = dict(student, label_smoothing=0.0)
    if arg.quick:
        _shrink_for_tests(c)
    return c


def _shrink_for_tests(c):
    """Seconds-long variant for the end-to-end test (same code paths)."""
    for source in (c.data.labeled, c.data.validation):
        source.select.per_class = 20
        source.select.validation_per_class = 5
    c.data.eval.limit = 200
    c.defaults.update(batch_size=16, warmup_epochs=0, log_every_steps=4,
                      checkpoint_every_steps=8, eval_every_steps=0,
                      eval_batch_size=100)
    for stage in (c.teachers.teacher, c.student):
        stage.total_epochs = None
        stage.total_steps = 8
    # One validation pass, at the end of the method stage only.
    c.student.eval_every_steps = 1000
    c.baseline = None
