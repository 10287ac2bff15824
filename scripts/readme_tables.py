"""Regenerates the README's generated blocks: result tables from the files
under results/, and the layout from the source tree.

    python scripts/readme_tables.py            # rewrite README.md's blocks
    python scripts/readme_tables.py --check    # exit 1 if they are stale

Each `<!-- generated: KIND ARGS -->` ... `<!-- /generated -->` block of the
README is rebuilt from what it names (see
noisy_student_tf/experiment/readme_tables.py), so every number in those
tables is one a run wrote.
"""

import os
import sys

# A development tool: runs from the checkout, the repository on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from absl import flags  # noqa: E402

from noisy_student_tf import io_utils  # noqa: E402
from noisy_student_tf.cli import script_utils  # noqa: E402
from noisy_student_tf.experiment import readme_tables  # noqa: E402

_README = flags.DEFINE_string(
    "readme", os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "README.md"), "The README to update.")
_CHECK = flags.DEFINE_bool(
    "check", False, "Only check: exit 1 when a block differs from what "
    "it is generated from.")


def main(argv):
    del argv
    path = _README.value
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    updated = readme_tables.render(text, os.path.dirname(path))
    if updated == text:
        print(f"{path}: generated blocks up to date")
        return
    if _CHECK.value:
        raise ValueError(f"{path}: generated blocks differ from results/ or "
                         "the tree: run python scripts/readme_tables.py")
    io_utils.atomic_write_bytes(path, updated.encode("utf-8"))
    print(f"{path}: generated blocks regenerated")


if __name__ == "__main__":
    script_utils.run(main)
