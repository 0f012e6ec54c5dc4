"""Curves over training steps, one colour per preset: every seed as a thin line, the mean over
seeds bold with a ±1 std band. Figures are rendered to PNG bytes for embedding in a report.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np

from mtgan.report.history import RunResult, is_number

Series = Callable[[RunResult], list[tuple[int, float]]]
LOSS_KEYS = ("d/loss", "g/loss")
GRAD_KEYS = ("d/grad_norm", "g/grad_norm")


def eval_series(key: str) -> Series:
    return lambda r: r.curves.get(key, [])


def train_series(key: str, smooth: int = 5) -> Series:
    """A training record's value over steps, as a running mean over `smooth` records: losses
    logged every few dozen steps are too noisy to compare by eye otherwise."""

    def series(r: RunResult) -> list[tuple[int, float]]:
        points = [(int(x["step"]), float(x[key])) for x in r.train if is_number(x.get(key))]
        if len(points) < smooth or smooth <= 1:
            return points
        values = np.array([v for _, v in points])
        kernel = np.ones(smooth) / smooth
        smoothed = np.convolve(values, kernel, mode="valid")
        return [(s, float(v)) for (s, _), v in zip(points[smooth - 1 :], smoothed)]

    return series


def _band(runs: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over runs at the steps every run has."""
    common = sorted(set.intersection(*(set(s for s, _ in run) for run in runs)))
    table = np.array([[dict(run)[s] for s in common] for run in runs], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.array(common), np.nanmean(table, axis=0), np.nanstd(table, axis=0)


def plot_panels(
    groups: dict[str, list[RunResult]],
    panels: Sequence[tuple[str, Series]],
    log_scale: bool = False,
    columns: int = 3,
) -> bytes | None:
    """One subplot per (title, series); None when no panel has data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(t, f) for t, f in panels if any(f(r) for rs in groups.values() for r in rs)]
    if not panels:
        return None
    cols = min(columns, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.3 * rows), dpi=100)
    FigureCanvasAgg(fig)
    for i, (title, series) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, (label, results) in enumerate(groups.items()):
            color = f"C{j % 10}"
            runs = [series(r) for r in results]
            runs = [run for run in runs if run]
            for run in runs:
                steps, values = zip(*run)
                ax.plot(steps, values, color=color, alpha=0.3, linewidth=0.8)
            if len(runs) > 1:
                steps, mean, std = _band(runs)
                if len(steps):
                    ax.plot(steps, mean, color=color, linewidth=2, label=label)
                    ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.15)
            elif runs:
                ax.lines[-1].set(alpha=1.0, linewidth=1.6, label=label)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if log_scale:
            ax.set_yscale("log")
        if i == 0 and len(groups) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
