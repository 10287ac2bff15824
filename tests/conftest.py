"""Shared pytest setup: quiet TensorFlow, seeded Keras, real-data paths."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python/NumPy/TF seeds."""
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def fashion_mnist_dir():
    """The Debian `dataset-fashion-mnist` files (installed by setup.sh)."""
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.fail(
            f"{FASHION_MNIST_DIR} missing: run scripts/setup.sh, which "
            "installs Debian's dataset-fashion-mnist")
    return FASHION_MNIST_DIR
