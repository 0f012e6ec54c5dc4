"""`agreement`: CoGAN's pixel agreement between the generators of one task in two domains."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtgan.errors import ConfigError
from mtgan.metrics.agreement import pixel_agreement
from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.registry import register_metric

if TYPE_CHECKING:
    from mtgan.metrics.evaluate import EvalContext


@register_metric(
    "agreement",
    {"agreement": "max"},
    place=60,
    fits=lambda config: len(config.data.domains) > 1 and not is_mixture(config),
    in_tables=True,
)
def agreement(ctx: EvalContext) -> dict[str, float]:
    """The same z through the generator of a task in its original domain and of the same task
    in a derived domain; the first is transformed and both binarised."""
    groups: dict[str, int] = {}
    pairs = []
    for k, (name, domain) in enumerate(zip(ctx.data.names, ctx.data.domains)):
        if domain == "identity":
            groups[name] = k
    for k, (name, domain) in enumerate(zip(ctx.data.names, ctx.data.domains)):
        base = name.rsplit("/", 1)[0]
        if domain != "identity" and base in groups:
            pairs.append((groups[base], k, domain))
    if not pairs:
        raise ConfigError(
            "eval.metrics: `agreement` needs tasks in two domains, "
            "e.g. data.domains=[identity,edges]"
        )
    samples = ctx.generate(ctx.noise(ctx.config.n, same_for_all=True, salt=3))
    out = {
        f"agreement/task{i}-task{j}": pixel_agreement(samples[i], samples[j], domain)
        for i, j, domain in pairs
    }
    out["agreement"] = float(np.mean(list(out.values())))
    return out
