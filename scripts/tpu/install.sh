#!/usr/bin/env bash
# Installs noisy-student-tf on a TPU VM (run ON the VM, on every worker).
#
#   bash scripts/tpu/install.sh              # inside a copied checkout
#   REPO_URL=https://... bash install.sh     # clone into ~/$REMOTE_DIR
#
# Makes a virtualenv in .venv with `tensorflow-tpu` (TensorFlow plus the
# TPU runtime, libtpu) instead of the `tensorflow` wheel setup.py names,
# then installs this package and its other dependencies. Settings:
# TF_VERSION (default 2.21.*), REPO_URL / REPO_REF (clone instead of using
# the checkout this script is in), PYTHON (default python3).
set -euo pipefail
source "$(dirname "$0")/env.sh"

TF_VERSION="${TF_VERSION:-2.21.*}"
PYTHON="${PYTHON:-python3}"
LIBTPU_INDEX="https://storage.googleapis.com/libtpu-tf-releases/index.html"

if [ -n "${REPO_URL:-}" ]; then
  cd "$HOME"
  if [ ! -d "$REMOTE_DIR/.git" ]; then
    git clone "$REPO_URL" "$REMOTE_DIR"
  fi
  cd "$REMOTE_DIR"
  git fetch -q origin && git checkout -q "${REPO_REF:-origin/HEAD}"
else
  cd "$(dirname "$0")/../.."
fi
if [ ! -f setup.py ] || [ ! -f scripts/noisy_student.py ]; then
  echo "error: $(pwd) is not a noisy-student-tf checkout; copy the repo" \
       "to the VM first or set REPO_URL" >&2
  exit 2
fi
require_command "$PYTHON" "install Python 3.11+ (apt-get install python3-venv)"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# tensorflow-tpu provides the `tensorflow` module and pulls in libtpu.
.venv/bin/python -m pip install -q "tensorflow-tpu==$TF_VERSION" \
  -f "$LIBTPU_INDEX"
# Every dependency in setup.py except tensorflow (tensorflow-tpu is it),
# read from setup.py so this list cannot drift.
mapfile -t deps < <(.venv/bin/python - <<'PY'
import ast
tree = ast.parse(open("setup.py").read())
for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "install_requires":
        for item in ast.literal_eval(node.value):
            if not item.startswith("tensorflow=="):
                print(item)
PY
)
.venv/bin/python -m pip install -q "${deps[@]}"
.venv/bin/python -m pip install -q --no-deps -e .

.venv/bin/python -c 'import tensorflow as tf, keras
print("installed: TF", tf.__version__, "Keras", keras.__version__)'
if [ "${VERIFY:-1}" = 1 ]; then
  # Fails with the same message training would give when no TPU is found.
  .venv/bin/python - <<'PY'
from noisy_student_tf.training import distribute
strategy = distribute.get_strategy("tpu", "local")
print(f"TPU ok: {strategy.num_replicas_in_sync} replicas")
PY
fi
