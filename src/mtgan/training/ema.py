"""Exponential moving average of the generators' weights (Karras et al.; Yazıcı et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """A frozen copy of `net` whose weights track w ← decay·w + (1 − decay)·w_net."""

    def __init__(self, net: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.net = copy.deepcopy(net).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        ema_params = list(self.net.parameters())
        params = list(net.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for b_ema, b in zip(self.net.buffers(), net.buffers()):
            b_ema.copy_(b)

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)
