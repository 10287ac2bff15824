"""Installs noisy-student-tf: Noisy Student Training in TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
    name="noisy-student-tf",
    version="0.1.0",
    description=(
        "Noisy Student Training (Xie et al., CVPR 2020) for TensorFlow 2 and "
        "Keras 3, with EfficientNet B0-B8/L2 and MLP-Mixer."
    ),
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=[
        "efficientnet", "efficientnet.*", "mixer", "mixer.*",
        "noisy_student_tf", "noisy_student_tf.*",
    ]),
    install_requires=[
        # No tensorflow-addons: end-of-life, fails to import under Keras 3.
        "tensorflow==2.21.*",
        "keras>=3.10",
        "absl-py>=2.1",
        # TF 2.21 no longer pulls it in; needed for tf.summary scalars.
        "tensorboard",
        "ml-collections>=0.1.1",
        "tensorflow-datasets>=4.9.6",
        # tfds' offline builders need it and tfds 4.9 does not pull it in.
        "importlib_resources",
        "matplotlib>=3.8",
        "numpy",
        "scipy>=1.11",
        "pillow",
    ],
    # Every user-facing program (scripts/*.py are wrappers over the same
    # modules for a checkout); benchmarks stay checkout-only.
    entry_points={"console_scripts": [
        "noisy-student = noisy_student_tf.cli.noisy_student:run",
        "noisy-student-train = noisy_student_tf.cli.train:run",
        "noisy-student-pseudo-label = noisy_student_tf.cli.pseudo_label:run",
        "noisy-student-filter = noisy_student_tf.cli.filter:run",
        "noisy-student-finetune = noisy_student_tf.cli.finetune:run",
        "noisy-student-evaluate = noisy_student_tf.cli.evaluate:run",
        "noisy-student-export = noisy_student_tf.cli.export:run",
        "noisy-student-predict = noisy_student_tf.cli.predict:run",
        "noisy-student-convert-weights = "
        "noisy_student_tf.cli.convert_weights:run",
        "noisy-student-robustness = noisy_student_tf.cli.robustness:run",
        "noisy-student-ablate = noisy_student_tf.cli.ablate:run",
        "noisy-student-run-method = noisy_student_tf.cli.run_method:run",
    ]},
    extras_require={
        # The tests' optional engines and oracles (CI runs them):
        # apache-beam for labeling.engine="beam", imagecorruptions-imaug
        # as the ImageNet-C reference of the corruption tests.
        "dev": ["pytest>=8", "pytest-timeout", "apache-beam>=2.77",
                "imagecorruptions-imaug==1.1.5"],
        # labeling.engine="beam": labeling and filtering on Apache Beam.
        "beam": ["apache-beam>=2.77"],
        # The six ImageNet-C frost photographs (read from the package).
        "robustness": ["imagecorruptions-imaug==1.1.5"],
        # Comparators for scripts/benchmark.py; optional everywhere else.
        "bench": ["keras-cv==0.9.0", "torch==2.13.0", "timm"],
    },
)
