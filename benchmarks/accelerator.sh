#!/usr/bin/env bash
# The one prepared accelerator run: everything the docs report for a GPU, in under 8 minutes
# on one GPU. From the repository root, on a machine whose Python has JAX with CUDA (or TPU),
# PyTorch, flax, optax and orbax-checkpoint:
#
#   bash benchmarks/accelerator.sh                  # prints every table; logs under $OUT or /tmp
#   WHEELS=.whl bash benchmarks/accelerator.sh       # first installs the wheels in .whl (no index)
#   QUICK=1 bash benchmarks/accelerator.sh           # tiny sizes: checks the script on a CPU
#
# It prints, each after its command line:
#   1. the device, the versions and the peak TFLOP/s used for utilisation;
#   2. benchmarks/train.py: EDSR-baseline x4 batch 16, the JAX train step with and without MoA
#      in float32 and bfloat16, beside PyTorch eager and torch.compile in both, with the model
#      FLOP utilisation (XLA's cost analysis of the step against the chip's peak);
#   3. benchmarks/models.py: every network's forward and train step, float32 and bfloat16;
#   4. benchmarks/data.py: the input pipeline by source and by threads and worker processes,
#      on a synthetic 2K DIV2K folder, against the same step, and what 8 such chips need.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
LOGS=${OUT:-$(mktemp -d)}
QUICK=${QUICK:-0}

if [[ -n "${WHEELS:-}" ]]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # cutblur_jax from this checkout

# The chip's dense bf16 peak, for utilisation (PEAK_TFLOPS overrides; 0 prints none).
PEAK=${PEAK_TFLOPS:-$("$PY" - <<'PY'
import jax
kind = jax.devices()[0].device_kind.lower()
peaks = {"h200": 989, "h100": 989, "a100": 312, "l4": 121, "a10": 125, "v100": 125,
         "tpu v4": 275, "tpu v5 lite": 197, "tpu v5p": 459, "tpu v6": 918}
print(next((v for k, v in peaks.items() if k in kind), 0))
PY
)}

section() { printf '\n==== %s ====\n$ %s\n' "$1" "${*:2}"; }
run() {  # label, command... (a failing part is reported and the next one runs)
  local label=$1; shift
  section "$label" "$*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$LOGS/$label.log" | grep -v -e '^  ' -e '^Exception ignored' || true
  echo "($label: $((SECONDS - start)) s)"
}

section device "nvidia-smi; python versions"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
"$PY" -c "
import jax, platform
print('jax', jax.__version__, jax.devices())
try:
  import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())
except ImportError: print('torch: not installed')
print('CPU', platform.processor() or platform.machine())
"
echo "peak bf16 TFLOP/s used for utilisation: ${PEAK} (PEAK_TFLOPS overrides)"

if [[ "$QUICK" == 1 ]]; then
  STEP=(--batch_size 2 --patch_size 12 --rounds 1 --steps 1)
  MODELS=(--quick --repeats 1 --models EDSR-baseline)
  DATA=(--images 2 --batches 10 --steps 1 --workers 1 2 --processes 1)
else
  STEP=(--batch_size 16 --patch_size 48 --rounds 3 --steps 10)
  MODELS=(--repeats 3)
  DATA=(--images 24 --batches 300 --steps 20 --workers 1 2 4 --processes 1 2 4)
fi
PEAK_FLAG=()
[[ "$PEAK" != 0 ]] && PEAK_FLAG=(--peak_tflops "$PEAK")

run train "$PY" benchmarks/train.py --paths fast --dtypes float32 bfloat16 --torch_compile \
  "${STEP[@]}" "${PEAK_FLAG[@]}" --json "$LOGS/train.json"
run models_float32 "$PY" benchmarks/models.py --paths fast --dtype float32 "${MODELS[@]}"
run models_bfloat16 "$PY" benchmarks/models.py --paths fast --dtype bfloat16 "${MODELS[@]}"
run data "$PY" benchmarks/data.py --scales 4 "${DATA[@]}"
echo "logs: $LOGS"
