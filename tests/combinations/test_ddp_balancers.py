"""2 processes (torchrun, gloo) against 1 for every balancer, fixed weights included: each rank
decides its weights from the global batch, so after 20 steps the weights agree to float
summation order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_worker import STEPS
from matrix import BALANCER_NAMES, DDP_SETUPS, ddp_config
from two_processes import launched_once, max_diff, trained

pytestmark = pytest.mark.slow


two_process_weights = launched_once("ddp_worker.py")  # one launch for every test below


@pytest.mark.parametrize("balancer", BALANCER_NAMES)
@pytest.mark.parametrize("setup", list(DDP_SETUPS))
def test_two_processes_equal_one(two_process_weights, setup, balancer):
    _compare(two_process_weights, setup, balancer)


def _compare(two_process_weights: Path, setup: str, balancer: str) -> None:
    one = trained(ddp_config(setup, balancer), STEPS)
    two = torch.load(two_process_weights / f"{setup}-{balancer}.pt", weights_only=True)
    diff = max_diff(one, two)
    print(f"{setup} {balancer}: max |Δw| = {diff:.2e}")
    assert diff < 1e-5
