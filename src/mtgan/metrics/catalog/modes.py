"""`modes`: mode coverage of a bundled 2D mixture (PacGAN's protocol: modes hit, high-quality
samples, reverse KL), on 2,500 samples per task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtgan.errors import ConfigError
from mtgan.metrics.modes2d import mode_stats_for
from mtgan.metrics.registry import about, per_task, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

PACGAN_SAMPLES = 2500  # the PacGAN protocol scores 2,500 samples
NEEDS = "a bundled 2D mixture (data.name=ring8|grid25)"


def fits(config: ExperimentConfig) -> bool:
    from mtgan.metrics.evaluate import mixture_name

    return mixture_name(config) is not None


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    return None if fits(config) else f"{NEEDS}; {about(config, data)}"


@register_metric(
    "modes",
    {"modes": "max", "hq": "max", "rkl": "min"},
    place=10,
    fits=fits,
    in_tables=True,
    requires=requires,
)
def modes(ctx: EvalContext) -> dict[str, float]:
    if ctx.mixture is None:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `modes` needs {NEEDS}")
    stats = [mode_stats_for(ctx.mixture, ctx.samples(k)[:PACGAN_SAMPLES]) for k in ctx.tasks]
    out = {}
    for key in ("modes", "hq", "rkl"):
        out.update(per_task(key, [r[key] for r in stats]))
    return out
