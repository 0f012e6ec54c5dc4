#!/usr/bin/env bash
# GPU check (≤ 5 minutes on one CUDA GPU): the tests marked `cuda`, then the speed benchmark.
# Usage on a CUDA machine, from the repository root:  bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
pip install -q -e ".[test]"
pytest -q -m cuda tests
# speed.py measures the CPU floor (oneDNN/MKL); on the GPU time the steps at batch 256 instead
python benchmarks/step_time.py speed-mlp pertask --steps 100 --set train.device=cuda train.batch_size=256
python benchmarks/step_time.py speed-mlp pertask --steps 100 --set train.device=cuda train.batch_size=256 train.precision=fp32
