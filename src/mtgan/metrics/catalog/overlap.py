"""`overlap`: how a task's generator fills the modes its task shares with other tasks, on a
bundled 2D mixture split into overlapping label lists (data.tasks=[[0,1,2,3],[2,3,4,5]]).

Per task k: the share of its high-quality samples (within 3σ of their nearest mode, as `modes`
assigns them) whose nearest mode is one k shares with another task, divided by the share those
modes hold in k's reference data (2/4 above, each task's labels being uniform over its modes).
1: the overlap filled as in the data; < 1 under-filled (TAC-GAN's finding for an auxiliary
classifier, Gong et al. 2019); > 1 over-filled; nan when no sample is high quality.

`overlap` has no better side (the question is which side of 1 a run lands on), so its direction
is None; `overlap_gap` = |overlap − 1| per task (mean over tasks) is the one to rank runs by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mtgan.data.toy2d import mixture_modes, mixture_sigma
from mtgan.errors import ConfigError
from mtgan.metrics.modes2d import hq_share
from mtgan.metrics.registry import about, per_task, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

NEEDS = (
    "a bundled 2D mixture (data.name=ring8|grid25) split into overlapping label lists, every "
    "task sharing a mode with another (e.g. data.tasks=[[0,1,2,3],[2,3,4,5]])"
)


def shared_modes(labels: list[set[int]]) -> list[set[int]]:
    """For each task's set of labels (modes), the ones some other task has too."""
    return [
        own & set().union(*(other for j, other in enumerate(labels) if j != k))
        for k, own in enumerate(labels)
    ]


def _reason(config: ExperimentConfig) -> str | None:
    """Why the config's data has no overlap to measure, or None."""
    from mtgan.metrics.evaluate import mixture_name

    tasks = config.data.tasks
    if mixture_name(config) is None:
        return "is not a bundled 2D mixture"
    if not isinstance(tasks, list):
        return f"has data.tasks={tasks}, not explicit label lists"
    alone = [k for k, s in enumerate(shared_modes([set(t) for t in tasks])) if not s]
    if alone:
        return f"has task(s) {alone} of data.tasks={tasks} sharing no mode with another task"
    return None


def fits(config: ExperimentConfig) -> bool:
    return _reason(config) is None


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    reason = _reason(config)
    return None if reason is None else f"{NEEDS}; {about(config, data)}, and it {reason}"


def overlap_values(
    samples: list[torch.Tensor], labels: list[torch.Tensor], modes: torch.Tensor, sigma: float
) -> list[float]:
    """Per task: its samples' (N, 2) high-quality share in its shared modes over the share of
    its reference labels (M,) in them; `modes` (M, 2) are the mixture's centres."""
    shared = shared_modes([set(y.tolist()) for y in labels])
    values = []
    for k, (x, y) in enumerate(zip(samples, labels)):
        if not shared[k]:
            raise ConfigError(f"eval.metrics: `overlap` needs {NEEDS}; task {k} shares none")
        chosen = sorted(shared[k])
        expected = float(torch.isin(y, torch.tensor(chosen, dtype=y.dtype)).double().mean())
        values.append(hq_share(x, modes, sigma, chosen) / expected)
    return values


@register_metric(
    "overlap",
    {"overlap": None, "overlap_gap": "min"},
    place=12,
    fits=fits,
    in_tables=True,
    requires=requires,
)
def overlap(ctx: EvalContext) -> dict[str, float]:
    if ctx.mixture is None:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `overlap` needs {NEEDS}")
    values = overlap_values(
        [ctx.samples(k) for k in ctx.tasks],
        [ctx.reference_rows(k)[1] for k in ctx.tasks],
        mixture_modes(ctx.mixture),
        mixture_sigma(ctx.mixture),
    )
    return {**per_task("overlap", values), **per_task("overlap_gap", [abs(v - 1) for v in values])}
