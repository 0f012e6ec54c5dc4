"""GMAN's softmax weighting (Durugkar et al. 2017) of many discriminators' losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import Balancer, Objectives, register
from mtgan.errors import ConfigError


@register
class GMANSoftmax(Balancer):
    """F = Σ_i softmax(λ·V)_i · V_i over each term's per-discriminator losses V (ND,).

    λ = 0 is the mean, λ → ∞ the maximum (the harshest discriminator). F is differentiated as
    written, weights included: α_j = ∂F/∂V_j = s_j · (1 + λ·(V_j − s·V)), s = softmax(λ·V),
    taken at the global batch's losses.
    """

    name = "gman"
    summary = "GMAN: softmax(λ·V)-weighted mean over discriminators (lam: 0 mean, ∞ max)"
    stateful = False

    def __init__(self, lam: float = 1.0):
        if not isinstance(lam, (int, float)) or lam < 0:
            raise ConfigError(f"lam must be a number ≥ 0, got {lam!r}")
        self.lam = float(lam)

    def check(self, sizes: dict[str, int], field: str) -> None:
        if all(n == 1 for n in sizes.values()):
            raise ConfigError(
                f"{field}=gman weighs several discriminators' losses against each other, but "
                f"this phase's terms ({', '.join(sizes)}) have one discriminator each; choose a "
                "model with several (model.discriminators=N, or one per task) or another balancer"
            )

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        values = objectives.values
        parts = []
        for group in objectives.groups():
            v = values[group]
            s = torch.softmax(self.lam * v, dim=0)
            parts.append(s * (1 + self.lam * (v - (s * v).sum())))
        return torch.cat(parts)

    def state_dict(self) -> dict[str, float]:
        return {"lam": self.lam}
