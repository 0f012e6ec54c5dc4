"""`cas`: classification accuracy score (Ravuri & Vinyals, 2019). A classifier trained on the
generated images of the tasks that stand for one class (or a conditional model's samples, by
their label) is tested on the held-out real images of those tasks (`data.heldout`): how well
the samples teach the classes, variety included. `cas/task<k>` is its recall on task k's
held-out rows; `cas` their mean. `cas_real` is the same recipe trained on real training rows
instead (as many as generated images, fewer if the task has fewer): the ceiling to read `cas`
against. Recipe and sizes: `mtgan.metrics.cas` (CAS_IMAGES generated images in all)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mtgan.errors import ConfigError
from mtgan.metrics.cas import CAS_IMAGES, predict, real_cas_classifier, train_cas_classifier
from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.data_classifier import MIN_SIDE
from mtgan.metrics.registry import about, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

CLASS_TASKS = (
    "tasks of one class each (data.tasks=classes) or a conditional model (model.conditional)"
)
HELDOUT = "real images held out from training to test on (e.g. data.heldout=0.1)"


def task_classes(data: TaskSet, conditional: bool) -> dict[int, list[int]]:
    """The tasks CAS learns from, with the classes their samples stand for: every labelled
    task in its original domain for a conditional model (the labels it is asked for), else
    those of a single class; empty when they hold fewer than two classes in all."""
    out = {}
    for k in range(data.num_tasks):
        classes = sorted(data.task_labels(k).unique().tolist())
        if data.domains[k] != "identity" or classes[0] < 0:
            continue
        if conditional or len(classes) == 1:
            out[k] = classes
    return out if len({c for cs in out.values() for c in cs}) >= 2 else {}


def fits(config: ExperimentConfig) -> bool:
    """By default in `mtgan eval` for the bundled data with a held-out split and class tasks."""
    data = config.data
    if data.heldout <= 0 or data.path is not None or is_mixture(config):
        return False
    tasks = data.tasks
    one_class = tasks == "classes" or (
        isinstance(tasks, list)
        and all(len(t) == 1 for t in tasks)
        and len({t[0] for t in tasks}) >= 2
    )
    return "identity" in data.domains and (config.model.conditional or one_class)


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    shape = data.shape
    if data.kind != "image" or len(shape) != 3 or shape[0] not in (1, 3):
        return f"images with 1 or 3 channels; {about(config, data)}"
    if min(shape[1:]) < MIN_SIDE:
        return f"images of at least {MIN_SIDE}×{MIN_SIDE} px; {about(config, data)}"
    if not task_classes(data, config.model.conditional):
        return f"two classes or more in {CLASS_TASKS}; {about(config, data)}"
    if data.heldout is None:
        return f"{HELDOUT}; {about(config, data)} and data.heldout=0 holds none out"
    return None


def _stack(parts: list[tuple[Tensor, Tensor]], index: Tensor) -> tuple[Tensor, Tensor]:
    """Images and labels of every task in one set, labels as the classifier's indices."""
    return torch.cat([x for x, _ in parts]), index[torch.cat([y for _, y in parts])]


@register_metric("cas", {"cas": "max", "cas_real": None}, place=45, fits=fits, requires=requires)
def cas_metric(ctx: EvalContext) -> dict[str, float]:
    conditional = ctx.num_classes > 0
    tasks = task_classes(ctx.data, conditional)
    held = ctx.data.heldout
    if not tasks or held is None:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `cas` needs {CLASS_TASKS} and {HELDOUT}")
    classes = sorted({c for cs in tasks.values() for c in cs})
    index = torch.full((max(classes) + 1,), -1, dtype=torch.long)
    index[classes] = torch.arange(len(classes))  # data classes → the classifier's 0..m−1
    share = math.ceil(CAS_IMAGES / len(tasks))
    gen = torch.Generator().manual_seed(ctx.seed + 7)
    fake: list[tuple[Tensor, Tensor]] = []
    real: list[tuple[Tensor, Tensor]] = []
    for k, wanted in tasks.items():
        x = ctx.samples(k)
        y = ctx.sample_labels(k) if conditional else torch.full((len(x),), wanted[0])
        keep = torch.isin(y, torch.tensor(wanted))  # a task's generator knows its classes only
        fake.append((x[keep][:share], y[keep][:share]))
        rows, labels = ctx.data.task(k).cpu(), ctx.data.task_labels(k).cpu()
        pick = torch.randperm(len(rows), generator=gen)[: len(fake[-1][1])]
        real.append((ctx.data.to_display(rows[pick]), labels[pick]))
    m = len(classes)
    models = {
        "cas": train_cas_classifier(*_stack(fake, index), m, ctx.seed),
        "cas_real": real_cas_classifier(*_stack(real, index), m, ctx.seed),
    }
    out: dict[str, float] = {}
    for key, model in models.items():
        recall = []
        for k in tasks:
            truth = index[held.task_labels(k).cpu()]
            seen = predict(model, held.to_display(held.task(k).cpu()))
            recall.append((seen == truth).float().mean().item())
        out.update({f"{key}/task{k}": v for k, v in zip(tasks, recall)})
        out[key] = sum(recall) / len(recall)
    return out
