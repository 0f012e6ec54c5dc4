"""Every preset × every balancer, on the D phase and on the G phase: trains, its losses stay
finite, and the weights it chose are logged under their objectives' names. A pairing the
balancer cannot weigh is refused before training, by a message naming the balancer and the
model setting it conflicts with."""

from __future__ import annotations

import math

import pytest
from matrix import BALANCER_NAMES, PRESETS, refuses, tiny

from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import Trainer


@pytest.mark.parametrize("family", ["d", "g"])
@pytest.mark.parametrize("balancer", BALANCER_NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_with_balancer(preset, balancer, family):
    config = load_config(preset, tiny(preset, f"balance.{family}={balancer}"))
    try:
        trainer = Trainer(config)
    except ConfigError as e:
        assert refuses(balancer), f"{balancer} on {preset}: {e}"
        assert f"balance.{family}={balancer}" in str(e) and "model." in str(e), str(e)
        return
    records = [trainer.train_step(record=True) for _ in range(2)]
    assert trainer.skipped == 0
    for step, record in enumerate(records):
        assert all(math.isfinite(v) for v in record.values()), record
        for phase in trainer.phases:
            if phase.due(step):
                weights = {f"{phase.name}/weight/{n}" for n in phase.names}
                assert weights <= set(record), sorted(weights - set(record))
    phase = next(p for p in trainer.phases if p.family == family)
    assert phase.balancer.name == balancer
