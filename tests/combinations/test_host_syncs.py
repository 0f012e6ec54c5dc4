"""An unlogged training step never waits for the device: the finite check, the skip of a
non-finite phase and the skip counters stay on it (read at log steps). Counted as what
`.item()` and `bool(tensor)` dispatch, over a few unlogged steps of every preset."""

from __future__ import annotations

import pytest
import torch
from matrix import PRESETS, tiny
from torch.utils._python_dispatch import TorchDispatchMode

from mtgan.config import load_config
from mtgan.training import Trainer


class HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("preset", PRESETS)
def test_unlogged_steps_make_no_host_sync(preset):
    # fixed weights: the gradient balancers solve on the host, their documented exception
    trainer = Trainer(load_config(preset, tiny(preset, "loss.r1=1", "loss.r1_every=2")))
    trainer.train_step(record=True)  # the first step builds what later ones reuse
    with HostReads() as reads:
        for _ in range(4):
            assert trainer.train_step() is None
    assert reads.count == 0
    assert trainer.train_step(record=True)["skipped"] == 0
