"""`train.precision=fp16`: float16 autocast with a dynamic loss scale per phase. An overflow of
the scaled gradients backs the scale off and skips its own phase, without counting as a
non-finite step; the scale grows after GROWTH_INTERVAL finite steps and is checkpointed."""

from __future__ import annotations

import math

import pytest
import torch

from mtgan.balance.sources import jacobian_at
from mtgan.config import load_config
from mtgan.objectives import terms as term_registry
from mtgan.objectives.terms import Term
from mtgan.training import RunDir, Trainer, loss_scale
from mtgan.training.loss_scale import INIT_SCALE, LossScale, ScaledSource

FP16 = "train.precision=fp16"


def _fp16(tiny: list[str], *extra: str) -> list[str]:
    return [*tiny, FP16, *extra]


def _inject(monkeypatch, steps: set[int], value: float) -> None:
    """A D-phase term: `value` × the discriminators' mean logit at `steps`, 0 elsewhere. A large
    finite value makes the scaled gradients overflow float16; NaN makes the loss non-finite."""

    def builder(config):
        def fault(ctx):
            logits = ctx.model.discriminate(ctx.real_d).mean(1)
            return logits * (value if ctx.step in steps else 0.0)

        return [Term("fault", "d", fault)]

    monkeypatch.setitem(term_registry.TERM_BUILDERS, "fault", builder)


def _d_weights(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.phases[0].params]


def test_fp16_trains_with_finite_losses_and_fp32_weights(tiny):
    trainer = Trainer(load_config("pertask", _fp16(tiny)))
    assert trainer.precision == "fp16" and trainer.engine.autocast.fast_dtype == torch.float16
    records = [trainer.train_step(record=True) for _ in range(6)]
    for record in records:
        assert math.isfinite(record["d/loss"]) and math.isfinite(record["g/loss"])
    assert records[-1]["skipped"] == 0
    assert records[-1]["d/loss_scale"] == records[-1]["g/loss_scale"] == INIT_SCALE
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    # it trains: the same first loss as fp32 up to float16 rounding
    fp32 = Trainer(load_config("pertask", tiny)).train_step(record=True)
    assert records[0]["d/loss"] == pytest.approx(fp32["d/loss"], rel=0.01)


def test_fp32_and_bf16_have_no_loss_scale(tiny):
    for precision in ("fp32", "bf16"):
        trainer = Trainer(load_config("pertask", [*tiny, f"train.precision={precision}"]))
        assert trainer.engine.scales == {}
        record = trainer.train_step(record=True)
        assert not any("loss_scale" in k or "overflow" in k for k in record)
        assert "loss_scales" not in trainer.state_dict() or not trainer.state_dict()["loss_scales"]


@pytest.mark.parametrize("schedule", ["alternating", "simultaneous"])
def test_an_overflow_backs_off_and_skips_its_phase_alone(tiny, monkeypatch, schedule):
    _inject(monkeypatch, {2}, 1e4)
    trainer = Trainer(load_config("pertask", _fp16(tiny, f"train.schedule={schedule}")))
    for _ in range(2):
        trainer.train_step()
    d_before, g_before = _d_weights(trainer), trainer.model.generator.state_dict()
    g_before = {k: v.clone() for k, v in g_before.items()}
    record = trainer.train_step(record=True)  # step 2: D's scaled gradients overflow
    assert record["d/overflow"] == 1 and record["d/loss_scale"] == INIT_SCALE / 2
    assert record["g/overflow"] == 0 and record["g/loss_scale"] == INIT_SCALE
    assert math.isfinite(record["d/loss"]) and not math.isfinite(record["d/grad_norm"])
    # not a non-finite step: nothing counted towards the rollback
    assert record["skipped"] == 0 and record["d/nonfinite"] == 0 and trainer.bad_streak == 0
    assert all(torch.equal(a, b) for a, b in zip(d_before, _d_weights(trainer)))  # D skipped
    g_after = trainer.model.generator.state_dict()
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)  # G applied
    after = [trainer.train_step(record=True) for _ in range(2)][-1]
    assert after["d/overflow"] == 1 and after["d/loss_scale"] == INIT_SCALE / 2
    assert math.isfinite(after["d/grad_norm"])


def test_a_non_finite_loss_still_counts_as_skipped(tiny, monkeypatch):
    _inject(monkeypatch, {2}, math.nan)
    trainer = Trainer(load_config("pertask", _fp16(tiny)))
    records = [trainer.train_step(record=True) for _ in range(3)]
    assert records[-1]["skipped"] == 1 and records[-1]["d/nonfinite"] == 1
    assert records[-1]["d/overflow"] == 0 and records[-1]["d/loss_scale"] == INIT_SCALE


def test_the_scale_grows_after_the_growth_interval(tiny, monkeypatch):
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 2)
    trainer = Trainer(load_config("pertask", _fp16(tiny)))
    scales = [trainer.train_step(record=True)["d/loss_scale"] for _ in range(5)]
    assert scales == [INIT_SCALE, INIT_SCALE * 2, INIT_SCALE * 2, INIT_SCALE * 4, INIT_SCALE * 4]


def test_the_scale_follows_grad_scaler(monkeypatch):
    # The same trajectory as torch.amp.GradScaler (public API) over finite and overflowing steps
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 3)
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([param], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=INIT_SCALE, growth_interval=3)
    ours = LossScale(torch.device("cpu"))
    yes = torch.tensor(True)
    for finite in [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]:
        scaler.scale(torch.ones(()))  # what GradScaler needs before `step`
        param.grad = torch.full((2,), 1.0 if finite else math.inf)
        scaler.step(optimizer)
        scaler.update()
        ours.update(yes, torch.tensor(bool(finite)))
        assert float(ours.scale) == scaler.get_scale()


def test_at_the_least_scale_an_overflow_is_a_non_finite_step():
    scale = LossScale(torch.device("cpu"))
    scale.load_state_dict({"scale": 2.0})
    yes, no = torch.tensor(True), torch.tensor(False)
    assert bool(scale.update(yes, no)) and float(scale.scale) == 1.0  # backed off to 1
    assert not bool(scale.update(yes, no)) and float(scale.scale) == 1.0  # now non-finite
    assert int(scale.overflows) == 1


def test_the_loss_scale_is_checkpointed_and_resume_is_exact(tmp_path, tiny, monkeypatch):
    # a grown scale and a growth count part-way at the checkpoint: both must come back
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 2)
    config = load_config("pertask", _fp16(tiny))
    straight = Trainer(config)
    last = [straight.train_step(record=True) for _ in range(6)][-1]
    first = Trainer(config)
    for _ in range(3):
        first.train_step()
    first.save(RunDir(tmp_path))
    resumed = Trainer(config)
    assert resumed.restore(RunDir(tmp_path)) and resumed.step == 3
    assert float(resumed.engine.scales["d"].scale) == INIT_SCALE * 2
    again = [resumed.train_step(record=True) for _ in range(3)][-1]
    assert again == last and last["d/loss_scale"] == INIT_SCALE * 8
    a, b = straight.weights().state_dict(), resumed.weights().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_without_a_loss_scale_loads_with_the_initial_one(tiny):
    fp32 = Trainer(load_config("pertask", tiny))
    fp32.train_step()
    state = fp32.state_dict()
    state.pop("loss_scales")  # as written before fp16 existed
    trainer = Trainer(load_config("pertask", _fp16(tiny)))
    trainer.engine.scales["d"].load_state_dict({"scale": 8.0, "growth": 3, "overflows": 1})
    trainer.load_state_dict(state)
    for scale in trainer.engine.scales.values():
        assert scale.state_dict() == {"scale": INIT_SCALE, "growth": 0, "overflows": 0}
    assert math.isfinite(trainer.train_step(record=True)["d/loss"])


def _jacobian_of_tiny_objectives(scale: LossScale | None) -> torch.Tensor:
    """The per-objective Jacobian of two objectives, 1e-8 × a linear map's mean output, in
    float16 autocast: their gradients (6e-10 at the output) lie below float16's least
    subnormal (6e-8). The objectives are float32, as `Objectives.per_term` is."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 2)
    x = torch.randn(16, 8)
    with torch.autocast("cpu", dtype=torch.float16):
        per_term = [layer(x).float().mean(0) * 1e-8]
    source = jacobian_at(list(layer.parameters()))
    return (source if scale is None else ScaledSource(source, scale)).jacobian(per_term)


def test_a_gradient_balancers_per_objective_gradients_are_loss_scaled():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 2)
    x = torch.randn(16, 8)
    exact = jacobian_at(list(layer.parameters())).jacobian([layer(x).mean(0) * 1e-8])
    assert (exact.abs() > 1e-10).any()
    unscaled = _jacobian_of_tiny_objectives(None)
    assert (unscaled == 0).all()  # what float16 makes of them without a scale
    scaled = _jacobian_of_tiny_objectives(LossScale(torch.device("cpu")))
    torch.testing.assert_close(scaled, exact, rtol=1e-2, atol=1e-12)
    # the Gram matrix of the same objectives, divided by S² again
    with torch.autocast("cpu", dtype=torch.float16):
        per_term = [layer(x).float().mean(0) * 1e-8]
    source = ScaledSource(jacobian_at(list(layer.parameters())), LossScale(torch.device("cpu")))
    torch.testing.assert_close(source.gram(per_term), exact @ exact.T, rtol=2e-2, atol=1e-24)


@pytest.mark.parametrize("balancer", ["mgda", "pcgrad"])
def test_a_gradient_balancer_under_fp16_backs_off_on_an_overflow(tiny, monkeypatch, balancer):
    # The scaled per-objective gradients overflow: the balancer's weights are not finite, and
    # so is its loss, but the objectives are: a backoff, not a non-finite step.
    _inject(monkeypatch, {2}, 1e4)
    trainer = Trainer(load_config("pertask", _fp16(tiny, f"balance.d={balancer}")))
    assert isinstance(trainer.engine.sources["d"], ScaledSource)
    records = [trainer.train_step(record=True) for _ in range(4)]
    assert all(math.isfinite(r["d/loss"]) for r in records[:2] + records[3:])
    assert records[2]["d/overflow"] == 1 and records[2]["d/loss_scale"] == INIT_SCALE / 2
    assert records[-1]["skipped"] == 0 and records[-1]["d/nonfinite"] == 0
    assert math.isfinite(records[-1]["d/grad_norm"])
