"""From finished run directories to a bench table: mean ± std over seeds per metric (FID with
the size of its real set), steps and training seconds to reach a target value, and
training-stability statistics.

Everything is read from what a run writes anyway (eval.json, metrics.jsonl), so a table can be
rebuilt at any time from the directories alone.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from mtgan.metrics.registry import lower_is_better
from mtgan.report.history import STABILITY_COLUMNS, RunResult, format_number


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
    groups: dict[str, list[RunResult]], keys: list[str], targets: dict[str, float]
) -> list[Row]:
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


def table_columns(keys: list[str], targets: dict[str, float]) -> list[str]:
    cols = ["preset", "seeds", "steps", *keys]
    for key, target in targets.items():
        cols += [f"steps to {target_label(key, target)}", f"train s to {target_label(key, target)}"]
    return cols + list(STABILITY_COLUMNS.values()) + ["stopped", "train s/run", "wall s/run"]


def table_cells(row: Row, keys: list[str], targets: dict[str, float]) -> list[str]:
    """One row of the Markdown/HTML table (mean ± std over seeds; stability counts summed)."""
    cells = [row.label, str(len(row.seeds)), str(row.steps)]
    cells += [_metric_cell(row, k) for k in keys]
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


def markdown_table(rows: list[Row], keys: list[str], targets: dict[str, float]) -> str:
    cols = table_columns(keys, targets)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(table_cells(r, keys, targets)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def summary_csv(rows: list[Row], keys: list[str], targets: dict[str, float]) -> str:
    """One line per preset: mean and std of each metric, FID's reference size (the smallest of
    the seeds and tasks) and split, time to target, stability."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    referenced = [k for k in keys if any(k in r.reference for r in rows)]
    header = ["preset", "seeds", "steps"]
    for key in [*keys, *STABILITY_COLUMNS, "train_s", "wall_s"]:
        header += [f"{key}_mean", f"{key}_std"]
    header += [f"{key}_reference_n" for key in referenced]
    header += ["reference"] if referenced else []
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
        line += [sum(r == reason for r, _ in row.stopped) for reason in ("converged", "diverged")]
        for key, target in targets.items():
            hits = [h for h in row.reach[key] if h is not None]
            line += [target, len(hits), _stats([float(h[0]) for h in hits])[0],
                     _stats([h[1] for h in hits])[0]]  # fmt: skip
        writer.writerow(line)
    return buf.getvalue()


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
