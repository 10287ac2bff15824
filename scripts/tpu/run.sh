#!/usr/bin/env bash
# Runs (or resumes) a Noisy Student experiment on this TPU VM.
#
#   CONFIG=noisy_student_tf/configs/svhn_b0.py:data_dir=gs://B/tfds \
#   WORKDIR=gs://B/runs/svhn_b0 bash scripts/tpu/run.sh [--config.x=y ...]
#
# Run it ON the VM from the checkout install.sh set up; on a multi-host
# slice run the same command on every worker (gcloud ... ssh --worker=all).
# Extra arguments go to scripts/noisy_student.py (config overrides,
# --no_progress, --debug). Rerunning the same command resumes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$(dirname "$0")/../.."

require CONFIG "the experiment, e.g. \
noisy_student_tf/configs/svhn_b0.py:data_dir=gs://BUCKET/tfds"
require WORKDIR "where the run writes, e.g. gs://BUCKET/runs/svhn_b0"
case "$WORKDIR" in
  gs://*) ;;
  *)
    # A local disk is lost with the VM and invisible to other workers.
    echo "warning: WORKDIR=$WORKDIR is not on GCS (gs://...); it is lost" \
         "when the VM is deleted and multi-host slices need gs://" >&2
    ;;
esac
if [ ! -x .venv/bin/python ]; then
  echo "error: no .venv here; run scripts/tpu/install.sh on the VM first" >&2
  exit 2
fi

exec .venv/bin/python scripts/noisy_student.py --tpu=local \
  --config="$CONFIG" --workdir="$WORKDIR" "$@"
