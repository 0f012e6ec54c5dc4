"""An unlogged training step never waits for the device: the finite check, the skip of a
non-finite phase, the skip counters and fp16's loss scales stay on it (read at log steps).
Counted as what `.item()` and `bool(tensor)` dispatch, over a few unlogged steps of every
preset, in fp32 and fp16, and with ADA's augmentation strength."""

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


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: the loss scales' updates too
@pytest.mark.parametrize("preset", PRESETS)
def test_unlogged_steps_make_no_host_sync(preset, precision):
    # fixed weights: the gradient balancers solve on the host, their documented exception
    extra = ["loss.r1=1", "loss.r1_every=2", f"train.precision={precision}"]
    trainer = Trainer(load_config(preset, tiny(preset, *extra)))
    trainer.train_step(record=True)  # the first step builds what later ones reuse
    with HostReads() as reads:
        for _ in range(4):
            assert trainer.train_step() is None
    assert reads.count == 0
    assert trainer.train_step(record=True)["skipped"] == 0


def test_ada_adjusts_p_without_a_host_sync():
    # 8 unlogged steps: two of ADA's adjustments of p, and the signs gathered at every step
    ada = ["loss.augment=[translation,cutout]", "loss.augment_target=0.6", "loss.augment_p=0.5"]
    trainer = Trainer(load_config("pertask", tiny("pertask", *ada, "loss.augment_ramp=40")))
    trainer.train_step(record=True)
    with HostReads() as reads:
        for _ in range(8):
            assert trainer.train_step() is None
    assert reads.count == 0 and trainer.micro.augment.p.item() != 0.5
