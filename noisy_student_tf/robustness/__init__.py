"""Robustness evaluation: ImageNet-C/P/A style metrics and FGSM/PGD.

Import the modules themselves (`from noisy_student_tf.robustness import
suite`); this package imports none of them, so loading one never loads
the rest.

Modules:
    corruptions         15 ImageNet-C corruptions, "imagenet" / "cifar"
                        constants (tables in corruption_tables).
    filters             image filters shared by corruptions and
                        perturbations.
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
    pixel_views         a saved model as pixels -> logits (its eval pp
                        split at the normalisation), data as model pixels.
    model_suite         the suite on saved models with a per-model cache;
                        the markdown comparison table.
"""
