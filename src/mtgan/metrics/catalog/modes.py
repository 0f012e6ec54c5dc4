"""`modes`: mode coverage of a bundled 2D mixture (PacGAN's protocol: modes hit, high-quality
samples, reverse KL), on 2,500 samples per task, each task against the modes of its own data
(all of them for data.tasks=single; a task's label list's otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtgan.data.toy2d import mixture_modes, mixture_sigma
from mtgan.errors import ConfigError
from mtgan.metrics.modes2d import mode_stats
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
    # Each task against its own modes (the labels of its real rows): a task on 4 of ring8's 8
    # modes that covers them evenly has reverse KL 0, not ln 2, and all 4 of its modes hit.
    modes, sigma = mixture_modes(ctx.mixture), mixture_sigma(ctx.mixture)
    stats = [
        mode_stats(ctx.samples(k)[:PACGAN_SAMPLES], modes[ctx.reference_rows(k)[1].unique()], sigma)
        for k in ctx.tasks
    ]
    out = {}
    for key in ("modes", "hq", "rkl"):
        out.update(per_task(key, [r[key] for r in stats]))
    return out
