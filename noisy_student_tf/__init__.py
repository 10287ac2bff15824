"""noisy-student-tf: Noisy Student Training for TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
