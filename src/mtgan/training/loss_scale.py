"""`train.precision=fp16`: a dynamic loss scale per phase, as torch.amp.GradScaler keeps one.

float16 holds magnitudes from 6e-8 to 65504; a GAN's gradients, many far below 1e-4, would
underflow in its backward pass. So a phase's loss is multiplied by a scale S before it is
differentiated and its gradients by 1/S after (S is a power of two: both exact). S starts at
2**16, doubles after GROWTH_INTERVAL consecutive finite steps and halves when the scaled
gradients overflow, and that phase is then not applied: a *backoff*, not a non-finite step.

Why not GradScaler itself: it keeps one scale for every optimizer it steps, updated once per
iteration (our regulariser phases step their main phase's optimizer, each phase wants its own
scale); it unscales `.grad` and hands the fused Adam its own `found_inf`, where our phases take
their gradients from torch.autograd.grad, average them over ranks and decide the skip on the
device after that; and its other paths (`step` of a non-fused optimizer, `get_scale`) read the
device with `.item()`. Its device-side update is a private op (`torch._amp_update_scale_`), so
the few lines are written here, with tensor ops only: an unlogged step never waits for them.

A gradient balancer's per-objective gradients come from backward passes of their own, in
float16 as well: `ScaledSource` runs them on the scaled objectives too (PyTorch's AMP recipe
for gradients taken with torch.autograd.grad). The penalties' inner gradients (GP, R1) are not
scaled: they are taken w.r.t. the inputs, O(1/√dim) per entry, far above float16's least
normal 6e-5, and the outer loss scale reaches the parameters through their double backward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.balance.sources import GradientSource

INIT_SCALE = 2.0**16
GROWTH_INTERVAL = 2000  # consecutive finite steps before the scale doubles (GradScaler's)
GROWTH, BACKOFF = 2.0, 0.5
# At a scale of 1 the scaled gradients are the gradients: if they overflow, float16 cannot hold
# them and a smaller scale would only hide that; such a step counts as non-finite (towards the
# rollback) instead of backing off without end, as GradScaler would, towards a scale of 0.
MIN_SCALE = 1.0


class LossScale:
    """One phase's loss scale and its counters, kept as tensors on the phase's device."""

    def __init__(self, device: torch.device):
        self.scale = torch.full((), INIT_SCALE, device=device)
        self.growth = torch.zeros((), dtype=torch.long, device=device)  # finite steps in a row
        self.overflows = torch.zeros((), dtype=torch.long, device=device)  # backoffs, in all

    def scaled(self, loss: Tensor) -> Tensor:
        return loss.float() * self.scale

    def unscale(self, grads: list[Tensor]) -> list[Tensor]:
        # out of place: a gradient autograd returns may be an expanded view
        return list(torch._foreach_mul(grads, self.scale.reciprocal())) if grads else grads

    def update(self, loss_finite: Tensor, grads_finite: Tensor) -> Tensor:
        """Advance the scale after a step whose (unscaled) loss and gradients were or were not
        finite; returns the device boolean "overflow": the loss was finite, the scaled
        gradients were not, and the scale was backed off. A non-finite loss leaves the scale
        as it is (it is no sign of a scale too large) and restarts the growth count."""
        finite = loss_finite & grads_finite
        overflow = loss_finite & ~grads_finite & (self.scale > MIN_SCALE)
        growth = (self.growth + 1) * finite
        grown = self.scale * GROWTH
        grow = (growth >= GROWTH_INTERVAL) & torch.isfinite(grown)
        backed = (self.scale * BACKOFF).clamp(min=MIN_SCALE)
        self.scale = torch.where(overflow, backed, torch.where(grow, grown, self.scale))
        self.growth = torch.where(growth >= GROWTH_INTERVAL, 0, growth)
        self.overflows = self.overflows + overflow
        return overflow

    def record(self, phase: str) -> dict[str, Tensor]:
        """The values logged at a log step: backoffs so far, and the scale the next step uses."""
        return {f"{phase}/overflow": self.overflows.float(), f"{phase}/loss_scale": self.scale}

    def state_dict(self) -> dict[str, Any]:
        # read at checkpoint steps only (a host sync)
        return {
            "scale": float(self.scale),
            "growth": int(self.growth),
            "overflows": int(self.overflows),
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """None (a checkpoint from an fp32 or bf16 run, or from before fp16): the initial scale."""
        state = state or {}
        device = self.scale.device
        self.scale = torch.tensor(float(state.get("scale", INIT_SCALE)), device=device)
        self.growth = torch.tensor(int(state.get("growth", 0)), device=device)
        self.overflows = torch.tensor(int(state.get("overflows", 0)), device=device)


class ScaledSource:
    """A gradient source (balance/sources.py) whose backward passes run on the objectives × S
    and whose results are divided by S again (the Gram matrix by S²): the per-objective
    gradients a gradient balancer weighs keep float16's small values, as the phase's own
    gradient does. An overflow makes them non-finite; the balancer then returns non-finite
    weights and the phase's gradients follow, which the trainer reads as a backoff of S
    (the objectives themselves being finite)."""

    def __init__(self, source: GradientSource, scale: LossScale):
        self.source, self.loss_scale = source, scale

    def __getattr__(self, name: str) -> Any:  # params, complete, reduce: the source's own
        if name == "source":  # not set yet (copy, pickle): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.source, name)

    def _scaled(self, per_term: list[Tensor]) -> list[Tensor]:
        return [t.float() * self.loss_scale.scale for t in per_term]  # S overflows float16

    def gram(self, per_term: list[Tensor]) -> Tensor:
        return self.source.gram(self._scaled(per_term)) / self.loss_scale.scale.square()

    def jacobian(self, per_term: list[Tensor]) -> Tensor:
        return self.source.jacobian(self._scaled(per_term)) / self.loss_scale.scale

    def combined(self, alpha: Tensor) -> list[Tensor]:
        grads = self.source.combined(alpha)
        return list(torch._foreach_div(grads, self.loss_scale.scale)) if grads else grads
