#!/usr/bin/env bash
# GPU check (≤ 5 minutes on one CUDA GPU): the tests marked `cuda`, then step times at batch 256.
# Usage on a CUDA machine, from the repository root:  bash benchmarks/gpu_check.sh
# Works offline: missing dependencies are installed from ./.wheels when that folder exists, and
# the package is put on PYTHONPATH rather than pip-installed (an editable install needs setuptools
# from the network for build isolation).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .wheels ]; then
  "$PY" -m pip install -q --no-index --find-links .wheels pydantic || true
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests
for precision in bf16 fp32; do
  echo "== batch 256, precision $precision: single task (speed-mlp) vs K=10 (pertask, independent)"
  "$PY" benchmarks/step_time.py speed-mlp pertask independent --steps 100 \
    --set train.device=cuda train.batch_size=256 "train.precision=$precision"
done
echo "== batch 256, bf16, torch.compile"
"$PY" benchmarks/step_time.py speed-mlp pertask --steps 100 \
  --set train.device=cuda train.batch_size=256 train.precision=bf16 train.compile=true
