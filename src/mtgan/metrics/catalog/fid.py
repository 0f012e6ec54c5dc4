"""`fid`: Fréchet distance per task, pooled over tasks (comparable with a single-task model),
and per class for conditional models."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from mtgan.metrics.catalog.modes import fits as is_mixture
from mtgan.metrics.fid import fid
from mtgan.metrics.registry import per_task, register_metric

if TYPE_CHECKING:
    from mtgan.metrics.evaluate import EvalContext


@register_metric(
    "fid",
    {"fid": "min", "fid_pooled": "min", "fid_per_class": "min"},
    place=20,
    in_tables=lambda config: not is_mixture(config),  # a mixture's table counts modes instead
    features=True,
)
def fid_metric(ctx: EvalContext) -> dict[str, float]:
    out = per_task("fid", [fid(ctx.real_features(k), ctx.fake_features(k)) for k in ctx.tasks])
    if len(ctx.tasks) > 1:
        # All tasks' samples against all real data: comparable with a single-task baseline.
        real = torch.cat([ctx.real_features(k) for k in ctx.tasks])
        fake = torch.cat([ctx.fake_features(k) for k in ctx.tasks])
        out["fid_pooled"] = fid(real, fake)
    else:  # one task is its own pool: the key exists for every model, so tables line up
        out["fid_pooled"] = out["fid"]
    if ctx.num_classes:
        # A conditional model's per-class FID (n samples of each class against that class's
        # real data) is what a one-task-per-class model's per-task FID measures.
        per_class = {}
        for k in ctx.tasks:
            labels = ctx.real_labels(k)
            where = f"task{k}/" if len(ctx.tasks) > 1 else ""
            for c in labels.unique().tolist():
                real = ctx.real_features(k)[labels == c]
                if len(real) < 2:  # no covariance from one image
                    warnings.warn(
                        f"fid_per_class: class {c} has {len(real)} real sample(s); left out",
                        stacklevel=2,
                    )
                    continue
                per_class[f"fid_per_class/{where}class{c}"] = fid(real, ctx.class_features(k, c))
        out.update(per_class)
        if per_class:
            out["fid_per_class"] = float(np.mean(list(per_class.values())))
    return out
