"""GMAN's softmax weighting (Durugkar et al. 2017) of many discriminators' losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import Balancer, register
from mtgan.errors import ConfigError


@register
class GMANSoftmax(Balancer):
    """Σ_i softmax(λ·V)_i · V_i over each term's per-discriminator losses V (ND,).

    λ = 0 is the mean, λ → ∞ the maximum (the harshest discriminator); the expression is
    differentiated as written, weights included. A term with a single loss passes through.
    """

    name = "gman"
    summary = "GMAN: softmax(λ·V)-weighted mean over discriminators (lam: 0 mean, ∞ max)"

    def __init__(self, lam: float = 1.0):
        if not isinstance(lam, (int, float)) or lam < 0:
            raise ConfigError(f"lam must be a number ≥ 0, got {lam!r}")
        self.lam = float(lam)

    def combine(
        self, losses: dict[str, Tensor], weights: dict[str, float], jacobian: Any = None
    ) -> Tensor:
        total = 0.0
        for name, values in losses.items():
            mixed = (torch.softmax(self.lam * values, dim=0) * values).sum()
            total = total + weights[name] * mixed
        return total

    def state_dict(self) -> dict[str, float]:
        return {"lam": self.lam}
