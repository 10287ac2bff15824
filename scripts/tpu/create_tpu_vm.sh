#!/usr/bin/env bash
# Creates a Cloud TPU VM (run on your workstation, with gcloud).
#
#   PROJECT=my-project TPU_NAME=ns ZONE=us-central2-b ACCELERATOR_TYPE=v4-8 \
#     bash scripts/tpu/create_tpu_vm.sh
#
# Settings (env vars, defaults in env.sh): PROJECT (required), TPU_NAME,
# ZONE, ACCELERATOR_TYPE, RUNTIME_VERSION, SPOT=1 for a cheaper Spot TPU
# that can be preempted (stages resume on rerun), EXTRA_CREATE_FLAGS for
# anything else (e.g. "--service-account=SA@PROJECT.iam.gserviceaccount.com").
set -euo pipefail
source "$(dirname "$0")/env.sh"

require PROJECT "the Google Cloud project that holds the TPU quota"
require TPU_NAME "a name for the TPU VM"
require ZONE "a zone with TPU quota, e.g. us-central2-b (v4)"
require ACCELERATOR_TYPE "e.g. v4-8 (one host) or v4-32 (a 4-host slice)"
require RUNTIME_VERSION "the TPU software version, e.g. tpu-ubuntu2204-base"
require_command gcloud "install the Google Cloud CLI, then gcloud auth login"

flags=(--project="$PROJECT" --zone="$ZONE"
       --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION")
if [ "${SPOT:-0}" = 1 ]; then
  flags+=(--spot)
fi
# shellcheck disable=SC2206  # word splitting of extra flags is intended.
flags+=(${EXTRA_CREATE_FLAGS:-})

echo "creating TPU VM $TPU_NAME ($ACCELERATOR_TYPE, $RUNTIME_VERSION) in $ZONE"
gcloud compute tpus tpu-vm create "$TPU_NAME" "${flags[@]}"
gcloud compute tpus tpu-vm describe "$TPU_NAME" --project="$PROJECT" \
  --zone="$ZONE" --format="value(state,acceleratorType,networkEndpoints)"
