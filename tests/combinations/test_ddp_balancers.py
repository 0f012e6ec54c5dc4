"""2 processes (torchrun, gloo) against 1 for every balancer, fixed weights included: each rank
decides its weights from the global batch, so after 20 steps the weights agree to float
summation order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import STEPS
from matrix import BALANCER_NAMES, DDP_SETUPS, ddp_config

from mtgan.training import Trainer

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def two_process_weights(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(HERE / "ddp_worker.py"), str(out)]
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.parametrize("balancer", BALANCER_NAMES)
@pytest.mark.parametrize("setup", list(DDP_SETUPS))
def test_two_processes_equal_one(two_process_weights, setup, balancer):
    _compare(two_process_weights, setup, balancer)


def _compare(two_process_weights: Path, setup: str, balancer: str) -> None:
    trainer = Trainer(ddp_config(setup, balancer))
    for _ in range(STEPS):
        trainer.train_step()
    two = torch.load(two_process_weights / f"{setup}-{balancer}.pt", weights_only=True)
    one = trainer.model.state_dict()
    assert one.keys() == two.keys()
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    print(f"{setup} {balancer}: max |Δw| = {diff:.2e}")
    assert diff < 1e-5
