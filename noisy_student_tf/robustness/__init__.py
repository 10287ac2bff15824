"""Robustness evaluation: ImageNet-C/P/A style metrics and FGSM/PGD.

Modules:
    corruptions         15 ImageNet-C corruptions, "imagenet" / "cifar"
                        constants (tables in corruption_tables).
    frost               the frost photographs of imagecorruptions-imaug,
                        or synthetic stand-ins.
    oracle              comparison with the imagecorruptions-imaug package.
    perturbations       ImageNet-P-style sequences for flip probabilities.
    metrics             mCE (AlexNet table), CIFAR-10-C error, flip
                        probability / mFR, ImageNet-A 200-class mask.
    adversarial         FGSM and PGD-k in pixel space (0-255).
    datasets            released CIFAR-10-C .npy files and prepared TFDS
                        robustness datasets.
    suite               run_robustness_suite -> JSON-serialisable report;
                        plot_robustness for several reports.
"""

from noisy_student_tf.robustness.adversarial import adversarial_accuracy
from noisy_student_tf.robustness.adversarial import fgsm
from noisy_student_tf.robustness.adversarial import pgd
from noisy_student_tf.robustness.corruptions import CORRUPTIONS
from noisy_student_tf.robustness.corruptions import corrupt
from noisy_student_tf.robustness.datasets import load_cifar10_c
from noisy_student_tf.robustness.datasets import load_tfds_robustness
from noisy_student_tf.robustness.datasets import tfds_corruption_name
from noisy_student_tf.robustness.metrics import ALEXNET_CLEAN_ERROR
from noisy_student_tf.robustness.metrics import ALEXNET_ERRORS
from noisy_student_tf.robustness.metrics import IMAGENET_A_CLASS_INDICES
from noisy_student_tf.robustness.metrics import corruption_errors
from noisy_student_tf.robustness.metrics import flip_probability
from noisy_student_tf.robustness.metrics import imagenet_a_logits
from noisy_student_tf.robustness.metrics import mce
from noisy_student_tf.robustness.metrics import mean_flip_rate
from noisy_student_tf.robustness.metrics import relative_mce
from noisy_student_tf.robustness.metrics import top1_error
from noisy_student_tf.robustness.metrics import unnormalized_mean_error
from noisy_student_tf.robustness.perturbations import PERTURBATIONS
from noisy_student_tf.robustness.perturbations import make_sequence
from noisy_student_tf.robustness.perturbations import make_sequences
from noisy_student_tf.robustness.suite import plot_robustness
from noisy_student_tf.robustness.suite import run_robustness_suite

__all__ = [
    "ALEXNET_CLEAN_ERROR", "ALEXNET_ERRORS", "CORRUPTIONS",
    "IMAGENET_A_CLASS_INDICES", "PERTURBATIONS", "adversarial_accuracy",
    "corrupt", "corruption_errors", "fgsm", "flip_probability",
    "imagenet_a_logits", "load_cifar10_c", "load_tfds_robustness",
    "make_sequence", "make_sequences", "mce", "mean_flip_rate", "pgd",
    "plot_robustness", "relative_mce", "run_robustness_suite",
    "tfds_corruption_name", "top1_error", "unnormalized_mean_error",
]
