"""Exponential moving average of the generators' weights (Karras et al.; Yazıcı et al. 2019)."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn


class EMA(nn.Module):
    """A frozen copy of `net` whose weights track w ← decay·w + (1 − decay)·w_net; with
    `rampup`, the decay of step t is lower while its half-life would exceed rampup·t steps
    (Karras et al. 2020's ema_rampup), so a short run's average is not mostly its start."""

    def __init__(self, net: nn.Module, decay: float, rampup: float | None = None):
        super().__init__()
        self.decay, self.rampup = decay, rampup
        self.net = copy.deepcopy(net).requires_grad_(False).eval()
        self.stale = True  # batch-norm statistics not yet computed for the current weights

    def decay_at(self, step: int) -> float:
        """The decay of update number `step` (0-based): a host float, no device sync."""
        if self.rampup is None:
            return self.decay
        half_life = min(math.log(0.5) / math.log(self.decay), self.rampup * (step + 1))
        return 0.5 ** (1.0 / half_life)  # rampup > 0 (validated): half_life > 0

    @torch.no_grad()
    def update(self, net: nn.Module, where: Tensor | None = None, step: int = 0) -> None:
        """One averaging step (the `step`-th, for the rampup); with `where` (a boolean on the
        device) only where it is true, decided on the device (a skipped training step leaves
        the average as it was)."""
        ema_params = list(self.net.parameters())
        params = list(net.parameters())
        decay = self.decay_at(step)
        if where is None:
            torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        else:
            weight = where.to(ema_params[0].dtype) * (1.0 - decay)
            torch._foreach_lerp_(ema_params, params, [weight] * len(params))
        for b_ema, b in zip(self.net.buffers(), net.buffers()):
            b_ema.copy_(b)
        self.stale = True

    @property
    def norms(self) -> list[nn.Module]:
        return [m for m in self.net.modules() if hasattr(m, "running_mean")]

    @torch.no_grad()
    def recompute_statistics(self, inputs: Iterable[Tensor]) -> None:
        """Batch-norm running statistics of the averaged weights themselves ("standing
        statistics", Brock et al. 2019): the live generators' statistics belong to other
        weights, and sampling the average with them puts samples off the data (numbers in
        benchmarks/results/design-notes.md).
        Cumulative averages over `inputs`, in training mode, then back to eval mode."""
        norms = self.norms
        saved = [m.momentum for m in norms]
        for m in norms:
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.num_batches_tracked.zero_()
            m.momentum = None  # cumulative average
        self.net.train()
        try:
            for x in inputs:
                self.net(x)
        finally:
            self.net.eval()
            for m, momentum in zip(norms, saved):
                m.momentum = momentum
        self.stale = False

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)
