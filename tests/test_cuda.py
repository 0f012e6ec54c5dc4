"""GPU checks (run by benchmarks/gpu_check.sh on a CUDA machine; skipped elsewhere)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mtgan import api
from mtgan.config import load_config
from mtgan.training import Trainer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _cuda(tiny: list[str], *extra: str) -> list[str]:
    return [o for o in tiny if not o.startswith("train.device")] + ["train.device=cuda", *extra]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_the_gpu_stays_finite_and_close_to_the_cpu(tiny, precision):
    gpu = Trainer(load_config("pertask", _cuda(tiny, f"train.precision={precision}")))
    cpu = Trainer(load_config("pertask", [*tiny, "train.precision=fp32"]))
    assert next(gpu.model.parameters()).is_cuda
    rec_gpu = [gpu.train_step(record=True) for _ in range(3)]
    rec_cpu = [cpu.train_step(record=True) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rec_gpu)
    assert rec_gpu[0]["d/loss"] == pytest.approx(rec_cpu[0]["d/loss"], rel=0.05)


def test_compile_on_the_gpu(tiny):
    trainer = Trainer(load_config("pertask", _cuda(tiny, "train.compile=true")))
    record = [trainer.train_step(record=True) for _ in range(3)][-1]
    assert torch.isfinite(torch.tensor(list(record.values()))).all()


def test_nccl_process_group_on_one_gpu(tmp_path, tiny):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtgan",
            "train",
            "pertask",
            *_cuda(tiny),
            "--out",
            str(out),
            "--nproc",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert api.open_run(out).step == 6
