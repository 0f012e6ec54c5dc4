"""Loss-based balancers: the direction each formula says, finite output on degenerate input,
and state that survives a checkpoint."""

from __future__ import annotations

import pytest
import torch

from mtgan.balance import BALANCERS, build_balancer
from mtgan.balance.base import Objectives
from mtgan.config import load_config
from mtgan.training import Trainer

LOSS_BASED = ["rlw", "uncertainty", "dwa", "geometric", "hypervolume", "gman", "famo", "fixed"]


def _combine(name: str, values: torch.Tensor, options: dict | None = None, steps: int = 1):
    balancer = build_balancer(name, options or {}, "balance.g")
    for _ in range(steps):
        x = values.clone().requires_grad_(True)
        total = balancer.combine(Objectives({"adversarial": x}, {"adversarial": 1.0}))
        total.backward()
    return balancer, total, x.grad


def test_every_listed_loss_balancer_is_registered():
    assert set(LOSS_BASED) <= set(BALANCERS)


@pytest.mark.parametrize("name", LOSS_BASED)
@pytest.mark.parametrize(
    "values",
    [
        torch.tensor([0.0, 0.0, 0.0]),  # zero losses
        torch.tensor([1.3, 1.3, 1.3]),  # identical
        torch.tensor([0.7]),  # one objective
        torch.tensor([-2.0, 0.5, 3.0]),  # hinge / Wasserstein losses can be negative
    ],
    ids=["zeros", "identical", "one", "negative"],
)
def test_output_and_gradients_are_finite_on_degenerate_input(name, values):
    _, total, grad = _combine(name, values, steps=3)
    assert total.dim() == 0 and torch.isfinite(total)
    assert grad is not None and torch.isfinite(grad).all()


def test_objectives_name_every_objective_and_repeat_the_term_weight():
    objectives = Objectives(
        {"adversarial": torch.tensor([1.0, 2.0]), "gp": torch.tensor([3.0])},
        {"adversarial": 1.0, "gp": 10.0},
    )
    assert objectives.values.tolist() == [1.0, 2.0, 3.0]
    assert objectives.base.tolist() == [1.0, 1.0, 10.0]
    assert objectives.weighted.tolist() == [1.0, 2.0, 30.0]
    assert objectives.names == ["adversarial/task0", "adversarial/task1", "gp"]


def test_uncertainty_lowers_the_weight_of_the_larger_loss():
    # ∂/∂s_i (exp(−s_i) L_i + s_i) = 1 − exp(−s_i) L_i: s grows where L > 1, shrinks where L < 1
    balancer, _, _ = _combine("uncertainty", torch.tensor([4.0, 0.25]), {"lr": 0.1}, steps=20)
    w = balancer.last_weights
    assert w["adversarial/task0"] < 1.0 < w["adversarial/task1"]
    # and the log-variances head for log L (the optimum of exp(−s)·L + s)
    s = balancer.log_vars.value.detach()
    assert s[0] > 0 > s[1]


def test_dwa_favours_the_objective_that_improves_slowest():
    balancer = build_balancer("dwa", {"beta": 0.0}, "balance.g")
    for values in ([1.0, 1.0], [1.0, 0.5], [1.0, 0.25]):
        balancer.combine(Objectives({"adversarial": torch.tensor(values)}, {"adversarial": 1.0}))
    w = balancer.last_weights
    assert w["adversarial/task0"] > w["adversarial/task1"]
    assert sum(w.values()) == pytest.approx(2.0)


def test_hypervolume_weights_the_largest_loss_most_and_averages_one():
    balancer, _, grad = _combine("hypervolume", torch.tensor([0.5, 1.0, 2.0]))
    assert grad[2] > grad[1] > grad[0] > 0
    assert sum(balancer.last_weights.values()) == pytest.approx(3.0)


def test_geometric_scales_each_gradient_by_the_inverse_of_its_loss():
    _, total, grad = _combine("geometric", torch.tensor([1.0, 4.0]))
    # m · sqrt(L0 · L1) = 4; ∂/∂L_i = G / L_i with G = sqrt(4) = 2
    assert total.item() == pytest.approx(4.0)
    assert grad.tolist() == pytest.approx([2.0, 0.5])


def test_rlw_weights_average_one_and_replay_after_state_roundtrip():
    a = build_balancer("rlw", {"seed": 3}, "balance.g")
    losses, weights = {"adversarial": torch.ones(4)}, {"adversarial": 1.0}
    a.combine(Objectives(losses, weights))
    assert sum(a.last_weights.values()) == pytest.approx(4.0)
    state = a.state_dict()
    a.combine(Objectives(losses, weights))
    b = build_balancer("rlw", {"seed": 99}, "balance.g")
    b.load_state_dict(state)
    b.combine(Objectives(losses, weights))
    assert a.last_weights == b.last_weights


def test_bad_options_name_the_field():
    from mtgan.errors import ConfigError

    with pytest.raises(ConfigError, match=r"balance\.g_options: .*temperature"):
        build_balancer("dwa", {"temperature": -1}, "balance.g")
    with pytest.raises(ConfigError, match=r"balance\.d_options"):
        build_balancer("uncertainty", {"nope": 1}, "balance.d")


@pytest.mark.parametrize("name", ["uncertainty", "dwa", "rlw", "famo"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny, name, interrupted):
    last, again = interrupted([*tiny, f"balance.g={name}", f"balance.d={name}"], 2, 2)
    keys = [k for k in last if "/weight/" in k]
    assert keys, "balancer weights are logged"
    assert {k: last[k] for k in keys} == {k: again[k] for k in keys}


def test_weights_are_logged_per_objective(tiny):
    trainer = Trainer(load_config("pertask", [*tiny, "balance.g=hypervolume"]))
    record = trainer.train_step(record=True)
    assert {f"g/weight/adversarial/task{k}" for k in range(3)} <= set(record)


def test_famo_shifts_weight_to_the_objective_that_stopped_improving():
    balancer = build_balancer("famo", {"lr": 0.5}, "balance.g")
    a, b = 1.0, 1.0
    for _ in range(10):  # objective 0 keeps falling, objective 1 is stuck
        a *= 0.8
        x = torch.tensor([a, b], requires_grad=True)
        balancer.combine(Objectives({"adversarial": x}, {"adversarial": 1.0})).backward()
    z = torch.softmax(balancer.logits.value.detach(), 0)
    assert z[1] > z[0]
    # the gradient weights are m·z_i / (c·L_i): they sum to m over the objectives' L-weighted share
    alpha = torch.tensor(list(balancer.last_weights.values()))
    assert x.grad.tolist() == pytest.approx(alpha.tolist(), rel=1e-5)


def _adam_run(weight_decay: float, steps: int, gen: torch.Generator):
    """A reference torch.optim.Adam on 5 numbers after `steps` random gradients."""
    ref = torch.zeros(5, requires_grad=True)
    adam = torch.optim.Adam([ref], lr=0.025, weight_decay=weight_decay)
    for _ in range(steps):
        ref.grad = torch.randn(5, generator=gen)
        adam.step()
    return ref, adam


def _written_out(ref: torch.Tensor, adam: torch.optim.Adam) -> dict:
    """The state the written-out Adam (ebde131 until issue 18) saved for the same run: it
    stepped bit-equal to torch.optim.Adam (its own test), so its numbers are Adam's."""
    moments = adam.state_dict()["state"].get(0)
    if moments is None:
        zeros = torch.zeros_like(ref.detach())
        return {"value": ref.detach().clone(), "steps": 0, "exp_avg": zeros, "exp_avg_sq": zeros}
    return {
        "value": ref.detach().clone(),
        "steps": int(moments["step"]),
        "exp_avg": moments["exp_avg"].clone(),
        "exp_avg_sq": moments["exp_avg_sq"].clone(),
    }


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
@pytest.mark.parametrize("fmt", ["torch.optim", "written-out"])
@pytest.mark.parametrize("before", [0, 30])
def test_learned_vector_resumes_every_saved_format_exactly(weight_decay, fmt, before):
    """The learned weights (uncertainty, FAMO) step as torch.optim.Adam and continue bit-exact
    from a state in today's format (`value` + Adam's state_dict, also that of checkpoints
    before 2026-11-28) and in the written-out Adam's (`steps`, `exp_avg`, `exp_avg_sq`)."""
    from mtgan.balance.weighting import LearnedVector

    gen = torch.Generator().manual_seed(0)
    ref, adam = _adam_run(weight_decay, before, gen)
    if fmt == "torch.optim":
        learned = LearnedVector(0.025, weight_decay)
        learned.get(5)
        replay = torch.Generator().manual_seed(0)
        for _ in range(before):
            learned.step(torch.randn(5, generator=replay))
        assert torch.equal(learned.value, ref.detach())
        state = learned.state_dict()
    else:
        state = _written_out(ref, adam)
    resumed = LearnedVector(0.025, weight_decay)
    resumed.load_state_dict(state)
    for _ in range(10):
        grad = torch.randn(5, generator=gen)
        resumed.step(grad)
        ref.grad = grad
        adam.step()
    assert torch.equal(resumed.value, ref.detach())
    assert resumed.state_dict()["optimizer"]["state"][0]["step"].item() == before + 10


def test_learned_vector_state_is_a_snapshot():
    from mtgan.balance.weighting import LearnedVector

    learned = LearnedVector(0.1)
    learned.get(3)
    learned.step(torch.ones(3))
    state = learned.state_dict()
    saved = state["optimizer"]["state"][0]["exp_avg"].clone()
    learned.step(torch.ones(3))
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], saved)


@pytest.mark.parametrize("name", ["uncertainty", "famo"])
def test_a_checkpoint_of_the_written_out_adam_resumes_exactly(tiny, name):
    """A trainer state whose learned weights are in the written-out Adam's format (as saved
    between ebde131 and issue 18) restores into today's trainer and continues bit for bit."""
    overrides = [*tiny, f"balance.g={name}", f"balance.d={name}"]
    straight = Trainer(load_config("pertask", overrides))
    for _ in range(4):
        last = straight.train_step(record=True)
    first = Trainer(load_config("pertask", overrides))
    for _ in range(2):
        first.train_step()
    state = first.state_dict()
    converted = 0
    for phase in state["balancers"].values():
        saved = phase["state"]
        holder = saved if name == "uncertainty" else saved["logits"]
        adam = holder.pop("optimizer")["state"][0]
        holder.update(steps=int(adam["step"]), exp_avg=adam["exp_avg"])
        holder.update(exp_avg_sq=adam["exp_avg_sq"])
        converted += 1
    assert converted == 2
    resumed = Trainer(load_config("pertask", overrides))
    resumed.weights().load_state_dict(first.weights().state_dict())
    resumed.load_state_dict(state)
    for _ in range(2):
        again = resumed.train_step(record=True)
    a, b = straight.weights().state_dict(), resumed.weights().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    keys = [k for k in last if "/weight/" in k]
    assert keys and {k: last[k] for k in keys} == {k: again[k] for k in keys}
