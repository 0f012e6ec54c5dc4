"""Non-finite losses: skipped steps, rollback to the last checkpoint with lower learning rates,
and a clear stop after too many rollbacks. NaNs are injected through the term registry."""

from __future__ import annotations

import math

import pytest
import torch

from mtgan import api
from mtgan.errors import RunError
from mtgan.objectives import terms as term_registry
from mtgan.objectives.terms import Term


def _inject_nan(monkeypatch, steps: set[int], limit: int | None = None) -> dict[str, int]:
    """Add a D-phase term that is NaN at the given steps (at most `limit` times in all)."""
    seen = {"injected": 0}

    def builder(config):
        def nan_term(ctx):
            k = ctx.real.shape[0]
            due = ctx.step in steps and (limit is None or seen["injected"] < limit)
            if due:
                seen["injected"] += 1
            return torch.full((k,), math.nan if due else 0.0)

        return [Term("fault", "d", nan_term)]

    monkeypatch.setitem(term_registry.TERM_BUILDERS, "fault", builder)
    return seen


def _all_finite(run) -> bool:
    from mtgan.training import Trainer

    trainer = Trainer(run.config)
    trainer.restore(run.dir)
    return all(torch.isfinite(p).all() for p in trainer.weights().state_dict().values())


def test_a_few_bad_steps_are_skipped_and_counted(tmp_path, tiny, monkeypatch):
    seen = _inject_nan(monkeypatch, {3, 4, 5})
    run = api.train("pertask", [*tiny, "train.steps=12"], out=tmp_path / "r", quiet=True)
    assert seen["injected"] == 3
    last = run.metrics()[-1]
    assert last["skipped"] == 3 and last["step"] == 12
    assert not any(r.get("event") == "rollback" for r in run.metrics())
    assert _all_finite(run)


def test_a_streak_rolls_back_with_lower_learning_rates_and_recovers(tmp_path, tiny, monkeypatch):
    seen = _inject_nan(monkeypatch, set(range(7, 30)), limit=5)
    overrides = [*tiny, "train.steps=16", "train.checkpoint_every=5", "train.nan_patience=5"]
    run = api.train("pertask", overrides, out=tmp_path / "r", quiet=True)
    assert seen["injected"] == 5
    events = [r for r in run.metrics() if r.get("event") == "rollback"]
    assert len(events) == 1
    assert events[0]["step"] == 5 and events[0]["from_step"] == 12  # back to checkpoint 5
    assert events[0]["lr_scale"] == 0.5
    assert run.step == 16 and _all_finite(run)
    from mtgan.training import Trainer

    trainer = Trainer(run.config)
    trainer.restore(run.dir)
    lrs = [g["lr"] for p in trainer.phases for g in p.optimizer.param_groups]
    assert lrs == [run.config.train.lr_d * 0.5, run.config.train.lr_g * 0.5]
    assert trainer.rollbacks == 1 and trainer.lr_scale == 0.5  # kept across resume


def test_endless_nans_stop_with_a_clear_message(tmp_path, tiny, monkeypatch):
    _inject_nan(monkeypatch, set(range(3, 10_000)))
    overrides = [*tiny, "train.steps=200", "train.nan_patience=3", "train.max_rollbacks=2"]
    with pytest.raises(RunError, match=r"training diverged.*2 rollback\(s\).*lower train.lr_g"):
        api.train("pertask", overrides, out=tmp_path / "r", quiet=True)
    events = [r for r in api.open_run(tmp_path / "r").metrics() if r.get("event") == "rollback"]
    assert [e["lr_scale"] for e in events] == [0.5, 0.25]
