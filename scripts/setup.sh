#!/usr/bin/env bash
# One-time machine setup: Debian packages, a virtualenv in .venv, the package.
# Idempotent: rerunning it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  # Fashion-MNIST (IDX gz files) is the demo's and the tests' real data.
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist python3-venv >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q -e ".[dev]"
echo "setup done: $(.venv/bin/python -c 'import tensorflow as tf, keras; print("TF", tf.__version__, "Keras", keras.__version__)' 2>/dev/null)"
