"""The metric registry: each metric is one record (name, function, which configs it fits, what
it needs of the data, the direction of each value it reports, whether the bench tables show it),
written in its own file under `mtgan.metrics.catalog`. Config validation, the fit checks before
training and evaluation (`check_fits`), `mtgan eval`'s defaults, the bench and `train.until` all
read it from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mtgan.errors import ConfigError

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.data import TaskSet
    from mtgan.metrics.evaluate import EvalContext

Direction = Literal["min", "max"]
MetricFn = Callable[["EvalContext"], dict[str, float]]
# what a metric needs that the data lacks, as "<what it needs>; <what the data is>", or None
Requires = Callable[["ExperimentConfig", "TaskSet"], "str | None"]


def _always(config: ExperimentConfig) -> bool:
    return True


def _anything(config: ExperimentConfig, data: TaskSet) -> str | None:
    return None


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
    requires: Requires = _anything  # checked against the data before training or evaluating
    features: bool = False  # computed on the feature space of eval.features


METRICS: dict[str, Metric] = {}


def register_metric(
    name: str,
    directions: dict[str, Direction | None],
    *,
    place: int,
    fits: Callable[[ExperimentConfig], bool] = _always,
    in_tables: Callable[[ExperimentConfig], bool] | bool = False,
    requires: Requires = _anything,
    features: bool = False,
) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register `fn` as the metric `name`."""
    tables = in_tables if callable(in_tables) else (lambda config, v=in_tables: v and fits(config))

    def wrap(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = Metric(name, fn, dict(directions), place, fits, tables, requires, features)
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


def about(config: ExperimentConfig, data: TaskSet) -> str:
    """What the data is, for a metric's `requires`: "data.path=… is 3×32×32 images with no
    labels in 1 task"."""
    where = f"data.path={config.data.path}" if config.data.path else f"data.name={config.data.name}"
    return f"{where} is {data.describe()}"


def check_fits(
    config: ExperimentConfig,
    data: TaskSet,
    names: list[str] | None = None,
    own_features: bool = False,
) -> None:
    """A ConfigError naming the metric(s) when one of `names` (default: eval.metrics, which
    holds train.until's metric) cannot run on `data`: what it needs and what the data is. Runs
    before training's first step and before an evaluation generates anything. With
    `own_features` (an extractor given in Python), the feature space is not checked."""
    from mtgan.metrics.extractors import choose_features  # it imports the config module

    names = list(config.eval.metrics if names is None else names)
    try:
        check_names(names)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    failed: dict[str, list[str]] = {}  # reason → the metrics it stops
    for name in names:
        reason = METRICS[name].requires(config, data)
        if reason is not None:
            failed.setdefault(reason, []).append(name)
    featured = [n for n in names if METRICS[n].features and not own_features]
    if featured:
        _, why = choose_features(config.eval, data)
        if why is not None:
            reason = f"a feature space for the images; {about(config, data)}: {why}"
            failed.setdefault(reason, []).extend(featured)
    for reason, which in failed.items():
        listed = ", ".join(f"`{n}`" for n in which)
        raise ConfigError(f"eval.metrics: {listed} need{'s' if len(which) == 1 else ''} {reason}")


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
