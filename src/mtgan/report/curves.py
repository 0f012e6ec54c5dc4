"""Curves over training steps (and a metric against a swept setting), one colour per preset:
every seed as a thin line, the mean over seeds bold with a ±1 std band. `plot_panels` returns
the matplotlib Figure, so a test can read the plotted data back; `to_png` renders it for
embedding in a report.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mtgan.metrics.registry import direction
from mtgan.report.history import RunResult, is_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Series = Callable[[RunResult], list[tuple[int, float]]]
Panel = tuple[str, Series]  # (title, series); titles are the logged keys
LOSS_KEYS = ("d/loss", "g/loss")
GRAD_KEYS = ("d/grad_norm", "g/grad_norm")
AUGMENT_KEYS = ("augment/p", "augment/rt")  # loss.augment_target: ADA's p and its signal
SMOOTH = 5  # logged records per running mean
SMOOTH_MIN = 3  # smooth only curves of at least SMOOTH_MIN × SMOOTH records: shorter ones vanish
FEW_POINTS = 15  # curves with fewer points get a marker at each: one point draws no line
LOG_SPAN = 10.0  # a distance curve spanning this factor or more goes on a log axis


def eval_series(key: str) -> Series:
    return lambda r: r.curves.get(key, [])


def train_series(key: str, smooth: int = SMOOTH) -> Series:
    """A training record's value over steps, as a running mean over `smooth` records: losses
    logged every few dozen steps are too noisy to compare by eye otherwise. Runs that logged
    fewer than SMOOTH_MIN × `smooth` records are returned as logged: a running mean would leave
    next to nothing of them."""

    def series(r: RunResult) -> list[tuple[int, float]]:
        points = [(int(x["step"]), float(x[key])) for x in r.train if is_number(x.get(key))]
        if len(points) < SMOOTH_MIN * smooth or smooth <= 1:
            return points
        values = np.array([v for _, v in points])
        kernel = np.ones(smooth) / smooth
        smoothed = np.convolve(values, kernel, mode="valid")
        return [(s, float(v)) for (s, _), v in zip(points[smooth - 1 :], smoothed)]

    return series


def log_axis(key: str, values: Sequence[float]) -> bool:
    """Whether a panel of `key` reads better on a log y axis: a distance (the registry says
    smaller is better: FID, KID, reverse KL) whose finite values are all positive and span
    LOG_SPAN× or more, where the late differences that decide a comparison are small next to
    the early values. Scores such as accuracy stay linear."""
    finite = [v for v in values if math.isfinite(v)]
    if direction(key) != "min" or not finite or min(finite) <= 0:
        return False
    return max(finite) / min(finite) >= LOG_SPAN


def _values(groups: dict[str, list[RunResult]], series: Series) -> list[float]:
    return [v for rs in groups.values() for r in rs for _, v in series(r)]


def fold_constant(
    groups: dict[str, list[RunResult]], panels: Sequence[Panel], any_value: bool = True
) -> tuple[list[Panel], list[str]]:
    """The panels worth drawing, and `title = value` for those whose every value in every run
    is the same (non-finite step counts at 0, a constant learning rate): a flat line says less
    than one line of text. `any_value=False` folds only zeros (metrics: a flat curve there is
    a finding to see beside the others)."""
    drawn, zero = [], []
    for title, series in panels:
        values = _values(groups, series)
        if values and all(v == values[0] for v in values) and (any_value or values[0] == 0):
            zero.append(f"{title} = {values[0]:g}")
        else:
            drawn.append((title, series))
    return drawn, zero


def _band(runs: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over runs at the steps every run has."""
    common = sorted(set.intersection(*(set(s for s, _ in run) for run in runs)))
    table = np.array([[dict(run)[s] for s in common] for run in runs], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.array(common), np.nanmean(table, axis=0), np.nanstd(table, axis=0)


def _marker(n: int) -> dict[str, object]:
    return {"marker": "o", "markersize": 3.5} if n < FEW_POINTS else {}


def _log_y(ax: Axes) -> None:
    """A log y axis labelled in plain numbers (0.04, 60, 1000, not 4e−02 or 10^3), with labels
    between the decades where it spans two or fewer: FID 40 … 60 … 100 must be read off it."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos: int | None) -> str:
        lo, hi = ax.get_ylim()
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        every = {1.0, 2.0, 3.0, 5.0} if hi / lo <= 100 else {1.0}
        return f"{value:g}" if hi / lo <= 10 or mantissa in every else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label))
    ax.grid(alpha=0.15, which="minor")


def plot_panels(
    groups: dict[str, list[RunResult]],
    panels: Sequence[Panel],
    log_scale: bool | None = None,
    columns: int = 3,
) -> Figure | None:
    """One subplot per (title, series); None when no panel has data. `log_scale` None lets
    `log_axis` decide per panel."""
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
                ax.plot(steps, values, color=color, alpha=0.3, linewidth=0.8, **_marker(len(run)))
            if len(runs) > 1:
                steps, mean, std = _band(runs)
                if len(steps):
                    ax.plot(steps, mean, color=color, linewidth=2, label=label,
                            **_marker(len(steps)))  # fmt: skip
                    ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.15)
            elif runs:
                ax.lines[-1].set(alpha=1.0, linewidth=1.6, label=label)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        log = log_axis(title, _values(groups, series)) if log_scale is None else log_scale
        if log:
            _log_y(ax)
        if i == 0 and len(groups) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_sweep(
    key: str,
    axis: str,
    values: Sequence[str],
    xs: Sequence[float] | None,
    lines: dict[str, list[list[float]]],
    log_x: bool = False,
) -> Figure:
    """`key`'s final value against a swept setting `axis`: per preset (`lines`: preset → each
    value's seed values) the mean over seeds with a ±1 std band and a dot per seed. `xs` the
    values as numbers, or None for evenly spaced labelled positions; a log x axis with
    `log_x`, a log y axis where `log_axis` says so."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    x = np.array(xs if xs is not None else range(len(values)), dtype=np.float64)
    fig = Figure(figsize=(5.2, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for j, (label, seeds) in enumerate(lines.items()):
        color = f"C{j % 10}"
        stats = [_finite_mean_std(s) for s in seeds]
        mean = np.array([m for m, _ in stats])
        std = np.array([d for _, d in stats])
        ax.plot(x, mean, color=color, linewidth=2, marker="o", markersize=4, label=label)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15)
        dots = [(xi, v) for xi, s in zip(x, seeds) for v in s if math.isfinite(v)]
        if dots:
            ax.scatter(*zip(*dots), color=color, s=8, alpha=0.4, linewidths=0)
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, [f"{v:g}" for v in xs] if xs is not None else list(values))
    ax.set_title(key, fontsize="medium")
    ax.set_xlabel(axis)
    ax.grid(alpha=0.3)
    if log_axis(key, [v for seeds in lines.values() for s in seeds for v in s]):
        _log_y(ax)
    if len(lines) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _finite_mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    # the sample std, as the bench table's mean ± std
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
