"""The two report pages: one run (`mtgan report RUN_DIR`) and a bench of presets × seeds
(`mtgan bench`): tables, metric / loss / gradient-norm curves and sample grids."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mtgan.atomic import write_atomic
from mtgan.report import html
from mtgan.report.curves import (
    AUGMENT_KEYS,
    GRAD_KEYS,
    LOSS_KEYS,
    SMOOTH,
    SMOOTH_MIN,
    Panel,
    eval_series,
    fold_constant,
    plot_panels,
    to_png,
    train_series,
)
from mtgan.report.history import (
    STABILITY_COLUMNS,
    RunResult,
    format_number,
    metric_keys,
    protocol_lines,
)
from mtgan.rundir import CONFIG, RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TERM = re.compile(r"^[a-z]+/[a-z_]+$")  # a phase's total or per-term mean: "g/classes"


def shown_path(path: Path) -> str:
    """A directory as a report's header names it: relative to the working directory when it
    lies under it (the header then reads the same on every machine), else as given."""
    if path.is_absolute():
        for base, target in ((Path.cwd(), path), (Path.cwd().resolve(), path.resolve())):
            if target.is_relative_to(base):
                return str(target.relative_to(base))
    return str(path)


@dataclass
class Chart:
    """One figure of curves: `figure` None when no panel has data; `zero` the panels left out
    because every run logged one value throughout (`title = value`)."""

    name: str  # its PNG's name under a bench's figures/
    title: str
    figure: Figure | None
    zero: list[str]


def curve_charts(groups: dict[str, list[RunResult]], keys: Sequence[str]) -> list[Chart]:
    """Metric curves (a log axis where `log_axis` says so), losses and gradient norms (log)."""
    results = [r for rs in groups.values() for r in rs]
    terms = sorted({k for r in results for rec in r.train for k in rec if _TERM.match(k)})
    drawn_apart = (*LOSS_KEYS, *GRAD_KEYS, *AUGMENT_KEYS)
    loss_keys = [*LOSS_KEYS, *(k for k in terms if k not in drawn_apart)]
    specs: list[tuple[str, str, list[Panel], bool | None]] = [
        ("metrics", "Metrics over training", [(k, eval_series(k)) for k in keys], None),
        ("losses", "Losses", [(k, train_series(k)) for k in loss_keys], False),
        ("grad_norms", "Gradient norms", [(k, train_series(k)) for k in GRAD_KEYS], True),
        # as logged: p moves by steps of its own, a running mean would blur them
        (
            "augment",
            "Augmentation strength (ADA)",
            [(k, train_series(k, 1)) for k in AUGMENT_KEYS],
            False,
        ),
    ]
    charts = []
    for name, title, panels, log_scale in specs:
        drawn, zero = fold_constant(groups, panels, any_value=name != "metrics")
        charts.append(Chart(name, title, plot_panels(groups, drawn, log_scale), zero))
    return charts


def _curve_sections(
    groups: dict[str, list[RunResult]], keys: Sequence[str], figures: Path | None = None
) -> list[html.Section]:
    """Metric, loss and gradient-norm figures; also written as PNG files into `figures`."""
    notes = {
        "metrics": protocol_lines(groups),
        "losses": [
            f"Running mean over {SMOOTH} logged steps; runs that logged fewer than "
            f"{SMOOTH_MIN * SMOOTH} are drawn as logged, a marker per step. Thin lines are "
            "single seeds."
        ],
    }
    sections = []
    for chart in curve_charts(groups, keys):
        body = ""
        if chart.figure is not None:
            png = to_png(chart.figure)
            body = html.image(png, chart.title.lower())
            body += "".join(html.paragraph(n) for n in notes.get(chart.name, []))
            if figures is not None:
                path = figures / f"{chart.name}.png"
                write_atomic(path, lambda tmp, png=png: tmp.write_bytes(png))
        elif figures is not None:
            (figures / f"{chart.name}.png").unlink(missing_ok=True)  # not an older run's figure
        if chart.zero:
            body += html.paragraph(
                f"The same throughout every run, not drawn: {', '.join(chart.zero)}."
            )
        if body:
            sections.append(html.Section(chart.title, body))
    return sections


def run_page(result: RunResult, config_text: str, task_names: Sequence[str]) -> str:
    """The report of a single run directory."""
    final, keys = result.final, metric_keys([result])
    sections = []
    if final:
        rows = [[k, format_number(final[k])] for k in keys]
        stability = [(label, final[k]) for k, label in STABILITY_COLUMNS.items() if k in final]
        rows += [[label, format_number(value)] for label, value in stability]
        body = html.table(["metric", "value"], rows)
        per_task = [k for k in keys if any(f"{k}/task{t}" in final for t in range(len(task_names)))]
        if per_task and len(task_names) > 1:
            task_rows = [
                [name, *(format_number(final.get(f"{k}/task{t}", "—")) for k in per_task)]
                for t, name in enumerate(task_names)
            ]
            body += html.table(["task", *per_task], task_rows)
        ema = "EMA generators" if final.get("ema") else "raw generators"
        where = f"At step {final.get('step')}, {ema}"
        protocol = protocol_lines({result.label: [result]})  # names the features, with more
        where += "" if protocol else f", features {final.get('features')}"
        body += "".join(html.paragraph(line) for line in [where, *protocol])
        sections.append(html.Section("Final evaluation", body))
    else:
        sections.append(html.Section("Final evaluation", html.paragraph("No eval.json yet.")))
    sections += _curve_sections({result.label: [result]}, keys)
    overviews = RunDir(result.path).sample_overviews()
    if overviews:
        # The first, a middle and the last sample overview: how the samples developed.
        picks = sorted({0, len(overviews) // 2, len(overviews) - 1})
        figures = "".join(
            html.image_file(overviews[i][1], f"step {overviews[i][0]}", width=420) for i in picks
        )
        sections.append(html.Section("Samples (fixed noise, one row per task)", figures))
    sections.append(html.Section("Configuration", html.preformatted(config_text, CONFIG)))
    subtitle = f"{shown_path(result.path)} · {result.steps} steps"
    if math.isfinite(result.train_seconds):
        subtitle += f" · {result.train_seconds:.0f} s in training steps"
    return html.page(f"mtgan run: {result.label}", subtitle, sections)


def results_section(
    title: str, columns: Sequence[str], cells: Sequence[Sequence[str]], notes: Sequence[str]
) -> html.Section:
    """A bench table (columns, cells already formatted) and the notes on how to read it."""
    return html.Section(title, html.table(columns, cells) + "".join(map(html.paragraph, notes)))


def bench_page(
    groups: dict[str, list[RunResult]],
    results: Sequence[html.Section],
    keys: Sequence[str],
    subtitle: str,
    figures: Path | None = None,
) -> str:
    """The report of a bench: its results (`results_section`s: a table, or one per swept value,
    and what else the bench adds), curves of every preset (all seeds, mean ± std band) and
    each preset's samples."""
    sections = list(results)
    sections += _curve_sections(groups, keys, figures)
    samples = []
    for label, runs in groups.items():
        overviews = RunDir(runs[0].path).sample_overviews()
        if overviews:
            step, path = overviews[-1]
            caption = f"{label} · seed {runs[0].seed} · step {step}"
            samples.append(html.image_file(path, caption, width=420))
    if samples:
        sections.append(html.Section("Samples (last step, first seed)", "".join(samples)))
    return html.page("mtgan bench", subtitle, sections)
