"""`accuracy`: how often a classifier of the data's classes reads a sample as a class it was
made for (its task's classes, or its label for a conditional model). The classifier is the
bundled digit classifier for 1×28×28 digits, else one trained once on the run's own labelled
images (`mtgan.metrics.data_classifier`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mtgan.errors import ConfigError
from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.data_classifier import problem
from mtgan.metrics.registry import about, register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

CLASS_TASKS = (
    "tasks made of classes (data.tasks=classes) or a conditional model (model.conditional)"
)


def fits(config: ExperimentConfig) -> bool:
    classes = config.data.tasks != "single" or config.model.conditional
    return classes and config.data.path is None and not is_mixture(config)


def scored_tasks(data: TaskSet, conditional: bool) -> list[int]:
    """The tasks accuracy scores: those in their original domain with labelled rows, and for an
    unconditional model only those whose classes are a proper subset of the data's."""
    present = set(data.labels.unique().tolist())
    out = []
    for k in range(data.num_tasks):
        classes = set(data.task_labels(k).unique().tolist())
        if data.domains[k] != "identity" or -1 in classes:
            continue
        if conditional or classes != present:
            out.append(k)
    return out


def requires(config: ExperimentConfig, data: TaskSet) -> str | None:
    if data.kind != "image" or data.num_classes < 2:
        return f"labelled images of two classes or more and {CLASS_TASKS}; {about(config, data)}"
    if not scored_tasks(data, config.model.conditional):
        return f"{CLASS_TASKS}; {about(config, data)}"
    if tuple(data.shape) == (1, 28, 28) and config.eval.features != "classifier":
        return None  # the digit classifier
    why = problem(data)
    return None if why is None else f"a classifier of its images; {about(config, data)}: {why}"


@register_metric(
    "accuracy", {"accuracy": "max"}, place=40, fits=fits, in_tables=True, requires=requires
)
def accuracy(ctx: EvalContext) -> dict[str, float]:
    """Fraction of task k's samples that the classifier assigns to the class they were
    generated for (conditional models, AC-GAN), or else to one of task k's classes (only for
    tasks that are a proper subset of the classes, in their original domain)."""
    conditional = ctx.num_classes > 0
    tasks = scored_tasks(ctx.data, conditional)
    if not tasks:  # checked before training; a guard for contexts built by hand
        raise ConfigError(f"eval.metrics: `accuracy` needs {CLASS_TASKS}")
    classifier = ctx.classifier()
    values = {}
    for k in tasks:
        predicted = ctx.class_logits(k, classifier).argmax(1)
        if conditional:
            values[k] = (predicted == ctx.sample_labels(k)).float().mean().item()
        else:
            wanted = torch.tensor(sorted(ctx.data.task_labels(k).unique().tolist()))
            values[k] = torch.isin(predicted, wanted).float().mean().item()
    out = {f"accuracy/task{k}": v for k, v in values.items()}
    out["accuracy"] = float(np.mean(list(values.values())))
    return out
