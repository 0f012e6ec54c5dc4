"""train.lr_schedule: a pure function of the global step, so `constant` is the old run bit for
bit, a stopped and resumed `linear` run equals an uninterrupted one bit for bit, a phase due
every n steps sees the step it runs at, the rollback factor multiplies in, and unlogged steps
still never wait for the device."""

from __future__ import annotations

import pytest
import torch
from test_host_syncs import HostReads
from test_nan_recovery import _inject_nan

from mtgan import api
from mtgan.config import load_config
from mtgan.errors import ConfigError, RunError
from mtgan.training import RunDir, Trainer
from mtgan.training.lr_schedule import LrSchedule
from mtgan.training.phases import Phase


def _schedule(*overrides: str) -> LrSchedule:
    return LrSchedule(load_config("pertask", ["train.steps=10", *overrides]).train)


def test_factors_by_step():
    assert [_schedule()(s) for s in range(10)] == [1.0] * 10
    assert [_schedule("train.lr_schedule=linear")(s) for s in (0, 5, 9)] == pytest.approx(
        [1, 0.5, 0.1]
    )
    cosine = _schedule("train.lr_schedule=cosine")
    assert cosine(0) == 1.0 and cosine(5) == pytest.approx(0.5) and 0 < cosine(9) < 0.03
    warm = _schedule("train.lr_schedule=linear", "train.lr_warmup=4")
    assert [warm(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warm(4) == 1.0 and warm(7) == 0.5 and warm(9) == pytest.approx(1 / 6)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"train.lr_schedule: 'linaer' .*'linear'"):
        load_config("pertask", ["train.lr_schedule=linaer"])
    with pytest.raises(ConfigError, match="lr_warmup=10 must end before steps=10"):
        load_config("pertask", ["train.steps=10", "train.lr_warmup=10"])


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.weights().state_dict().items()}


def _train(trainer: Trainer, steps: int) -> Trainer:
    for _ in range(steps):
        trainer.train_step()
    return trainer


def test_constant_is_the_run_without_a_schedule_bit_for_bit(tiny, monkeypatch):
    config = load_config("pertask", [*tiny, "loss.r1=1", "loss.r1_every=2", "train.n_critic=2"])
    scheduled = _weights(_train(Trainer(config), 6))
    monkeypatch.setattr(Phase, "set_lr_scale", lambda self, scale: None)  # the rates as built
    unscheduled = _weights(_train(Trainer(config), 6))
    assert scheduled.keys() == unscheduled.keys()
    assert all(torch.equal(scheduled[k], unscheduled[k]) for k in scheduled)


def test_each_phase_steps_at_the_rate_of_the_step_it_runs_at(tiny):
    # G every 3rd step, lazy R1 every 2nd, on D's optimizer: each sees its own global step
    extra = ["train.lr_schedule=linear", "train.n_critic=3", "loss.r1=1", "loss.r1_every=2"]
    trainer = Trainer(load_config("pertask", [*tiny, *extra]))
    train, phases = trainer.config.train, {p.name: p for p in trainer.phases}
    assert set(phases) == {"d", "d_reg", "g"} and phases["d_reg"].optimizer is phases["d"].optimizer
    lr_g = []
    for step in range(train.steps):
        trainer.train_step()
        assert phases["d"].optimizer.param_groups[0]["lr"] == train.lr_d * (1 - step / 6)
        lr_g.append(phases["g"].optimizer.param_groups[0]["lr"])
    # G ran at steps 2 and 5 (its rate before then: the configured one)
    assert lr_g == [train.lr_g] * 2 + [train.lr_g * (1 - 2 / 6)] * 3 + [train.lr_g * (1 - 5 / 6)]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_a_stopped_and_resumed_run_equals_the_uninterrupted_one(tmp_path, tiny, schedule):
    extra = [f"train.lr_schedule={schedule}", "train.lr_warmup=2", "train.n_critic=2"]
    config = load_config("pertask", [*tiny, *extra, "loss.r1=1", "loss.r1_every=2"])
    straight = _train(Trainer(config), 6)
    _train(Trainer(config), 3).save(RunDir(tmp_path))
    resumed = Trainer(config)
    assert resumed.restore(RunDir(tmp_path)) and resumed.step == 3
    _train(resumed, 3)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # (Adam's state too: the moments depend on every rate used)
    for pa, pb in zip(straight.phases, resumed.phases):
        sa, sb = pa.optimizer.state_dict(), pb.optimizer.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        for i in sa["state"]:
            assert torch.equal(sa["state"][i]["exp_avg_sq"], sb["state"][i]["exp_avg_sq"])


class StopAt:
    """Interrupts a run with an error right after its checkpoint at `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_checkpoint(self, step, path):
        if step == self.step:
            raise RuntimeError("stop here")


def test_a_run_interrupted_at_a_checkpoint_and_resumed_ends_bit_for_bit_equal(tmp_path, tiny):
    overrides = [*tiny, "train.lr_schedule=linear", "train.ema=0.9"]  # 6 steps, checkpoints 3, 6
    full = api.train("pertask", overrides, out=tmp_path / "full", quiet=True)
    with pytest.raises(RunError, match="StopAt.on_checkpoint"):
        api.train("pertask", overrides, out=tmp_path / "cut", quiet=True, callbacks=[StopAt(3)])
    resumed = api.train(resume=tmp_path / "cut", quiet=True)  # the same config: train.steps=6
    assert resumed.step == full.step == 6
    a, b = Trainer(full.config), Trainer(resumed.config)
    a.restore(RunDir(full.path))
    b.restore(RunDir(resumed.path))
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    lr = [(r["step"], r["lr/d"], r["lr/g"]) for r in full.metrics() if "lr/d" in r]
    assert lr == [(r["step"], r["lr/d"], r["lr/g"]) for r in resumed.metrics() if "lr/d" in r]
    assert lr[-1][1] == full.config.train.lr_d * (1 - 5 / 6)  # the last step's rate, logged


def test_the_rollback_factor_multiplies_the_schedule(tmp_path, tiny, monkeypatch):
    _inject_nan(monkeypatch, set(range(7, 30)), limit=5)
    overrides = [*tiny, "train.steps=16", "train.checkpoint_every=5", "train.nan_patience=5"]
    overrides += ["train.lr_schedule=linear"]
    run = api.train("pertask", overrides, out=tmp_path / "r", quiet=True)
    (event,) = [r for r in run.metrics() if r.get("event") == "rollback"]
    assert event["lr_scale"] == 0.5
    lr_d = run.config.train.lr_d
    after = [r for r in run.metrics()[run.metrics().index(event) :] if "lr/d" in r]
    assert after and all(r["lr/d"] == lr_d * (0.5 * (1 - (r["step"] - 1) / 16)) for r in after)
    before = [r for r in run.metrics()[: run.metrics().index(event)] if "lr/d" in r]
    assert all(r["lr/d"] == lr_d * (1 - (r["step"] - 1) / 16) for r in before)


def test_setting_the_rate_makes_no_host_sync(tiny):
    extra = ["train.lr_schedule=cosine", "train.lr_warmup=2", "train.steps=8"]
    trainer = Trainer(load_config("pertask", [*tiny, *extra]))
    trainer.train_step(record=True)
    with HostReads() as reads:
        for _ in range(4):
            assert trainer.train_step() is None
    assert reads.count == 0
    d = trainer.phases[0]
    assert d.optimizer.param_groups[0]["lr"] == d.lr * trainer.lr_schedule(4) != d.lr
