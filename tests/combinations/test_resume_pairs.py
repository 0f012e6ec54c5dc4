"""Every preset × {no penalty, lazy R1, GP} × {alternating, simultaneous} × a stateful
loss-based and a stateful gradient-based balancer (on both phases): trains, and a run stopped
after half its steps, checkpointed to disk and resumed in a fresh trainer, ends with the
uninterrupted run's weights and balancer weights, bit for bit; in fp16 too (every preset, lazy
R1, both balancers), with its loss scales."""

from __future__ import annotations

import math

import pytest
from matrix import PENALTIES, PRESETS, SCHEDULES, STATEFUL, tiny
from resume import assert_resume_bit_exact

from mtgan.config import load_config
from mtgan.training import Trainer, loss_scale

STEPS = 4  # lazy R1 runs every 2nd step: once before the checkpoint, once after


def _run(trainer: Trainer, steps: int) -> dict[str, float]:
    record: dict[str, float] = {}
    for _ in range(steps):
        record = trainer.train_step(record=True)
    return record


@pytest.mark.parametrize("kind", list(STATEFUL))
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("preset", PRESETS)
def test_resume_equals_the_uninterrupted_run(tmp_path, preset, penalty, schedule, kind):
    name = STATEFUL[kind]
    extra = [f"balance.d={name}", f"balance.g={name}", f"train.schedule={schedule}"]
    _resume_equal(tmp_path, preset, penalty, [*PENALTIES[penalty], *extra])


@pytest.mark.parametrize("kind", list(STATEFUL))
@pytest.mark.parametrize("preset", PRESETS)
def test_fp16_resume_equals_the_uninterrupted_run(tmp_path, preset, kind, monkeypatch):
    # every phase's loss scale (d_reg's too) travels with the checkpoint; a growth interval
    # of 2 makes the scales differ from the initial one at the checkpoint
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 2)
    name = STATEFUL[kind]
    extra = [f"balance.d={name}", f"balance.g={name}", "train.precision=fp16"]
    _resume_equal(tmp_path, preset, "r1", [*PENALTIES["r1"], *extra])


def _resume_equal(tmp_path, preset: str, penalty: str, overrides: list[str]) -> None:
    config = load_config(preset, tiny(preset, *overrides))
    straight = Trainer(config)
    last = _run(straight, STEPS)
    # fp16: a phase whose scaled gradients overflowed (a backoff) logs an infinite grad norm
    fp16 = "train.precision=fp16" in overrides
    values = [v for k, v in last.items() if not (fp16 and k.endswith("/grad_norm"))]
    assert straight.skipped == 0 and all(math.isfinite(v) for v in values)
    if penalty == "r1":
        assert any(p.name == "d_reg" for p in straight.phases)
    again = assert_resume_bit_exact(straight, config, STEPS, tmp_path)
    weights = [k for k in last if "/weight/" in k]
    assert weights and {k: last[k] for k in weights} == {k: again[k] for k in weights}
    scales = [k for k in last if k.endswith(("/loss_scale", "/overflow"))]  # fp16 only
    assert {k: last[k] for k in scales} == {k: again[k] for k in scales}


@pytest.mark.parametrize("preset", PRESETS)
def test_ema_rampup_resume_equals_the_uninterrupted_run(tmp_path, preset):
    # the rampup's decay reads the step: a resumed run must take the same decays
    config = load_config(preset, tiny(preset, "train.ema=0.999", "train.ema_rampup=0.05"))
    straight = Trainer(config)
    _run(straight, STEPS)
    assert straight.ema is not None and straight.ema.rampup == 0.05
    assert_resume_bit_exact(straight, config, STEPS, tmp_path)
