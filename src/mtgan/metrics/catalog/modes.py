"""`modes`: mode coverage of a bundled 2D mixture (PacGAN's protocol: modes hit, high-quality
samples, reverse KL), on 2,500 samples per task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtgan.errors import ConfigError
from mtgan.metrics.modes2d import mode_stats_for
from mtgan.metrics.registry import per_task, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.metrics.evaluate import EvalContext

PACGAN_SAMPLES = 2500  # the PacGAN protocol scores 2,500 samples


def fits(config: ExperimentConfig) -> bool:
    from mtgan.metrics.evaluate import mixture_name

    return mixture_name(config) is not None


@register_metric(
    "modes", {"modes": "max", "hq": "max", "rkl": "min"}, place=10, fits=fits, in_tables=True
)
def modes(ctx: EvalContext) -> dict[str, float]:
    if ctx.mixture is None:
        raise ConfigError(
            "eval.metrics: `modes` needs a bundled 2D mixture (data.name=ring8|grid25)"
        )
    stats = [mode_stats_for(ctx.mixture, ctx.samples(k)[:PACGAN_SAMPLES]) for k in ctx.tasks]
    out = {}
    for key in ("modes", "hq", "rkl"):
        out.update(per_task(key, [r[key] for r in stats]))
    return out
