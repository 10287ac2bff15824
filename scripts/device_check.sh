#!/usr/bin/env bash
# Prints the benchmark's training and labeling rows on this machine's
# accelerator, with mixed precision (bf16/fp16) and XLA, in under 10
# minutes on a GPU.
#
# Usage:
#   scripts/device_check.sh              # detect the device, run, print
#   scripts/device_check.sh --dry-run    # print the device, the modes and
#                                        # the command, run nothing
#   scripts/device_check.sh --smoke      # tiny models: checks the plumbing
#   scripts/device_check.sh --output=FILE  (default device_check.json)
#
# Environment: PYTHON (default python), DEVICE_CHECK_MODES (override the
# training modes, e.g. "none:off,fp16:xla"; see benchmark.py
# --training_modes), DEVICE_CHECK_DEVICE (skip detection, e.g.
# "GPU 7.5 Tesla_T4": what a dry run would pick on another machine).
#
# It runs `scripts/benchmark.py --quick` on the sections efficientnet_train
# (our B0's step and the Trainer loop), training_modes (the Trainer loop per
# precision x XLA mode) and pseudo_label (labeling vs inference), on the
# device TensorFlow picks (the first GPU). Modes the device cannot run
# fast are skipped with a line saying why: bf16 needs a GPU of compute
# capability 8.0+ (Ampere), fp16 7.0+ (tensor cores).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
MODE_FLAG="--quick"
DRY_RUN=0
OUTPUT="device_check.json"
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --smoke) MODE_FLAG="--smoke" ;;
    --output=*) OUTPUT="${arg#--output=}" ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

# One line: "<kind> <compute capability or -> <name>".
DEVICE="${DEVICE_CHECK_DEVICE:-}"
[[ -n "$DEVICE" ]] || DEVICE="$(TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" - <<'PY' 2>/dev/null
import glob
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    cc = details.get("compute_capability") or (0, 0)
    name = details.get("device_name", "GPU").replace(" ", "_")
    print(f"GPU {cc[0]}.{cc[1]} {name}")
elif glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
    print("TPU - TPU")
else:
    print("CPU - CPU")
PY
)" || { echo "error: cannot import tensorflow with $PYTHON" >&2; exit 1; }
read -r KIND CC NAME <<<"$DEVICE"
echo "device: $KIND ($NAME, compute capability $CC)"

skip() { echo "skipped: $1"; }
MODES=""
case "$KIND" in
  GPU)
    MAJOR="${CC%%.*}"
    MODES="none:off,none:xla"
    if (( MAJOR >= 7 )); then MODES="$MODES,fp16:off,fp16:xla"
    else skip "fp16 (compute capability $CC < 7.0: no float16 tensor cores)"
    fi
    if (( MAJOR >= 8 )); then MODES="$MODES,bf16:off,bf16:xla"
    else skip "bf16 (compute capability $CC < 8.0: no bfloat16 support)"
    fi
    ;;
  TPU)
    skip "TPU training and labeling rows: the benchmark times one device" \
         "under the default strategy and a TPU needs TPUStrategy" \
         "(--tpu=local); train with mixed_precision=bf16 there" \
         "(scripts/tpu/README.md). Running the CPU rows instead."
    MODES="none:off,none:xla,bf16:off"
    ;;
  *)
    echo "no GPU or TPU found: running on the CPU (bf16 shows its cost" \
         "there, not a speed-up)"
    MODES="none:off,none:xla,bf16:off"
    skip "fp16 on CPU (no fast float16 kernels)"
    skip "bf16 with XLA on CPU (slow compile, no speed-up)"
    ;;
esac
MODES="${DEVICE_CHECK_MODES:-$MODES}"
echo "training modes (precision:xla): $MODES"

CMD=("$PYTHON" scripts/benchmark.py "$MODE_FLAG"
     --sections=efficientnet_train,training_modes,pseudo_label
     "--training_modes=$MODES" "--output=$OUTPUT")
echo "command: ${CMD[*]}"
if (( DRY_RUN )); then
  exit 0
fi
START=$(date +%s)
# PYTHONPATH: the benchmark imports the package from this checkout.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${CMD[@]}"
echo "device_check: $(( $(date +%s) - START )) s on $KIND ($NAME);" \
     "rows and ratios in $OUTPUT"
