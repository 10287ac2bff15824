"""Our ImageNet-C corruptions vs the imagecorruptions-imaug package.

Needs the package (`pip install -e '.[robustness]'`). Corrupts the first
--num_images Fashion-MNIST test images (upsampled to --size px, grey RGB)
with every corruption at every severity, ImageNet constants, on both
sides, and writes into --output_dir:

* oracle.json: per corruption and severity, our and the package's mean
  absolute change and standard deviation of the change, and the
  difference ("mad": pixel-wise for deterministic kinds, of the mean
  change for random kinds); "before" uses the synthetic frost textures,
  "after" the frost photographs;
* oracle.md: the per-corruption table the README quotes.

    python scripts/corruption_oracle.py --output_dir=runs/corruption_oracle

elastic_transform is not compared (the package rewrote it); see
tests/robustness/test_corruption_oracle.py for its reference.
"""

import os
import sys

# A development tool: runs from the checkout, the repository on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from absl import flags  # noqa: E402

from noisy_student_tf.cli import script_utils  # noqa: E402

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output directory.")
_SIZE = flags.DEFINE_integer("size", 224, "Image side in pixels (>= 32).")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 16, "Images per case.")
_NAMES = flags.DEFINE_list("names", None, "Corruptions to compare "
                           "(default: all but elastic_transform).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of both sides.")
_FROST_DRAWS = flags.DEFINE_integer(
    "frost_draws", 200, "Least frost draws per severity (the images are "
    "repeated): the photograph drawn dominates frost's change.")
_DATA_DIR = flags.DEFINE_string("fashion_mnist_dir", None,
                                "Fashion-MNIST IDX folder (default: the "
                                "Debian package's).")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False,
                                 "Hide the progress bar.")
flags.mark_flags_as_required(["output_dir"])


def main(argv):
    del argv
    import keras  # pylint: disable=g-import-not-at-top

    from noisy_student_tf import io_utils
    from noisy_student_tf.robustness import oracle

    if not oracle.available():
        raise ValueError("needs imagecorruptions-imaug: pip install -e "
                         "'.[robustness]'")
    output_dir = io_utils.ensure_writable_dir(_OUTPUT_DIR.value)
    images = oracle.fashion_mnist_images(_NUM_IMAGES.value, _SIZE.value,
                                         _DATA_DIR.value)
    names = _NAMES.value or list(oracle.EXACT + oracle.STATISTICAL)
    bar = None if _NO_PROGRESS.value else keras.utils.Progbar(
        len(names) + ("frost" in names), unit_name="corruption")
    result = oracle.before_and_after(
        images, _SEED.value, progress=bar and (lambda: bar.add(1)),
        frost_draws=_FROST_DRAWS.value, names=names)
    table = oracle.markdown_table(result["before"], result["after"])
    io_utils.atomic_write_json(os.path.join(output_dir, "oracle.json"),
                               result)
    io_utils.atomic_write_bytes(os.path.join(output_dir, "oracle.md"),
                                (table + "\n").encode())
    print("\n" + table, flush=True)


if __name__ == "__main__":
    script_utils.run(main)
