"""`train.sync_bn` is an axis of the combination matrix: every preset on 2 processes (torchrun,
gloo) with synchronised batch norm ends with the weights of 1 process with the same global
batch, to float summation order. Without it the batch-norm statistics are per process, and the
runs differ (tests/training/test_distributed.py measures by how much); a preset whose batch 2
processes cannot split says so before training, naming --nproc."""

from __future__ import annotations

import pytest
import torch
from matrix import PRESETS, sync_bn_config
from sync_bn_worker import STEPS
from two_processes import (
    launched_once,
    max_diff,
    trained,
    without_bias_before_norm,
    without_margin_bias,
)

pytestmark = pytest.mark.slow


two_process_weights = launched_once("sync_bn_worker.py")  # one launch for every test below


@pytest.mark.parametrize("preset", PRESETS)
def test_sync_bn_on_two_processes_equals_one(two_process_weights, preset):
    refused = two_process_weights / f"{preset}.refused"
    if refused.exists():
        assert "processes (2)" in refused.read_text() or "--nproc 2" in refused.read_text()
        pytest.skip(refused.read_text())
    config = sync_bn_config(preset)
    one = trained(config, STEPS)
    two = torch.load(two_process_weights / f"{preset}.pt", weights_only=True)
    one, two = (without_margin_bias(without_bias_before_norm(w), config) for w in (one, two))
    diff = max_diff(one, two)
    print(f"{preset}: max |Δw| = {diff:.2e}")
    assert diff < 1e-5
