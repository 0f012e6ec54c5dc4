"""`mtgan bench --sweep KEY=V1,V2,...`: every preset at every value of one config key.

Each value is one more override of its runs (`KEY=V`), so a sweep is presets × values × seeds
under one protocol. The runs of a value make one ordinary bench table (Δm against the baseline
at the same value); each metric's final value is also drawn against the swept value, one line
per preset, so "where does sharing win" reads off one figure (e.g. `data.per_task`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mtgan.atomic import write_atomic
from mtgan.bench.summary import Outputs, Row, bullets, runs_csv
from mtgan.errors import ConfigError
from mtgan.report import html
from mtgan.report.curves import LOG_SPAN, plot_sweep, to_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mtgan.bench.suite import Table

SWEPT = "@"  # between a preset's label and its swept setting: runs/pertask@data.per_task=10/
FIGURE_PREFIX = "sweep-"  # figures/sweep-<metric>.png
_EXAMPLE = "e.g. --sweep data.per_task=10,25,100,500"


@dataclass(frozen=True)
class Sweep:
    """One swept key and its values, as given (text, as an override would read them)."""

    key: str
    values: tuple[str, ...]

    def settings(self) -> tuple[str, ...]:
        """The override of each value: "data.per_task=10"."""
        return tuple(setting(self.key, v) for v in self.values)

    def check_not_in(self, overrides: Sequence[str]) -> None:
        """The swept key may not also be fixed for every run."""
        for override in overrides:
            if override.split("=", 1)[0].strip() == self.key:
                raise ConfigError(
                    f"--sweep {self.key}: also given as the override {override}; give it once"
                )


def setting(key: str, value: str) -> str:
    return f"{key}={value}"


def value_of(text: str) -> str:
    """The value of a setting "KEY=V"."""
    return text.split("=", 1)[1]


def parse_sweep(text: str) -> Sweep:
    """`KEY=V1,V2,...` → Sweep. Commas inside brackets belong to a value (`[16,16],[32,32]`).
    Values name run directories, so a value with a path separator is refused."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    values = _split_top_level(rest)
    if not sep or not key or not values or any(not v for v in values):
        raise ConfigError(f"--sweep {text}: expected KEY=V1,V2,... ({_EXAMPLE})")
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {text}: a value is given twice")
    bad = [v for v in values if "/" in v or "\\" in v or v in (".", "..")]
    if bad:
        raise ConfigError(
            f"--sweep {key}: the value {bad[0]!r} cannot name a run directory (each value "
            "names its runs' directory); sweep values without a path separator"
        )
    return Sweep(key, tuple(values))


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()] if text.strip() else []


def numbers(values: Sequence[str]) -> list[float] | None:
    """The values as numbers, or None when any is not one (then the axis is categorical)."""
    try:
        out = [float(v) for v in values]
    except ValueError:
        return None
    return out if all(math.isfinite(x) for x in out) else None


def ordered(values: Sequence[str]) -> list[str]:
    """Numbers ascending; other values in the order given."""
    xs = numbers(values)
    return list(values) if xs is None else [v for _, v in sorted(zip(xs, values))]


def log_x(values: Sequence[str]) -> bool:
    """A log x axis when the values are positive numbers spanning LOG_SPAN× or more."""
    xs = numbers(values)
    return xs is not None and min(xs) > 0 and max(xs) / min(xs) >= LOG_SPAN


def sweep_outputs(
    key: str, tables: dict[str, Table], general: Sequence[str], figures: Path | None
) -> Outputs:
    """A sweep's outputs from one ordinary table per value (`tables`: value → table, in
    order): the tables under a heading each, the CSVs with a leading `key` column, and each
    metric against the value. `general`: the notes every table shares (first and last)."""
    listed = ", ".join(tables)
    general = [
        general[0],
        f"Swept {key} over {listed}: each value is one more override of its runs (run "
        f"directories runs/PRESET{SWEPT}{key}=VALUE/seedS); one table per value, Δm against "
        "the baseline at the same value.",
        *_reference_note(key, tables),
        *general[1:],
    ]
    heads = {v: f"### {setting(key, v)}\n\n{t.markdown()}" for v, t in tables.items()}
    summary = "\n".join(heads[v] + bullets(t.notes + t.protocol_notes) for v, t in tables.items())
    results = [
        t.section(f"{setting(key, v)}: results (mean ± std over seeds)", t.notes + t.protocol_notes)
        for v, t in tables.items()
    ]
    metrics = list(dict.fromkeys(k for t in tables.values() for k in t.keys))
    chart = sweep_section(key, {v: t.rows for v, t in tables.items()}, metrics, figures)
    body = "".join(html.paragraph(n) for n in general)
    results.append(
        html.Section(chart.title, chart.body + body)
        if chart
        else html.Section("How the runs compare", body)
    )
    return Outputs(
        "\n".join(heads.values()),
        summary + "\n" + bullets(general),
        _with_column(key, {v: t.csv() for v, t in tables.items()}),
        _with_column(key, {v: runs_csv(t.groups, t.keys) for v, t in tables.items()}),
        results,
    )


def _reference_note(key: str, tables: dict[str, Table]) -> list[str]:
    """A warning when a preset's seed was evaluated against different real sets at different
    values (eval.reference=train under a data.per_task sweep): the values would not measure
    the same thing. (Seeds may differ: a 2D mixture is drawn per seed.)"""
    seen: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for table in tables.values():
        for label, results in table.groups.items():
            for r in results:
                if r.protocol:
                    reference = (str(r.protocol.get("reference")),
                                 str(r.protocol.get("reference_per_task")))  # fmt: skip
                    seen.setdefault((label, r.seed), set()).add(reference)
    if all(len(references) < 2 for references in seen.values()):
        return []
    return [
        f"The real set the metrics compare against differs across the values of {key} (see "
        "each table's evaluation protocol), so the values are not judged alike; data.heldout "
        "with eval.reference=heldout judges every value against the same held-out rows."
    ]


def _with_column(name: str, tables: dict[str, str]) -> str:
    """CSV texts of the same columns as one, each line led by its value under `name`."""
    out = io.StringIO()
    writer = csv.writer(out)
    for i, (value, text) in enumerate(tables.items()):
        header, *lines = list(csv.reader(io.StringIO(text)))
        if i == 0:
            writer.writerow([name, *header])
        writer.writerows([value, *line] for line in lines)
    return out.getvalue()


def sweep_charts(
    key: str, tables: dict[str, list[Row]], metrics: Sequence[str]
) -> dict[str, Figure]:
    """metric → its final value against the swept value (`tables`: value → the rows of its
    table), one line per preset, mean ± std over seeds; metrics with no value are left out."""
    values = ordered(list(tables))
    presets = list(dict.fromkeys(row.label for rows in tables.values() for row in rows))
    charts = {}
    for metric in metrics:
        lines = {p: [_seed_values(tables[v], p, metric) for v in values] for p in presets}
        if any(math.isfinite(x) for seeds in lines.values() for s in seeds for x in s):
            charts[metric] = plot_sweep(metric, key, values, numbers(values), lines, log_x(values))
    return charts


def sweep_section(
    key: str, tables: dict[str, list[Row]], metrics: Sequence[str], figures: Path | None = None
) -> html.Section | None:
    """`sweep_charts` for the report, also written as figures/sweep-<metric>.png; None when no
    metric has a value."""
    body, written = "", set()
    for metric, fig in sweep_charts(key, tables, metrics).items():
        png = to_png(fig)
        body += html.image(png, f"{metric} against {key}")
        if figures is not None:
            path = figures / f"{FIGURE_PREFIX}{metric}.png"
            write_atomic(path, lambda tmp, png=png: tmp.write_bytes(png))
            written.add(path.name)
    if figures is not None:  # not an older sweep's figure of a metric no longer reported
        for old in figures.glob(f"{FIGURE_PREFIX}*.png"):
            if old.name not in written:
                old.unlink()
    if not body:
        return None
    note = (
        f"The final value of each metric at each {key}, one line per preset: the mean over "
        "seeds, a ±1 std band, each seed a dot"
        + (f"; {key} on a log axis." if log_x(list(tables)) else ".")
    )
    return html.Section(f"Metrics against {key}", body + html.paragraph(note))


def _seed_values(rows: list[Row], preset: str, metric: str) -> list[float]:
    for row in rows:
        if row.label == preset:
            return row.metrics.get(metric, [])
    return []
