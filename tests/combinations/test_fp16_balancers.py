"""Every balancer under fp16 (float16 autocast, a loss scale per phase), on the D and the G
phase of the shared-trunk preset: it trains without a skipped step, and the weights it chose at
the first step are those of the float32 run up to float16 rounding. (That a gradient balancer's
per-objective gradients are loss-scaled, where unscaled ones would underflow, is shown on
objectives small enough to: tests/training/test_fp16.py.)"""

from __future__ import annotations

import math

import pytest
from matrix import BALANCER_NAMES, tiny

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import Trainer

PRESET = "pertask"


def _first_weights(balancer: str, family: str, precision: str) -> tuple[Trainer, dict]:
    over = tiny(PRESET, f"balance.{family}={balancer}")
    trainer = Trainer(load_config(PRESET, [*over, f"train.precision={precision}"]))
    records = [trainer.train_step(record=True) for _ in range(2)]
    for record in records:
        assert all(math.isfinite(v) for k, v in record.items() if "overflow" not in k), record
    assert trainer.skipped == 0
    phase = next(p for p in trainer.phases if p.family == family)
    return trainer, {n: records[0][f"{phase.name}/weight/{n}"] for n in phase.names}


@pytest.mark.parametrize("family", ["d", "g"])
@pytest.mark.parametrize("balancer", BALANCER_NAMES)
def test_balancer_under_fp16_weighs_as_in_fp32(balancer, family):
    try:
        trainer, half = _first_weights(balancer, family, "fp16")
    except ConfigError as e:  # refused on this preset: the fp32 matrix checks the message
        pytest.skip(str(e))
    assert trainer.precision == "fp16"
    _, full = _first_weights(balancer, family, "fp32")
    assert half.keys() == full.keys()
    for name in full:
        assert half[name] == pytest.approx(full[name], rel=0.05, abs=0.02), (name, half, full)
