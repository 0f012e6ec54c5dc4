"""Loss-based balancers: each objective's weight comes from the loss values alone.

An objective is one term's loss for one network (a task's discriminator, or one of GMAN's): a
phase with terms T and N networks balances |T|·N objectives. Every balancer gives α_i for
Σ_i α_i · w_i · L_i with the configured term weight w_i. A formula that is differentiated as
written (geometric, FAMO, GMAN) gives its gradient's weights, ∂F/∂(w_i·L_i) at the global
losses: the same update on one process or many.

Formulas that need positive losses (uncertainty, DWA, geometric) read L⁺ = max(L, ε) when they
compute weights; hinge and Wasserstein losses can be negative. The gradient still flows through
the raw L.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import Balancer, Objectives, SeededDraws, expect_objectives, register
from mtgan.errors import ConfigError

EPS = 1e-8


def positive(x: Tensor) -> Tensor:
    return x.detach().clamp_min(EPS)


def _number(value: Any, name: str, low: float = 0.0, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < low or (strict and value == low):
        sign = ">" if strict else "≥"
        raise ConfigError(f"{name} must be a number {sign} {low}, got {value!r}")
    return float(value)


class LearnedVector:
    """A vector of m values learned by torch.optim.Adam (uncertainty's log-variances, FAMO's
    logits), created at zeros on first use when m is known; value and Adam's state survive a
    checkpoint as `{"value", "optimizer": Adam.state_dict()}`."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr, self.weight_decay = lr, weight_decay
        self.value: Tensor | None = None
        self.optimizer: torch.optim.Adam | None = None

    def get(self, m: int) -> Tensor:
        """The (m,) values; zeros with a fresh Adam on first use."""
        if self.value is None:
            self.value = torch.zeros(m)
            # single-tensor Adam, torch's own pick on the CPU, named so no step probes for it
            self.optimizer = torch.optim.Adam(
                [self.value], lr=self.lr, weight_decay=self.weight_decay, foreach=False
            )
        expect_objectives(m, self.value.numel(), "learned vector")
        return self.value

    def step(self, grad: Tensor) -> None:
        """One Adam step on the values with the (m,) gradient `grad`."""
        assert self.value is not None and self.optimizer is not None
        self.value.grad = grad.to(self.value.dtype)
        self.optimizer.step()
        self.value.grad = None

    def state_dict(self) -> dict[str, Any]:
        if self.value is None or self.optimizer is None:
            return {}
        optimizer = copy.deepcopy(self.optimizer.state_dict())  # a snapshot, as the value is
        return {"value": self.value.clone(), "optimizer": optimizer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        value = state["value"].detach()
        self.value = None  # a fresh vector and Adam of the saved size, then the saved state
        self.get(value.numel()).copy_(value)
        assert self.optimizer is not None
        if "optimizer" not in state:
            state = {"value": value, "optimizer": self._from_written_out(state)}
        self.optimizer.load_state_dict(state["optimizer"])

    def _from_written_out(self, state: dict[str, Any]) -> dict[str, Any]:
        """Adam's state_dict from the written-out Adam's state {"value", "steps", "exp_avg",
        "exp_avg_sq"} (checkpoints from ebde131 until issue 18; it stepped as Adam does)."""
        assert self.optimizer is not None
        steps = int(state["steps"])
        adam = self.optimizer.state_dict()
        if steps:  # no steps taken: Adam has no state yet either
            adam["state"][0] = {
                "step": torch.tensor(float(steps)),
                "exp_avg": state["exp_avg"].detach().clone(),
                "exp_avg_sq": state["exp_avg_sq"].detach().clone(),
            }
        return adam


class LossWeighting(Balancer):
    """Shared plumbing: subclasses give `alphas(values) -> (m,)` from the global losses."""

    def alphas(self, values: Tensor) -> Tensor:
        raise NotImplementedError

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        return self.alphas(objectives.values).detach()


@register
class RandomLossWeighting(SeededDraws, LossWeighting):
    """RLW (Lin et al. 2022): α = m · softmax(N(0, I)) drawn afresh every step, so the weights
    average to 1 like fixed weights; the draw is seeded and its state is checkpointed."""

    name = "rlw"
    summary = "random loss weighting, m·softmax(N(0, I)) per step (Lin et al. 2022)"
    weights_from_state = True  # the draw reads no loss

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed_draws(seed)

    def alphas(self, values: Tensor) -> Tensor:
        m = values.numel()
        draw = torch.randn(m, generator=self.generator)
        return (m * torch.softmax(draw, 0)).to(values.device)


@register
class UncertaintyWeighting(LossWeighting):
    """Kendall et al. (2018): learned log-variances s_i, loss Σ exp(−s_i)·L_i + s_i.

    s is learned by its own Adam on the same objective (∂/∂s_i = 1 − exp(−s_i)·L⁺_i, pulling
    s_i towards log L⁺_i); the trunk sees α_i = exp(−s_i). State: s and Adam's moments."""

    name = "uncertainty"
    summary = "learned log-variances, exp(−s)·L + s (Kendall et al. 2018; lr)"
    # not `weights_from_state`: α = exp(−s) is read after s stepped on this step's losses

    def __init__(self, lr: float = 1e-2):
        super().__init__()
        self.log_vars = LearnedVector(_number(lr, "lr", strict=True))

    def alphas(self, values: Tensor) -> Tensor:
        s = self.log_vars.get(values.numel())
        weights = torch.exp(-s)
        # ∂/∂s_i of Σ exp(−s_i)·L⁺_i + s_i in closed form: no autograd graph for m numbers
        self.log_vars.step(1 - weights * positive(values).detach().cpu())
        return torch.exp(-s).to(values.device)

    def state_dict(self) -> dict[str, Any]:
        return self.log_vars.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log_vars.load_state_dict(state)


@register
class DynamicWeightAverage(LossWeighting):
    """DWA (Liu et al. 2019): α_i = m · softmax(r_i / T), r_i = L̄_i(t−1) / L̄_i(t−2), the
    ratio of the last two values of a running average of L⁺_i (a GAN loss is too noisy step to
    step; the paper used epoch means). α = 1 until two averages exist."""

    name = "dwa"
    summary = "dynamic weight average of loss ratios (Liu et al. 2019; temperature, beta)"
    # not `weights_from_state`: α comes from the history, but the history takes this step's
    # losses of the whole batch, which the first micro-batch alone does not have

    def __init__(self, temperature: float = 2.0, beta: float = 0.9):
        super().__init__()
        self.temperature = _number(temperature, "temperature", strict=True)
        self.beta = _number(beta, "beta")
        if self.beta >= 1:
            raise ConfigError(f"beta must be below 1, got {beta!r}")
        self.avg: Tensor | None = None
        self.prev: Tensor | None = None

    def alphas(self, values: Tensor) -> Tensor:
        now = positive(values).cpu()
        m = now.numel()
        if self.avg is not None:
            expect_objectives(m, self.avg.numel(), "loss average")
        if self.avg is None or self.prev is None:
            alpha = torch.ones(m)
        else:
            alpha = m * torch.softmax((self.avg / self.prev) / self.temperature, 0)
        self.prev = now.clone() if self.avg is None else self.avg.clone()
        self.avg = now if self.avg is None else self.beta * self.avg + (1 - self.beta) * now
        return alpha.to(values.device)

    def state_dict(self) -> dict[str, Any]:
        return {"avg": self.avg, "prev": self.prev}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.avg, self.prev = state.get("avg"), state.get("prev")


@register
class GeometricMean(Balancer):
    """Geometric loss strategy (Chennupati et al. 2019): F = m · (Π_i w_i·L⁺_i)^(1/m),
    differentiated as written: α_i = ∂F/∂(w_i·L_i) = F / (m · w_i·L⁺_i), so every objective
    counts by its relative, not absolute, change (the log-loss view)."""

    name = "geometric"
    summary = "geometric mean of the losses (Chennupati et al. 2019)"
    stateful = False

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        u = objectives.base.clamp_min(EPS) * positive(objectives.values)
        m = u.numel()
        total = m * torch.exp(torch.log(u).mean())
        return total / (m * u)


@register
class Hypervolume(LossWeighting):
    """Hypervolume maximisation (Albuquerque et al. 2019), for many discriminators:
    −Σ log(η − L_i) with the nadir point η = max_i L_i + δ·|max_i L_i| + ε, set afresh every
    step; objective i's gradient is scaled by 1 / (η − L_i), the largest loss most. α is
    normalised to mean 1 so the step size matches fixed weights. Works for negative losses."""

    name = "hypervolume"
    summary = "−Σ log(η − L), many discriminators (Albuquerque et al. 2019; delta)"
    stateful = False

    def __init__(self, delta: float = 0.1):
        super().__init__()
        self.delta = _number(delta, "delta", strict=True)

    def alphas(self, values: Tensor) -> Tensor:
        v = values.detach()
        top = v.max()
        eta = top + self.delta * top.abs() + 1e-3
        alpha = 1.0 / (eta - v)
        return alpha * (alpha.numel() / alpha.sum())


@register
class FAMO(Balancer):
    """FAMO (Liu et al. 2023): logits ξ, z = softmax(ξ); the phase minimises
    m · Σ_i z_i log L⁺_i / c with c = Σ_i z_i / L⁺_i (detached), i.e. objective i's gradient is
    scaled by m·z_i / (c·L⁺_i); after each step ξ moves (Adam, weight decay γ) so that the
    objectives whose log-loss fell least since the previous step gain weight. O(m) per step, no
    per-objective gradients. The ξ update uses consecutive steps' losses (different batches), as
    is usual where re-evaluating the same batch would cost a forward pass."""

    name = "famo"
    summary = "fast adaptive multitask optimisation, O(m) (Liu et al. 2023; lr, gamma)"

    def __init__(self, lr: float = 0.025, gamma: float = 1e-3):
        self.logits = LearnedVector(_number(lr, "lr", strict=True), _number(gamma, "gamma"))
        self.prev: Tensor | None = None

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        d = positive(objectives.base * objectives.values)  # w·L⁺ of the global batch
        m = d.numel()
        logits = self.logits.get(m)
        now = d.cpu()
        if self.prev is not None:
            expect_objectives(m, self.prev.numel(), "previous losses")
            decrease = self.prev.log() - now.log()  # how much each log-loss fell
            z = torch.softmax(logits, 0)
            # softmax's vector–Jacobian product in closed form: z ⊙ (δ − z·δ)
            self.logits.step(z * (decrease - (z * decrease).sum()))
        self.prev = now
        z = torch.softmax(logits, 0).to(d.device)
        c = (z / d).sum()
        return m * z / (c * d)  # the gradient of m·Σ z log(w·L) / c: Σ α_i ∇(w_i L_i)

    def state_dict(self) -> dict[str, Any]:
        return {"logits": self.logits.state_dict(), "prev": self.prev}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits.load_state_dict(state.get("logits", {}))
        self.prev = state.get("prev")


def describe_balancers() -> list[tuple[str, str]]:
    """(name, one-line summary) for every registered balancer."""
    from mtgan.balance.base import BALANCERS

    return [(name, cls.summary) for name, cls in sorted(BALANCERS.items())]


__all__ = [
    "FAMO",
    "DynamicWeightAverage",
    "GeometricMean",
    "Hypervolume",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "describe_balancers",
]
