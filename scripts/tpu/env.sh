# Shared settings for the scripts in scripts/tpu (sourced, not run).
#
# Every setting is an environment variable with a default; export your own
# values before running a script.

TPU_NAME="${TPU_NAME:-noisy-student}"
# v4 TPUs live in us-central2-b; pick the zone that has your quota.
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
# A base image: no tpu-vm-tf-* image ships TF 2.21, so install.sh puts
# tensorflow-tpu into a virtualenv instead.
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
# Where the repository lives on the TPU VM.
REMOTE_DIR="${REMOTE_DIR:-noisy-student-tf}"

# require VAR "what it is": exits with a clear message when VAR is empty.
require() {
  local name="$1" what="$2"
  if [ -z "${!name:-}" ]; then
    echo "error: $name is not set: $what" >&2
    echo "       e.g. export $name=... (see scripts/tpu/README.md)" >&2
    exit 2
  fi
}

# require_command CMD "hint": exits when CMD is not on PATH.
require_command() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: '$1' not found: $2" >&2
    exit 2
  fi
}
