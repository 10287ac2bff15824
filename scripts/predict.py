"""Thin wrapper: noisy_student_tf/cli/predict.py (see --help).

Installed (`pip install .`), the same program is the command
`noisy-student-predict`.
"""

import os
import sys

# Runs from a checkout without installing: the repository goes on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from noisy_student_tf.cli.predict import run  # noqa: E402

if __name__ == "__main__":
    run()
