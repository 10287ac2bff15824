"""MEAL V2 on Fashion-MNIST: a two-teacher ensemble distilled into a small
pretrained student with the discriminator, no hard labels.

Same data as the KD config (400 labels per class, 100 per class held out
for checkpoint selection, the 10,000 test images for evaluation). Two
EfficientNet-B0 (width/depth 0.5) teachers with different seeds form the
ensemble; the student (width/depth 0.25) is first trained supervised
(`student_init/`: MEAL V2 starts from pretrained weights, there is no
network at run time, so they are trained here), then distilled with
soft CE to the ensemble's mean softmax plus the discriminator loss, one
SGD over both, weight decay 0. `student_init` is the baseline to beat.

    python scripts/run_method.py \\
        --config=noisy_student_tf/configs/meal_v2_fashion_mnist.py \\
        --workdir=runs/meal_v2_fashion_mnist

Variants: `:quick` (tens of seconds on 2 cores; the end-to-end test).
Results: `report.json`.
"""

import copy

from noisy_student_tf.configs import common

CLEAN = 'decode(channels=1)|pad_to_size(32)|normalize("fashion_mnist")'
# The reference's RandomResizedCrop + flip, for 32-px images; the
# teachers and the student's pretraining use it too.
CROP_FLIP = ('decode(channels=1)|pad_to_size(32)|flip_lr|pad_crop(32, 4)|'
             'normalize("fashion_mnist")')
KEYS = '|keep("image", "label")'


def get_config(arg=None):
    arg = common.parse_arg(arg, quick=False)
    c = common.make_config()
    c.name = "meal_v2_fashion_mnist" + (":quick" if arg.quick else "")
    c.method = "meal_v2"
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
                 dropout_rate=0.2, stochastic_depth_rate=0.2)
    teacher = dict(
        model=dict(name="efficientnet_b0", image_size=32, overrides=big),
        pp=dict(labeled=CROP_FLIP + KEYS, eval=CLEAN + KEYS),
        total_epochs=60)
    # Seeds differ per member (the runner adds the member's index).
    # Deep copies: ConfigDict keeps shared dicts shared, so an override of
    # one stage's model would otherwise change the other's.
    c.teachers = dict(teacher1=teacher, teacher2=copy.deepcopy(teacher))
    student_model = dict(name="efficientnet_b0", image_size=32,
                         overrides=small)
    c.student_init = dict(
        model=student_model,
        pp=dict(labeled=CROP_FLIP + KEYS, eval=CLEAN + KEYS),
        total_epochs=30)
    c.student = dict(
        model=copy.deepcopy(student_model),
        pp=dict(labeled=CROP_FLIP + KEYS, eval=CLEAN + KEYS),
        # Reference: SGD momentum 0.9 (no Nesterov), weight decay 0, LR
        # 0.01 at batch 512; here 0.04 per 256 = 0.01 at batch 64.
        optimizer="sgd", nesterov=False, momentum=0.9, learning_rate=0.04,
        warmup_epochs=0, weight_decay=0.0,
        discriminator_loss_weight=1.0, discriminator_reduction=8,
        discriminator_min_width=8,
        total_epochs=30)
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
    for stage in (c.teachers.teacher1, c.teachers.teacher2, c.student_init,
                  c.student):
        stage.total_epochs = None
        stage.total_steps = 6
    # One validation pass, at the end of the method stage only.
    c.student.eval_every_steps = 1000
