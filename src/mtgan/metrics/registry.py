"""The metric registry: each metric is one record (name, function, which configs it fits, the
direction of each value it reports, whether the bench tables show it), written in its own file
under `mtgan.metrics.catalog`. Config validation, `mtgan eval`'s defaults, the bench and
`train.until` all read it from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.metrics.evaluate import EvalContext

Direction = Literal["min", "max"]
MetricFn = Callable[["EvalContext"], dict[str, float]]


def _always(config: ExperimentConfig) -> bool:
    return True


@dataclass(frozen=True)
class Metric:
    """One metric. `fn(ctx)` returns flat values: a summary key per entry of `directions`
    (`fid`), and per-task or per-pair keys below it (`fid/task3`), which share its direction."""

    name: str
    fn: MetricFn
    directions: dict[str, Direction | None] = field(default_factory=dict)
    place: int = 0  # where it comes among the defaults and the bench columns (ascending)
    fits: Callable[[ExperimentConfig], bool] = _always  # by default in `mtgan eval`
    in_tables: Callable[[ExperimentConfig], bool] = lambda config: False  # a bench column


METRICS: dict[str, Metric] = {}


def register_metric(
    name: str,
    directions: dict[str, Direction | None],
    *,
    place: int,
    fits: Callable[[ExperimentConfig], bool] = _always,
    in_tables: Callable[[ExperimentConfig], bool] | bool = False,
) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register `fn` as the metric `name`."""
    tables = in_tables if callable(in_tables) else (lambda config, v=in_tables: v and fits(config))

    def wrap(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = Metric(name, fn, dict(directions), place, fits, tables)
        return fn

    return wrap


def _ordered() -> list[Metric]:
    return sorted(METRICS.values(), key=lambda m: m.place)


def metric_names() -> list[str]:
    return [m.name for m in _ordered()]


def check_names(names: list[str]) -> list[str]:
    """`names` if every one is a registered metric, else a ValueError naming the allowed ones."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(metric_names())}"
        )
    return names


def default_metrics(config: ExperimentConfig) -> list[str]:
    """What `mtgan eval` computes when no metric is named: every metric that fits the config."""
    return [m.name for m in _ordered() if m.fits(config)]


def table_metrics(config: ExperimentConfig) -> list[str]:
    """What a bench reports for a config when none are named: the columns that fit it."""
    return [m.name for m in _ordered() if m.fits(config) and m.in_tables(config)]


def direction(key: str) -> Direction | None:
    """Whether smaller (`min`) or larger (`max`) values of a reported key are better; None for
    values with no better side (a mean, a standard deviation of an estimate)."""
    for metric in METRICS.values():
        if key in metric.directions:
            return metric.directions[key]
    head = key.split("/", 1)[0]
    if head != key:
        return direction(head)
    return None


def lower_is_better(key: str) -> bool:
    return direction(key) == "min"


def metric_of(key: str) -> str | None:
    """The metric that reports `key` (`fid/task3` → `fid`), None if no registered one does."""
    for candidate in (key, key.split("/", 1)[0]):
        for metric in METRICS.values():
            if candidate in metric.directions:
                return metric.name
    return None


def per_task(name: str, values: list[float]) -> dict[str, float]:
    """`{name/task0: v0, ..., name: mean}`: how every per-task metric reports."""
    import numpy as np

    out = {f"{name}/task{k}": float(v) for k, v in enumerate(values)}
    out[name] = float(np.mean(values))
    return out
