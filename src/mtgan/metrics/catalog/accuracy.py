"""`accuracy`: how often the bundled digit classifier reads a sample as a class it was made
for (its task's classes, or its label for a conditional model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mtgan.errors import ConfigError
from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.features import digit_classifier
from mtgan.metrics.registry import register_metric

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.metrics.evaluate import EvalContext


def fits(config: ExperimentConfig) -> bool:
    classes = config.data.tasks != "single" or config.model.conditional
    return classes and config.data.path is None and not is_mixture(config)


@register_metric("accuracy", {"accuracy": "max"}, place=40, fits=fits, in_tables=True)
def accuracy(ctx: EvalContext) -> dict[str, float]:
    """Fraction of task k's samples that the digit classifier assigns to the class they were
    generated for (conditional models, AC-GAN), or else to one of task k's classes (only for
    tasks that are a proper subset of the classes, in their original domain)."""
    if tuple(ctx.data.shape) != (1, 28, 28):
        raise ConfigError("eval.metrics: `accuracy` needs 1×28×28 digit images")
    classifier = digit_classifier()  # samples live on the CPU; so does the classifier
    present = set(ctx.data.labels.unique().tolist())
    values = {}
    for k in ctx.tasks:
        classes = set(ctx.data.task_labels(k).unique().tolist())
        conditional = ctx.num_classes > 0
        if ctx.data.domains[k] != "identity" or -1 in classes:
            continue
        if not conditional and classes == present:
            continue
        predicted = ctx.digit_logits(k, classifier).argmax(1)
        if conditional:
            values[k] = (predicted == ctx.sample_labels(k)).float().mean().item()
        else:
            wanted = torch.tensor(sorted(classes))
            values[k] = torch.isin(predicted, wanted).float().mean().item()
    if not values:
        raise ConfigError(
            "eval.metrics: `accuracy` needs tasks made of classes (data.tasks) or a conditional "
            "model (model.conditional)"
        )
    out = {f"accuracy/task{k}": v for k, v in values.items()}
    out["accuracy"] = float(np.mean(list(values.values())))
    return out
