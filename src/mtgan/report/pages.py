"""The two report pages: one run (`mtgan report RUN_DIR`) and a bench of presets × seeds
(`mtgan bench`): tables, metric / loss / gradient-norm curves and sample grids."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from mtgan.atomic import write_atomic
from mtgan.report import html
from mtgan.report.curves import GRAD_KEYS, LOSS_KEYS, eval_series, plot_panels, train_series
from mtgan.report.history import STABILITY_COLUMNS, RunResult, format_number, metric_keys
from mtgan.rundir import CONFIG, RunDir

_TERM = re.compile(r"^[a-z]+/[a-z_]+$")  # a phase's total or per-term mean: "g/classes"


def _curve_sections(
    groups: dict[str, list[RunResult]], keys: Sequence[str], figures: Path | None = None
) -> list[html.Section]:
    """Metric, loss and gradient-norm figures; also written as PNG files into `figures`."""
    sections = []
    metric_png = plot_panels(groups, [(k, eval_series(k)) for k in keys])
    if metric_png is not None:
        body = html.image(metric_png, "metric curves")
        sections.append(html.Section("Metrics over training", body))
    results = [r for rs in groups.values() for r in rs]
    terms = sorted({k for r in results for rec in r.train for k in rec if _TERM.match(k)})
    loss_keys = [*LOSS_KEYS, *(k for k in terms if k not in (*LOSS_KEYS, *GRAD_KEYS))]
    loss_png = plot_panels(groups, [(k, train_series(k)) for k in loss_keys])
    if loss_png is not None:
        note = html.paragraph("Running mean over 5 logged steps; thin lines are single seeds.")
        sections.append(html.Section("Losses", html.image(loss_png, "loss curves") + note))
    grad_png = plot_panels(groups, [(k, train_series(k)) for k in GRAD_KEYS], log_scale=True)
    if grad_png is not None:
        sections.append(html.Section("Gradient norms", html.image(grad_png, "gradient norms")))
    if figures is not None:
        named = {"metrics": metric_png, "losses": loss_png, "grad_norms": grad_png}
        for name, png in named.items():
            if png is not None:
                write_atomic(figures / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
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
        where = f"At step {final.get('step')}, {ema}, features {final.get('features')}"
        body += html.paragraph(where)
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
    subtitle = f"{result.path} · {result.steps} steps"
    if math.isfinite(result.train_seconds):
        subtitle += f" · {result.train_seconds:.0f} s in training steps"
    return html.page(f"mtgan run: {result.label}", subtitle, sections)


def bench_page(
    groups: dict[str, list[RunResult]],
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    keys: Sequence[str],
    notes: Sequence[str],
    subtitle: str,
    figures: Path | None = None,
) -> str:
    """The report of a bench: its table (columns, cells already formatted), notes on how to read
    it, curves of every preset (all seeds, mean ± std band) and each preset's samples."""
    body = html.table(columns, cells) + "".join(html.paragraph(n) for n in notes)
    sections = [html.Section("Results (mean ± std over seeds)", body)]
    sections += _curve_sections(groups, keys, figures)
    samples = []
    for label, results in groups.items():
        overviews = RunDir(results[0].path).sample_overviews()
        if overviews:
            step, path = overviews[-1]
            caption = f"{label} · seed {results[0].seed} · step {step}"
            samples.append(html.image_file(path, caption, width=420))
    if samples:
        sections.append(html.Section("Samples (last step, first seed)", "".join(samples)))
    return html.page("mtgan bench", subtitle, sections)
