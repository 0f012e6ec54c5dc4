"""From finished run directories to a bench table: mean ± std over seeds per metric (FID with
the size of its real set), Δm % against a baseline preset, steps and training seconds to reach
a target value, and training-stability statistics.

Everything is read from what a run writes anyway (eval.json, metrics.jsonl), so a table can be
rebuilt at any time from the directories alone.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mtgan.metrics.registry import direction, lower_is_better
from mtgan.report import html
from mtgan.report.history import STABILITY_COLUMNS, RunResult, format_number, is_number


def better(key: str, a: float, b: float) -> bool:
    """a at least as good as b for metric `key`."""
    return a <= b if lower_is_better(key) else a >= b


def reached(result: RunResult, key: str, target: float) -> tuple[int, float] | None:
    """(step, training seconds) of the first evaluation at which `key` was at least as good as
    `target`, or None if it never was."""
    for step, value in result.curves.get(key, []):
        if math.isfinite(value) and better(key, value, target):
            return step, result.seconds_at.get(step, math.nan)
    return None


def _stats(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


@dataclass
class Row:
    """One preset's line of the table."""

    label: str
    seeds: list[int]
    steps: int
    metrics: dict[str, list[float]] = field(default_factory=dict)  # key → value per seed
    reach: dict[str, list[tuple[int, float] | None]] = field(default_factory=dict)
    stability: dict[str, list[float]] = field(default_factory=dict)
    train_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    stopped: list[tuple[str, int]] = field(default_factory=list)  # (reason, step) per seed
    reference: dict[str, list[int]] = field(default_factory=dict)  # FID key → real images
    splits: list[str] = field(default_factory=list)  # eval.reference of each seed's evaluation
    delta: list[DeltaM] = field(default_factory=list)  # per seed, against the baseline


_TASK_KEY = re.compile(r"^([^/]+)/task(\d+)$")  # a per-task value: fid/task3


@dataclass
class DeltaM:
    """One evaluation's Δm % against the baseline: the mean relative gain over `count` per-task
    values (nan when none lines up); `pooled`: metric families compared against the baseline's
    pooled value; `unmatched`: families whose tasks did not line up with the baseline's."""

    value: float
    count: int
    pooled: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def _per_task(values: dict[str, float]) -> dict[str, dict[int, float]]:
    """family → {task: value} of the per-task keys with a better side (`direction`)."""
    out: dict[str, dict[int, float]] = {}
    for key, value in values.items():
        match = _TASK_KEY.match(key)
        if match and direction(key) is not None and is_number(value):
            out.setdefault(match[1], {})[int(match[2])] = float(value)
    return out


def delta_m(values: dict[str, float], baseline: dict[str, float]) -> DeltaM:
    """Δm % (Maninis et al. 2019; Vandenhende et al. 2021) of `values` against `baseline` (both
    eval.json-like): the mean over per-task values M (`fid/task3`, `accuracy/task2`, ...) of
    s·(M − M_b)/|M_b| × 100, s = +1 where larger is better and −1 where smaller is better, so
    positive is better than the baseline. Families whose tasks do not line up are compared
    against the baseline's pooled value (`fid`) when the baseline has one task, else left out;
    so are values with no better side, and baseline values of 0 or not finite."""
    mine, base = _per_task(values), _per_task(baseline)
    gains: list[float] = []
    pooled, unmatched = [], []
    for family, tasks in mine.items():
        if family in base and set(base[family]) == set(tasks):
            pairs = [(tasks[t], base[family][t]) for t in tasks]
        elif len(base.get(family, {})) == 1 and is_number(baseline.get(family)):
            pairs = [(m, float(baseline[family])) for m in tasks.values()]
            pooled.append(family)
        else:
            unmatched.append(family)
            continue
        sign = 1.0 if direction(family) == "max" else -1.0
        for m, b in pairs:
            if math.isfinite(m) and math.isfinite(b) and b != 0:
                gains.append(sign * (m - b) / abs(b) * 100)
    value = statistics.fmean(gains) if gains else math.nan
    return DeltaM(value, len(gains), pooled, unmatched)


def seed_means(results: list[RunResult]) -> dict[str, float]:
    """Each numeric final value's mean over the seeds that have it (finite values only)."""
    values: dict[str, list[float]] = {}
    for r in results:
        for key, value in r.final.items():
            if is_number(value) and math.isfinite(value):
                values.setdefault(key, []).append(float(value))
    return {key: statistics.fmean(v) for key, v in values.items()}


def default_targets(groups: dict[str, list[RunResult]], keys: list[str]) -> dict[str, float]:
    """For the headline metric: the final mean of the preset that did worst, i.e. the level
    every preset reached on average, so "time to target" compares how fast each got there."""
    if not keys:
        return {}
    key = keys[0]
    means = [_stats([r.final.get(key, math.nan) for r in g])[0] for g in groups.values()]
    means = [m for m in means if math.isfinite(m)]
    if not means:
        return {}
    worst = max(means) if lower_is_better(key) else min(means)
    return {key: worst}


def summarise(
    groups: dict[str, list[RunResult]],
    keys: list[str],
    targets: dict[str, float],
    baseline: str | None = None,
) -> list[Row]:
    """One row per preset; with `baseline` (a label of `groups`), each seed's Δm % against the
    baseline's seed means."""
    base = seed_means(groups[baseline]) if baseline in groups else None
    rows = []
    for label, results in groups.items():
        row = Row(label, [r.seed for r in results], max(r.steps for r in results))
        for key in keys:
            row.metrics[key] = [float(r.final.get(key, math.nan)) for r in results]
            sizes = [n for r in results for n in r.reference_sizes(key)]
            if sizes:
                row.reference[key] = sizes
        row.splits = list(dict.fromkeys(str(r.protocol["reference"]) for r in results
                                        if "reference" in r.protocol))  # fmt: skip
        if baseline is not None:
            row.delta = [
                delta_m(r.final, base) if base is not None else DeltaM(math.nan, 0) for r in results
            ]
        for key, target in targets.items():
            row.reach[key] = [reached(r, key, target) for r in results]
        for key in STABILITY_COLUMNS:
            row.stability[key] = [float(r.final.get(key, math.nan)) for r in results]
        row.train_s = [r.train_seconds for r in results]
        row.wall_s = [r.wall_s for r in results]
        row.stopped = [(r.stop_reason, r.steps) for r in results]
        rows.append(row)
    return rows


def _mean_std(values: list[float]) -> str:
    mean, std = _stats(values)
    if not math.isfinite(mean):
        return "—"
    spread = f"{std:,.0f}" if std >= 100 else f"{std:.2g}"
    return f"{format_number(mean)} ± {spread}"


def _reach_cell(hits: list[tuple[int, float] | None], which: int) -> str:
    got = [h[which] for h in hits if h is not None]
    if not got:
        return f"never (0/{len(hits)})"
    return f"{_mean_std([float(g) for g in got])} ({len(got)}/{len(hits)})"


def target_label(key: str, target: float) -> str:
    return f"{key} {'≤' if lower_is_better(key) else '≥'} {format_number(target)}"


def _metric_cell(row: Row, key: str) -> str:
    """mean ± std, and for FID the real images it compared against: "45 ± 7.1 (N=500, train)"."""
    cell = _mean_std(row.metrics[key])
    sizes = row.reference.get(key)
    if not sizes or cell == "—":
        return cell
    lo, hi = min(sizes), max(sizes)
    n = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
    return f"{cell} (N={n}{', ' + '/'.join(row.splits) if row.splits else ''})"


def delta_label(baseline: str) -> str:
    return f"Δm % vs {baseline}"


def _delta_cell(row: Row) -> str:
    # a percentage to one decimal: the baseline's own row is 0 ± its spread, not 5e-16
    mean, std = _stats([d.value for d in row.delta])
    if not math.isfinite(mean):
        return "—"
    mean = 0.0 if round(mean, 1) == 0 else mean
    return f"{'+' if mean > 0 else ''}{mean:.1f} ± {std:.1f}"


def delta_notes(rows: list[Row], baseline: str) -> list[str]:
    """How each preset's Δm was formed where it is not a plain per-task comparison."""
    notes = []
    for row in rows:
        pooled = sorted({f for d in row.delta for f in d.pooled})
        unmatched = sorted({f for d in row.delta for f in d.unmatched})
        if not any(d.count for d in row.delta):
            why = f" (tasks of {', '.join(unmatched)} differ)" if unmatched else ""
            notes.append(
                f"{row.label}: no per-task value lines up with {baseline}'s{why}; Δm is —."
            )
            continue
        if pooled:
            notes.append(
                f"{row.label}: {baseline} has one task, so {row.label}'s per-task "
                f"{', '.join(pooled)} values are compared against {baseline}'s pooled value."
            )
        if unmatched:
            notes.append(
                f"{row.label}: {', '.join(unmatched)} left out of Δm (its tasks do not line up "
                f"with {baseline}'s)."
            )
    return notes


def table_columns(
    keys: list[str], targets: dict[str, float], baseline: str | None = None
) -> list[str]:
    cols = ["preset", "seeds", "steps", *keys]
    if baseline is not None:
        cols.append(delta_label(baseline))
    for key, target in targets.items():
        cols += [f"steps to {target_label(key, target)}", f"train s to {target_label(key, target)}"]
    return cols + list(STABILITY_COLUMNS.values()) + ["stopped", "train s/run", "wall s/run"]


def table_cells(
    row: Row, keys: list[str], targets: dict[str, float], baseline: str | None = None
) -> list[str]:
    """One row of the Markdown/HTML table (mean ± std over seeds; stability counts summed)."""
    cells = [row.label, str(len(row.seeds)), str(row.steps)]
    cells += [_metric_cell(row, k) for k in keys]
    if baseline is not None:
        cells.append(_delta_cell(row))
    for key in targets:
        cells += [_reach_cell(row.reach[key], 0), _reach_cell(row.reach[key], 1)]
    for key, values in row.stability.items():
        if key in ("diverged", "nonfinite"):
            finite = [v for v in values if math.isfinite(v)]
            cells.append(str(int(sum(finite))) if finite else "—")
        else:
            cells.append(_mean_std(values))
    cells += [stopped_cell(row.stopped), _mean_std(row.train_s), _mean_std(row.wall_s)]
    return cells


def stopped_cell(stopped: list[tuple[str, int]]) -> str:
    """`train.steps`, or how many seeds converged (train.until) and at which step: "faster to
    converge" as a column (the training seconds to that point are the train s/run column)."""
    early = [(reason, step) for reason, step in stopped if reason != "steps"]
    if not early:
        return "train.steps"
    parts = []
    for reason in ("converged", "diverged"):
        steps = [float(step) for r, step in early if r == reason]
        if steps:
            parts.append(f"{reason} {len(steps)}/{len(stopped)} at step {_mean_std(steps)}")
    return "; ".join(parts)


def markdown_table(
    rows: list[Row], keys: list[str], targets: dict[str, float], baseline: str | None = None
) -> str:
    cols = table_columns(keys, targets, baseline)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(table_cells(r, keys, targets, baseline)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def summary_csv(
    rows: list[Row], keys: list[str], targets: dict[str, float], baseline: str | None = None
) -> str:
    """One line per preset: mean and std of each metric, FID's reference size (the smallest of
    the seeds and tasks) and split, Δm % against the baseline, time to target, stability."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    referenced = [k for k in keys if any(k in r.reference for r in rows)]
    header = ["preset", "seeds", "steps"]
    for key in [*keys, *STABILITY_COLUMNS, "train_s", "wall_s"]:
        header += [f"{key}_mean", f"{key}_std"]
    header += [f"{key}_reference_n" for key in referenced]
    header += ["reference"] if referenced else []
    if baseline is not None:
        header += ["delta_m_mean", "delta_m_std", "delta_m_values", "delta_m_pooled"]
    header += ["converged", "diverged"]
    for key in targets:
        header += [f"{key}_target", f"{key}_reached", f"{key}_steps_mean", f"{key}_seconds_mean"]
    writer.writerow(header)
    for row in rows:
        line: list[Any] = [row.label, len(row.seeds), row.steps]
        series = [*(row.metrics[k] for k in keys), *row.stability.values(), row.train_s,
                  row.wall_s]  # fmt: skip
        for values in series:
            line += list(_stats(values))
        line += [min(row.reference[k]) if k in row.reference else "" for k in referenced]
        line += ["/".join(row.splits)] if referenced else []
        if baseline is not None:
            pooled = sorted({f for d in row.delta for f in d.pooled})
            line += [*_stats([d.value for d in row.delta]), min(d.count for d in row.delta),
                     " ".join(pooled)]  # fmt: skip
        line += [sum(r == reason for r, _ in row.stopped) for reason in ("converged", "diverged")]
        for key, target in targets.items():
            hits = [h for h in row.reach[key] if h is not None]
            line += [target, len(hits), _stats([float(h[0]) for h in hits])[0],
                     _stats([h[1] for h in hits])[0]]  # fmt: skip
        writer.writerow(line)
    return buf.getvalue()


@dataclass
class Outputs:
    """What a bench writes besides its runs: the table(s) printed, summary.md, the two CSVs and
    the report's result sections."""

    markdown: str
    summary: str
    summary_csv: str
    runs_csv: str
    results: list[html.Section]


def bullets(notes: Sequence[str]) -> str:
    return "\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def runs_csv(groups: dict[str, list[RunResult]], keys: list[str]) -> str:
    """One line per run: its final metrics, stability statistics and times."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["preset", "seed", "steps", *keys, *STABILITY_COLUMNS, "train_s", "wall_s",
                     "stopped", "path"])  # fmt: skip
    for results in groups.values():
        for r in results:
            values = [r.final.get(k, math.nan) for k in [*keys, *STABILITY_COLUMNS]]
            writer.writerow([r.label, r.seed, r.steps, *values, r.train_seconds, r.wall_s,
                             r.stop_reason, r.path])  # fmt: skip
    return buf.getvalue()
