"""`prdc`: precision, recall, density and coverage (Naeem et al. 2020) per task, on equal-size
real and generated feature sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtgan.metrics.prdc import prdc
from mtgan.metrics.registry import per_task, register_metric

if TYPE_CHECKING:
    from mtgan.metrics.evaluate import EvalContext

KEYS = ("precision", "recall", "density", "coverage")


@register_metric("prdc", dict.fromkeys(KEYS, "max"), place=50, features=True)
def prdc_metric(ctx: EvalContext) -> dict[str, float]:
    per = []
    for k in ctx.tasks:
        # Equal set sizes: the k-NN radii, and so recall and coverage, depend on the set size.
        real, fake = ctx.real_features(k), ctx.fake_features(k)
        m = min(len(real), len(fake))
        per.append(prdc(real[:m], fake[:m], ctx.config.k))
    out = {}
    for key in KEYS:
        out.update(per_task(key, [r[key] for r in per]))
    return out
