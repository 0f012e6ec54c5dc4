#!/usr/bin/env bash
# GPU check, at most 5 minutes on one CUDA GPU: the tests marked `cuda`, then step times.
#   1. pytest -m cuda tests/test_cuda.py
#   2. benchmarks/speed.py --device cuda at batch 64: plain loop, speed-mlp (precision auto),
#      pertask K=10, independent K=10, batch 256, dcgan 32×32, the bf16 / fp16 (where the config
#      has it) / fp32 rows and torch.compile, interleaved in one process, with the targets
#   3. the same at batch 256, eager only
#   4. benchmarks/step_time.py at batch 256: speed-mlp, pertask and independent (K=10), eager,
#      in bf16 and in fp32
# Usage on a CUDA machine, from anywhere:  bash benchmarks/gpu_check.sh
#   GPU_CHECK_LOG=benchmarks/results/gpu_check-NAME.log  also writes everything to that file
#   GPU_CHECK_BUDGET=300  the whole run's limit in seconds; each stage has its own timeout too
# Every stage runs even when an earlier one failed; the exit status is 1 if any failed or timed
# out (each is named at the end). Works offline: missing dependencies are installed from
# ./.wheels when that folder exists, and the package is put on PYTHONPATH rather than
# pip-installed (an editable install needs setuptools from the network for build isolation).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-300}
if [ -n "${GPU_CHECK_LOG:-}" ]; then
  exec > >(tee "$GPU_CHECK_LOG") 2>&1
fi
command -v timeout >/dev/null || { echo "gpu_check: needs timeout (GNU coreutils)"; exit 2; }
if [ -d .wheels ]; then
  "$PY" -m pip install -q --no-index --find-links .wheels pydantic || true
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
date -u +"%Y-%m-%d %H:%M:%S UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
timeout 60 "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(), 'bf16' if torch.cuda.is_bf16_supported() else 'no bf16')"
timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

failed=()
# stage NAME SECONDS COMMAND...: run COMMAND with a timeout of SECONDS, or of what is left of
# the budget if that is less; a failure is recorded, not fatal.
stage() {
  local name=$1 limit=$2 left rc=0
  shift 2
  left=$((BUDGET - SECONDS - 5))
  if [ "$left" -lt 20 ]; then
    echo "== $name: not run, the ${BUDGET} s budget is spent"
    failed+=("$name (not run: budget spent)")
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "== $name (timeout ${limit} s, ${SECONDS} s elapsed)"
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    failed+=("$name (timed out after ${limit} s)")
  elif [ "$rc" -ne 0 ]; then
    failed+=("$name (exit status $rc)")
  fi
}

stage "cuda tests" 90 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
stage "speed.py, batch 64" 100 \
  "$PY" benchmarks/speed.py --device cuda --quick --no-memory
stage "speed.py, batch 256, eager" 50 \
  "$PY" benchmarks/speed.py --device cuda --quick --no-memory --batch 256 --skip compile
for precision in bf16 fp32; do
  stage "step_time.py, batch 256, $precision, eager: speed-mlp, pertask, independent (K=10)" 20 \
    "$PY" benchmarks/step_time.py speed-mlp pertask independent --steps 100 --warmup 10 \
    --set train.device=cuda train.batch_size=256 "train.precision=$precision"
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "gpu_check: ${#failed[@]} stage(s) failed, in ${SECONDS} s:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "gpu_check: all stages passed, in ${SECONDS} s"
