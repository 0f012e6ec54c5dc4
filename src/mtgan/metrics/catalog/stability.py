"""`stability`: training health from metrics.jsonl (loss and gradient-norm noise at the end,
non-finite records, gradient spikes): the source text's "more stable" claim as numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtgan.metrics.registry import register_metric
from mtgan.metrics.stability import TRACKED, stability_stats

if TYPE_CHECKING:
    from mtgan.metrics.evaluate import EvalContext

DIRECTIONS = {
    **{f"{key}_mean": None for key in TRACKED},
    **{f"{key}_std": "min" for key in TRACKED},
    "nonfinite": "min",
    "diverged": "min",
}


@register_metric("stability", DIRECTIONS, place=70, in_tables=True)
def stability(ctx: EvalContext) -> dict[str, float]:
    return stability_stats(ctx.records, window=ctx.config.stability_window)
