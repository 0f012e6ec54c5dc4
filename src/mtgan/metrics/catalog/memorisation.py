"""`memorisation`: per task, the share of training rows among the real rows nearest to some
generated sample, training and held-out rows (`data.heldout`) together, in the features of
eval.features, balanced for the two sets' sizes (`mtgan.metrics.memorisation`): ≈ 0.5 for a
generator of the distribution, 1 for a copier of its training rows. 0.5 is the goal, not an end
of the scale, so it reports with no direction, beside `memorisation_rows`, how many real rows
it rests on. `memorisation_excess` is the part beyond chance that those rows show (from the
lower end of a 95 % interval): 0 for a generator that does not copy, or when too few rows
tell, towards 1 for a copier; lower is better."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mtgan.errors import ConfigError
from mtgan.metrics.memorisation import memorisation
from mtgan.metrics.registry import about, per_task, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

NEEDS = "real rows held out from training to compare with (e.g. data.heldout=0.1)"
MAX_ROWS = 10_000  # of each real set per task, a seeded subset beyond: bounded time and memory


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    if data.heldout is None:
        return f"{NEEDS}; {about(config, data)} and data.heldout=0 holds none out"
    return None


def at_most(rows: Tensor, count: int, gen: torch.Generator) -> Tensor:
    """`rows`, or a seeded subset of `count` of them when there are more."""
    if len(rows) <= count:
        return rows
    return rows[torch.randperm(len(rows), generator=gen)[:count].sort().values]


@register_metric(
    "memorisation",
    {"memorisation": None, "memorisation_rows": None, "memorisation_excess": "min"},
    place=55,
    fits=lambda config: config.data.heldout > 0,
    requires=requires,
    features=True,
)
def memorisation_metric(ctx: EvalContext) -> dict[str, float]:
    held = ctx.data.heldout
    if held is None:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `memorisation` needs {NEEDS}")
    gen = torch.Generator().manual_seed(ctx.seed + 6)
    found: list[dict[str, float]] = []
    for k in ctx.tasks:
        sets = [at_most(ts.task(k).cpu(), MAX_ROWS, gen) for ts in (ctx.data, held)]
        train, heldout = [ctx.cached_features(ctx.data.to_display(rows)) for rows in sets]
        found.append(memorisation(ctx.fake_features(k), train, heldout))
    out: dict[str, float] = {}
    for key in found[0]:
        out.update(per_task(key, [f[key] for f in found]))
    return out
