"""`agreement`: CoGAN's pixel agreement between the generators of one task in two domains."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtgan.errors import ConfigError
from mtgan.metrics.agreement import pixel_agreement
from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.registry import about, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

NEEDS = "tasks in two domains, e.g. data.domains=[identity,edges]"


def pairs(data: TaskSet) -> list[tuple[int, int, str]]:
    """(task in its original domain, the same task in a derived domain, that domain)."""
    groups: dict[str, int] = {}
    out = []
    for k, (name, domain) in enumerate(zip(data.names, data.domains)):
        if domain == "identity":
            groups[name] = k
    for k, (name, domain) in enumerate(zip(data.names, data.domains)):
        base = name.rsplit("/", 1)[0]
        if domain != "identity" and base in groups:
            out.append((groups[base], k, domain))
    return out


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    return None if pairs(data) else f"{NEEDS}; {about(config, data)}"


@register_metric(
    "agreement",
    {"agreement": "max"},
    place=60,
    fits=lambda config: len(config.data.domains) > 1 and not is_mixture(config),
    in_tables=True,
    requires=requires,
)
def agreement(ctx: EvalContext) -> dict[str, float]:
    """The same z through the generator of a task in its original domain and of the same task
    in a derived domain; the first is transformed and both binarised."""
    found = pairs(ctx.data)
    if not found:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `agreement` needs {NEEDS}")
    samples = ctx.generate(ctx.noise(ctx.config.n, same_for_all=True, salt=3))
    out = {
        f"agreement/task{i}-task{j}": pixel_agreement(samples[i], samples[j], domain)
        for i, j, domain in found
    }
    out["agreement"] = float(np.mean(list(out.values())))
    return out
