"""`kid`: kernel inception distance per task (unbiased, so small sets compare fairly), with
the standard deviation over its subsets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.fid import kid
from mtgan.metrics.registry import per_task, register_metric

if TYPE_CHECKING:
    from mtgan.metrics.evaluate import EvalContext


@register_metric(
    "kid",
    {"kid": "min", "kid_std": None},
    place=30,
    fits=lambda c: not is_mixture(c),
    features=True,
)
def kid_metric(ctx: EvalContext) -> dict[str, float]:
    cfg = ctx.config
    means, stds = [], []
    for k in ctx.tasks:
        gen = torch.Generator().manual_seed(ctx.seed + 2)
        mean, std = kid(
            ctx.real_features(k), ctx.fake_features(k), cfg.kid_subsets, cfg.kid_subset_size, gen
        )
        means.append(mean)
        stds.append(std)
    return {**per_task("kid", means), **per_task("kid_std", stds)}
