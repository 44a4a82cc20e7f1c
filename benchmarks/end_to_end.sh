#!/usr/bin/env bash
# Wall time of whole commands on the fast XLA:CPU path and on XLA's default path, one after
# the other (CUTBLUR_JAX_FAST_CPU=0 turns the fast path off): the default training run,
# infer.py on a DIV2K-sized image (2040x1356 HR, x4 EDSR-baseline with random weights), and,
# with --suite, the test suite. Run from the repository root, in the project's environment,
# on an otherwise idle machine:
#
#   bash benchmarks/end_to_end.sh            # train + infer, both paths (about 10 minutes here)
#   bash benchmarks/end_to_end.sh --suite    # and the test suite, both paths (15 more)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python - "$work" <<'PY'
import sys, numpy as np
from cutblur_jax import checkpoint, models
from cutblur_jax.data.io import write_image
import jax
arch = models.model_arch("EDSR-baseline", 4)
params = models.create_model(arch).init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))["params"]
checkpoint.save_model(f"{sys.argv[1]}/edsr_baseline_x4", params, arch)
rng = np.random.default_rng(0)
write_image(f"{sys.argv[1]}/lr/div2k_sized.png", rng.integers(0, 256, (339, 510, 3), dtype=np.uint8))
PY

timed() {  # label, command...
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$work/log.txt" 2>&1 || { tail -20 "$work/log.txt"; exit 1; }
  end=$(date +%s.%N)
  printf '| %s | %.1f s |\n' "$label" "$(echo "$end - $start" | bc)"
}

echo "| command | wall time |"
echo "|---|---|"
for path in fast default; do
  fast=1; [ "$path" = default ] && fast=0
  export CUTBLUR_JAX_FAST_CPU=$fast
  timed "python experiments/train.py ($path path)" \
    python experiments/train.py --workdir "$work/train_$path"
  grep -E "^Done" "$work/log.txt" | sed 's/^/  /' >&2
  timed "python experiments/infer.py, 510x339 LR x4 EDSR-baseline, untiled ($path path)" \
    python experiments/infer.py --checkpoint "$work/edsr_baseline_x4" --input "$work/lr" \
      --output "$work/sr_$path"
  if [ "${1:-}" = "--suite" ]; then
    # A fresh compilation cache (tests/conftest.py shares one), as on a clean clone in CI.
    JAX_COMPILATION_CACHE_DIR="$work/jax_cache_$path" \
      timed "pytest -n 2 tests ($path path)" python -m pytest -n 2 -q tests
  fi
done
cmp "$work/sr_fast/div2k_sized.png" "$work/sr_default/div2k_sized.png" >&2 \
  && echo "infer.py outputs: identical on both paths" >&2 \
  || echo "infer.py outputs differ (compare them with numpy to see by how much)" >&2
