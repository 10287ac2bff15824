#!/usr/bin/env bash
# Deletes the TPU VM (run on your workstation). Billing stops only then.
#
#   PROJECT=my-project TPU_NAME=ns ZONE=us-central2-b \
#     bash scripts/tpu/teardown.sh
#
# The workdir on GCS is kept; local files on the VM are lost. YES=1 skips
# gcloud's confirmation prompt.
set -euo pipefail
source "$(dirname "$0")/env.sh"

require PROJECT "the Google Cloud project that holds the TPU"
require TPU_NAME "the TPU VM to delete"
require ZONE "the TPU VM's zone"
require_command gcloud "install the Google Cloud CLI, then gcloud auth login"

flags=(--project="$PROJECT" --zone="$ZONE")
if [ "${YES:-0}" = 1 ]; then
  flags+=(--quiet)
fi
gcloud compute tpus tpu-vm delete "$TPU_NAME" "${flags[@]}"
