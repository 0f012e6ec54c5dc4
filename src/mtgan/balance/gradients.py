"""Gradient-based balancers: the weights come from the objectives' gradients.

Where the gradients are taken. Each objective's gradient is taken w.r.t. the phase's *shared
parameters* (the layers its networks share; all of the phase's parameters when it has a single
network, or when `at: all`), exactly, and every method here reads only their m × m Gram matrix
G = J Jᵀ (IMTL-G too: its products g_a·u_b are G_ab / ‖g_b‖). The objectives of different tasks
meet only in shared parameters, so this is where their gradients can conflict. A shared
*tensor* (MGDA-UB's trick: a trunk's output, or GMAN's generated batch) would be cheaper but
would not do here: each objective reads its own rows of it (its task's samples, its
discriminator's slice), so the Gram matrix there is diagonal: gradient norms without a single
conflict, under which PCGrad is plain summation. What couples GMAN's five objectives is the
generator's batch norm, i.e. its parameters, which is where they are taken.

What that costs depends on the source (sources.py, tape.py): one backward pass per term where
the objectives' rows stay apart (tape, disjoint networks), plus m batched backward passes through
the blocks up to a batch norm that pools them, and m through everything the objectives read in
the general fallback (penalties, `at: all`); benchmarks/results/balancer-cost.md has the
numbers.

Every method returns loss weights α (detached): the phase then differentiates Σ α_i·w_i·L_i,
so the update direction is the method's combination of gradients at the shared parameters and
the matching combination at every task-own parameter; where the source's gradients cover all
the phase updates, that combination is formed from them and no second backward pass is run. α
is scaled so that plain averaging gives α = 1, the fixed-weight step.

They solve their small problems on the host (numpy, scipy), so a step with one of them reads
the Gram matrix from the device: the documented exception to a step without host syncs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from mtgan.balance.base import Balancer, Objectives, SeededDraws, expect_objectives, register
from mtgan.balance.solvers import conflict_averse_weights, min_norm_weights
from mtgan.balance.sources import GradientSource, linearised
from mtgan.balance.weighting import EPS, _number, positive
from mtgan.errors import ConfigError


class GradientWeighting(Balancer):
    """Shared plumbing: subclasses give `alphas(gram or jacobian, values) -> (m,)`.

    A non-finite α is passed on, never masked: the phase's loss is then non-finite and the
    trainer skips the step (and logs it), as for any other non-finite loss."""

    needs_gradients = True
    uses_gram = True  # False: `alphas` receives the Jacobian (m, P) itself

    def __init__(self, at: str = "shared"):
        if at not in ("shared", "all"):
            raise ConfigError(f"at must be 'shared' or 'all', got {at!r}")
        self.at = at

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        raise NotImplementedError

    def weights(self, objectives: Objectives, source: GradientSource | None = None) -> Tensor:
        if source is None:
            raise ConfigError(f"balancer {self.name!r} needs the phase's gradients")
        device = objectives.weighted.device
        if len(objectives) == 1:
            return torch.ones(1, device=device)
        per_term = objectives.per_term
        grads = source.gram(per_term) if self.uses_gram else source.jacobian(per_term)
        grads, values = grads.double().cpu(), objectives.values.double().cpu()
        if not (torch.isfinite(grads).all() and torch.isfinite(values).all()):
            return torch.full((len(objectives),), float("nan"), device=device)  # skip the step
        return self.alphas(grads, values).float().to(device)

    def combine(self, objectives: Objectives, source: GradientSource | None = None) -> Tensor:
        total = super().combine(objectives, source)
        assert source is not None
        if source.complete and len(objectives) > 1:  # the phase's gradient is in hand
            return linearised(total, source.params, source.combined(self.last_alpha))
        return total


@register
class MGDA(GradientWeighting):
    """MGDA (Désidéri 2012; Sener & Koltun 2018): the min-norm point of the convex hull of the
    objectives' gradients, a direction that decreases every objective when one exists.
    α = m·w so that equal weights would match the fixed-weight step."""

    name = "mgda"
    summary = "min-norm convex combination of the gradients (Sener & Koltun 2018)"
    stateful = False

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        return grads.shape[0] * min_norm_weights(grads)


@register
class PCGrad(SeededDraws, GradientWeighting):
    """PCGrad (Yu et al. 2020): each objective's gradient loses its component along any other
    gradient it conflicts with (negative inner product), in a random order per step; the sum
    of the projected gradients is the update. Projections need only inner products, so each
    projected gradient is kept as coefficients over the original ones: g'_i = Σ_j C_ij g_j,
    and α = Σ_i C_i."""

    name = "pcgrad"
    summary = "project away conflicting gradient components (Yu et al. 2020; seed)"

    def __init__(self, at: str = "shared", seed: int = 0):
        super().__init__(at)
        self.seed_draws(seed)

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        gram, m = grads.numpy(), grads.shape[0]
        coeffs = np.eye(m)  # numpy: m² scalar steps, each far cheaper than a torch call
        for i in range(m):
            for j in torch.randperm(m, generator=self.generator).tolist():
                if j == i or gram[j, j] <= EPS:
                    continue
                dot = coeffs[i] @ gram[:, j]  # g'_i · g_j
                if dot < 0:
                    coeffs[i, j] -= dot / gram[j, j]
        return torch.from_numpy(coeffs.sum(0)).to(grads.dtype)


@register
class CAGrad(GradientWeighting):
    """CAGrad (Liu et al. 2021): the direction d = g0 + (√φ / ‖g_w‖)·g_w, g0 the mean gradient,
    w on the simplex minimising g_wᵀg0 + √φ·‖g_w‖ with φ = c²‖g0‖²: the mean, bent towards the
    worst objective within a ball of radius c‖g0‖; scaled by 1/(1 + c²) as in the authors' code.
    c = 0 is plain averaging."""

    name = "cagrad"
    summary = "conflict-averse direction near the mean gradient (Liu et al. 2021; c)"

    def __init__(self, at: str = "shared", c: float = 0.4):
        super().__init__(at)
        self.c = _number(c, "c")
        self.support: np.ndarray | None = None

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        gram, m = grads.numpy(), grads.shape[0]
        g0_norm = math.sqrt(max(float(gram.mean()), 0.0))  # ‖mean gradient‖
        if self.c == 0 or g0_norm <= EPS:
            return torch.ones(m, dtype=grads.dtype)
        sqrt_phi = self.c * g0_norm
        if self.support is not None:
            expect_objectives(m, self.support.size, "search start")
        w = conflict_averse_weights(gram, sqrt_phi, self.support)
        if w is None:  # an optimum the exact solver cannot certify (g_w = 0 there): SLSQP
            w = _conflict_averse_slsqp(gram, sqrt_phi)
        self.support = w > 0  # only where to look first next step: the answer is certified
        gw_norm = math.sqrt(max(float(w @ gram @ w), EPS))
        direction = 1.0 / m + (sqrt_phi / gw_norm) * w
        return torch.from_numpy(m * direction / (1 + self.c**2))

    def state_dict(self) -> dict[str, Any]:
        # where the search starts decides the last bits of w: kept, so a resume is exact
        return {} if self.support is None else {"support": torch.from_numpy(self.support)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        support = state.get("support")
        self.support = None if support is None else support.numpy().astype(bool)


def _conflict_averse_slsqp(gram: np.ndarray, sqrt_phi: float) -> np.ndarray:
    """CAGrad's subproblem by scipy's general solver, as in the authors' code."""
    m = gram.shape[0]
    mean = np.full(m, 1.0 / m)
    g0 = gram @ mean

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        # with its gradient: SLSQP would otherwise difference m + 1 evaluations a step
        gw = gram @ w
        norm = np.sqrt(max(w @ gw, EPS))
        return float(w @ g0 + sqrt_phi * norm), g0 + (sqrt_phi / norm) * gw

    result = minimize(
        objective,
        mean,
        jac=True,
        bounds=[(0.0, 1.0)] * m,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(m)},
        method="SLSQP",
    )
    return solved(result, "CAGrad's SLSQP fallback")


def solved(result: Any, what: str) -> np.ndarray:
    """scipy's answer, or NaN (the phase then skips its step, and the log shows it) where the
    solver failed; a warning says which solver and why."""
    if result.success and np.all(np.isfinite(result.x)):
        return result.x
    warnings.warn(
        f"{what} failed ({result.message}); the step is skipped", RuntimeWarning, stacklevel=2
    )
    return np.full_like(result.x, np.nan)


@register
class IMTLG(GradientWeighting):
    """IMTL-G (Liu et al. 2021): the combination whose projections onto every objective's unit
    gradient are equal, so no objective dominates the update; closed form
    α_{2..m} = g_1 Uᵀ (D Uᵀ)⁻¹ with D_i = g_1 − g_i, U_i = u_1 − u_i, α_1 = 1 − Σ α_{2..m}.
    Every product there is g_a·u_b = G_ab / ‖g_b‖, so the Gram matrix suffices."""

    name = "imtl-g"
    summary = "equal projections onto every unit gradient (Liu et al. 2021)"
    stateful = False

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        gram, m = grads, grads.shape[0]
        gu = gram / gram.diagonal().clamp_min(0).sqrt().clamp_min(EPS)  # gu[a, b] = g_a · u_b
        first = gu[:1, :1] - gu[:1, 1:]  # g_1 Uᵀ: (1, m − 1)
        du = first - (gu[1:, :1] - gu[1:, 1:])  # D Uᵀ: (m − 1, m − 1)
        rest = first @ torch.linalg.pinv(du)
        alpha = torch.cat([1 - rest.sum(1), rest[0]])
        return m * alpha


@register
class GradNorm(GradientWeighting):
    """GradNorm (Chen et al. 2018): learned weights w_i pulled so that each weighted gradient
    norm w_i‖g_i‖ approaches mean_j(w_j‖g_j‖) · r_i^a, r_i the objective's loss relative to its
    first value (normalised to mean 1): objectives that train slower get larger weights.
    Σ w = m after every update. Uses L⁺ for the ratios."""

    name = "gradnorm"
    summary = "learned weights equalising gradient norms by training rate (Chen et al. 2018)"

    def __init__(self, at: str = "shared", alpha: float = 1.5, lr: float = 0.025):
        super().__init__(at)
        self.a = _number(alpha, "alpha")
        self.lr = _number(lr, "lr", strict=True)
        self.w: Tensor | None = None
        self.initial: Tensor | None = None

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        m = grads.shape[0]
        norms = grads.diagonal().clamp_min(0).sqrt()
        losses = positive(values)
        if self.w is None:
            self.w, self.initial = torch.ones(m, dtype=grads.dtype), losses.clone()
        expect_objectives(m, self.w.numel(), "learned weights")
        assert self.initial is not None
        ratio = losses / self.initial
        ratio = ratio / ratio.mean().clamp_min(EPS)
        weighted = self.w * norms
        target = weighted.mean() * ratio**self.a
        # ∂/∂w_i Σ_j |w_j‖g_j‖ − target_j| (target held fixed, as in the paper)
        self.w = (self.w - self.lr * torch.sign(weighted - target) * norms).clamp_min(EPS)
        self.w = self.w * (m / self.w.sum())
        return self.w.clone()

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w, "initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w, self.initial = state.get("w"), state.get("initial")


@register
class NashMTL(GradientWeighting):
    """Nash-MTL (Navon et al. 2022): the bargaining solution α > 0 with (Gα)_i = 1/α_i, so
    every objective's share of the update is proportional to its weight's inverse; solved by
    bounded least squares on α ⊙ Gα − 1 (scipy) and refreshed every `update_every` steps
    (the paper's speed-up), the weights held in between. α is rescaled to mean 1."""

    name = "nash-mtl"
    summary = "Nash bargaining weights, refreshed every N steps (Navon et al. 2022; update_every)"

    def __init__(self, at: str = "shared", update_every: int = 25):
        super().__init__(at)
        if not isinstance(update_every, int) or update_every < 1:
            raise ConfigError(f"update_every must be an integer ≥ 1, got {update_every!r}")
        self.update_every = update_every
        self.calls = 0
        self.alpha: Tensor | None = None

    def alphas(self, grads: Tensor, values: Tensor) -> Tensor:
        m = grads.shape[0]
        due = self.calls % self.update_every == 0
        self.calls += 1
        if self.alpha is not None:
            expect_objectives(m, self.alpha.numel(), "weights")
        if not due and self.alpha is not None:
            return self.alpha.clone()
        gram = grads.numpy()
        scale = max(float(np.abs(gram).max()), EPS)
        g = gram / scale  # the solution scales by 1/√scale; the mean-1 rescale removes it

        def residual(a: np.ndarray) -> tuple[float, np.ndarray]:
            # with its gradient (g symmetric): 2 (r ⊙ g a + g (a ⊙ r)), r = a ⊙ g a − 1;
            # SLSQP would otherwise difference m + 1 evaluations a step
            ga = g @ a
            r = a * ga - 1.0
            return float(r @ r), 2 * (r * ga + g @ (a * r))

        start = np.ones(m) / np.sqrt(max(float(np.ones(m) @ g @ np.ones(m)) / m, EPS))
        # SLSQP, not L-BFGS-B, whose threaded BLAS calls make this tiny solve slow on a busy CPU
        result = minimize(
            residual, start, jac=True, bounds=[(1e-6, None)] * m, method="SLSQP", tol=1e-12
        )
        alpha = torch.from_numpy(solved(result, "Nash-MTL's bargaining solve"))
        if not torch.isfinite(alpha).all():
            return alpha  # this step is skipped; the held weights stay those of the last solve
        self.alpha = alpha * (m / alpha.sum().clamp_min(EPS))
        return self.alpha.clone()

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "alpha": self.alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls, self.alpha = int(state.get("calls", 0)), state.get("alpha")
