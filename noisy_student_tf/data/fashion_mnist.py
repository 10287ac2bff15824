"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (IDX gz files).

Two ways in: `load_arrays` reads the IDX files directly (what the demo and
the tests use), and `build_tfds` prepares tfds' `fashion_mnist` offline from
the same files so `tfds.load("fashion_mnist", data_dir=...)` works without a
network (tfds' own download path fails here: its checksums do not match the
Debian gz files, whose gzip headers differ).
"""

import functools
import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SIZES = {"train": 60_000, "test": 10_000}
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
    "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _read_idx(path, magic, ndim):
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: install Debian's dataset-fashion-mnist "
            "(scripts/setup.sh does) or pass data_dir")
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    header = np.frombuffer(data, ">i4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{path}: bad IDX magic {header[0]}, expected {magic}")
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(data, np.uint8, offset=4 * (1 + ndim))
    if body.size != int(np.prod(shape)):
        raise ValueError(
            f"{path}: truncated IDX file ({body.size} bytes of pixels for "
            f"shape {shape})")
    return body.reshape(shape)


@functools.lru_cache(maxsize=4)
def load_arrays(split, data_dir=DEFAULT_DIR):
    """Returns (images uint8 [N, 28, 28, 1], labels int64 [N]) for a split.

    Raises:
      ValueError: unknown split or a malformed file.
      FileNotFoundError: the IDX files are missing.
    """
    if split not in FILES:
        raise ValueError(f"Fashion-MNIST split must be one of {sorted(FILES)},"
                         f" got {split!r}")
    image_file, label_file = FILES[split]
    images = _read_idx(os.path.join(data_dir, image_file), _IMAGES_MAGIC, 3)
    labels = _read_idx(os.path.join(data_dir, label_file), _LABELS_MAGIC, 1)
    if len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST {split}: {len(images)} images but "
                         f"{len(labels)} labels")
    images.setflags(write=False)
    return images[..., None], labels.astype(np.int64)


def build_tfds(data_dir, source_dir=DEFAULT_DIR):
    """Prepares tfds `fashion_mnist` in `data_dir` from the local IDX files.

    Afterwards `tfds.load("fashion_mnist", data_dir=data_dir,
    download=False)` reads 60,000 / 10,000 examples. Idempotent.
    """
    # Imported here, not at the top: tfds loads TensorFlow (~4.5 s on 2
    # CPU cores), and `load_arrays` serves NumPy-only callers (the
    # corruption oracle) in 0.15 s.
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification import mnist

    with tfds.core.registered.skip_registration():

        class LocalFashionMNIST(mnist.FashionMNIST):
            """tfds' builder, reading the Debian files instead of the URL."""

            name = "fashion_mnist"

            def _split_generators(self, dl_manager):
                paths = {
                    split: [dl_manager.extract(os.path.join(source_dir, f))
                            for f in FILES[split]]
                    for split in FILES
                }
                return [
                    tfds.core.SplitGenerator(
                        name=split,
                        gen_kwargs=dict(num_examples=SIZES[split],
                                        data_path=paths[split][0],
                                        label_path=paths[split][1]))
                    for split in FILES
                ]

    builder = LocalFashionMNIST(data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
    return builder
