"""`mtgan bench`: presets × seeds under one protocol → table (Markdown, CSV) and HTML report.

    run_bench(["baseline", "independent", "pertask"], ["train.steps=2000"], seeds=[0, 1, 2],
              jobs=2, out=Path("runs/bench"), baseline="baseline")

writes into `out`: summary.md, summary.csv (one line per preset), runs.csv (one per run),
report.html, figures/*.png (the report's curves, for papers and READMEs) and the runs
themselves under runs/<preset>/seed<S>/. With `sweep="data.per_task=10,100"`, every preset
at every value (runs/<preset>@data.per_task=10/seed<S>/): a table per value, the CSVs led by
the value, and figures/sweep-<metric>.png of each metric against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtgan.atomic import write_text_atomic
from mtgan.bench.plan import (
    BenchRun,
    Protocol,
    fix_protocol,
    label_of,
    parse_name,
    plan_runs,
    read_protocol,
    resolve_protocol,
)
from mtgan.bench.runner import execute, finished, wall_seconds
from mtgan.bench.summary import (
    Outputs,
    Row,
    bullets,
    default_targets,
    delta_label,
    delta_notes,
    markdown_table,
    runs_csv,
    summarise,
    summary_csv,
    table_cells,
    table_columns,
    target_label,
)
from mtgan.bench.sweep import (
    ordered,
    parse_sweep,
    setting,
    sweep_outputs,
    value_of,
)
from mtgan.errors import MtganError, RunError
from mtgan.report import html
from mtgan.report.history import RunResult, load_result, metric_keys, protocol_lines
from mtgan.report.html import write_page
from mtgan.report.pages import bench_page, results_section, shown_path
from mtgan.rundir import BenchDir, RunDir


@dataclass
class BenchOutcome:
    markdown: str
    out: Path
    failed: list[BenchRun]


def run_bench(
    targets: list[str],
    overrides: list[str],
    seeds: list[int],
    jobs: int = 1,
    out: Path = Path("runs/bench"),
    metrics: list[str] | None = None,
    eval_every: int | None = None,
    goals: dict[str, float] | None = None,
    quiet: bool = False,
    baseline: str | None = None,
    sweep: str | None = None,
) -> BenchOutcome:
    """Train what is not finished yet, then write the table and the report of every run asked
    for. Runs that fail are listed in the outcome (their logs are in out/logs). `baseline`
    names one of `targets`: the table gives every preset's Δm % against it. `sweep`
    ("KEY=V1,V2,...") runs every preset at every value (see `mtgan.bench.sweep`)."""
    if not targets:
        raise MtganError("mtgan bench: name at least one preset or config file")
    if not seeds:
        raise MtganError("mtgan bench: --seeds needs at least one seed")
    if jobs < 1:
        raise MtganError(f"mtgan bench: --jobs must be at least 1, got {jobs}")
    if baseline is not None:
        baseline = label_of(baseline)
        if baseline not in [label_of(t) for t in targets]:
            raise MtganError(
                f"mtgan bench: --baseline {baseline} is not one of the presets benched: "
                f"{', '.join(label_of(t) for t in targets)}"
            )
    swept = parse_sweep(sweep) if sweep is not None else None
    protocol, _ = resolve_protocol(targets, overrides, metrics, eval_every, swept)
    runs = plan_runs(out, targets, seeds, swept)
    labels = list(dict.fromkeys(r.label for r in runs))
    fix_protocol(out, protocol, labels, swept.values if swept else ())
    t0 = time.perf_counter()
    outcomes = execute(runs, protocol, out, jobs, quiet)
    wall = time.perf_counter() - t0
    failed = [o.run for o in outcomes if o.status == "failed"]
    done = [r for r in runs if r not in failed]
    if not done:
        logs = ", ".join(str(o.log) for o in outcomes if o.log is not None)
        raise RunError(f"every bench run failed; see the logs: {logs}")
    note = f"bench wall time {wall:.0f} s"
    markdown = write_outputs(out, done, protocol, goals, note, baseline)
    return BenchOutcome(markdown, out, failed)


def collect(runs: list[BenchRun], key: Callable[[BenchRun], str]) -> dict[str, list[RunResult]]:
    """The runs' results, grouped by `key` (a preset's label within one table, the run's name
    across a sweep)."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        result = load_result(run.label, run.seed, run.path, wall_seconds(run))
        groups.setdefault(key(run), []).append(result)
    return groups


@dataclass
class Table:
    """One table of a bench: a row per preset over some runs (all of them, or one swept
    value's), with the notes that read it."""

    groups: dict[str, list[RunResult]]
    keys: list[str]
    targets: dict[str, float]
    rows: list[Row]
    baseline: str | None
    notes: list[str]  # targets, FID's N, Δm
    protocol_notes: list[str]  # the data per task and the evaluation protocol

    def markdown(self) -> str:
        return markdown_table(self.rows, self.keys, self.targets, self.baseline)

    def csv(self) -> str:
        return summary_csv(self.rows, self.keys, self.targets, self.baseline)

    def section(self, title: str, notes: list[str]) -> html.Section:
        columns = table_columns(self.keys, self.targets, self.baseline)
        cells = [table_cells(r, self.keys, self.targets, self.baseline) for r in self.rows]
        return results_section(title, columns, cells, notes)


def build_table(
    runs: list[BenchRun], goals: dict[str, float] | None, baseline: str | None
) -> Table:
    """Rows, time-to-target columns (those asked for, else the default) and Δm % against
    `baseline` (a preset's label) over the given finished runs."""
    groups = collect(runs, lambda run: run.label)
    keys = metric_keys([r for rs in groups.values() for r in rs])
    targets = goals if goals else default_targets(groups, keys)
    unknown = [k for k in targets if k not in keys]
    if unknown:
        raise MtganError(f"--target {unknown[0]}: not a reported metric; these are: {keys}")
    rows = summarise(groups, keys, targets, baseline)
    notes = _notes(targets, not goals, rows, keys, baseline, baseline in groups)
    # what each FID compared: N generated, reference, features
    data = _data_notes(runs) + protocol_lines(groups)
    return Table(groups, keys, targets, rows, baseline, notes, data)


def write_outputs(
    out: Path,
    runs: list[BenchRun],
    protocol: Protocol,
    goals: dict[str, float] | None = None,
    note: str = "",
    baseline: str | None = None,
) -> str:
    """summary.md, summary.csv, runs.csv and report.html for the given finished runs; with
    `baseline` (a preset's label), a Δm % column against it. A sweep gets a table per swept
    value and a figure per metric against the value (`sweep_outputs`)."""
    first, last = _general_notes(protocol)
    bench = BenchDir(out)
    if protocol.sweep is None:
        table = build_table(runs, goals, baseline)
        notes = [first, *table.notes, last, *table.protocol_notes]
        outputs = Outputs(
            table.markdown(),
            table.markdown() + bullets(notes),
            table.csv(),
            runs_csv(table.groups, table.keys),
            [table.section("Results (mean ± std over seeds)", notes)],
        )
    else:
        by_value: dict[str, list[BenchRun]] = {}
        for run in runs:
            by_value.setdefault(value_of(run.setting or ""), []).append(run)
        tables = {v: build_table(by_value[v], goals, baseline) for v in ordered(list(by_value))}
        outputs = sweep_outputs(protocol.sweep, tables, [first, last], bench.figures)
    write_text_atomic(bench.summary_md, outputs.summary)
    write_text_atomic(bench.summary_csv, outputs.summary_csv)
    write_text_atomic(bench.runs_csv, outputs.runs_csv)
    every = collect(runs, lambda run: run.name)
    curves = metric_keys([r for rs in every.values() for r in rs])
    subtitle = f"{shown_path(out)} · {len(runs)} runs · {note}".rstrip(" ·")
    page = bench_page(every, outputs.results, curves, subtitle, bench.figures)
    write_page(bench.report, page)
    return outputs.markdown


def _data_notes(runs: list[BenchRun]) -> list[str]:
    """How many real training rows each task had (tasks.json), and whether data.per_task chose
    them; [] for runs that did not record it."""
    counts, kinds, per_task = set(), set(), set()
    for run in runs:
        info = RunDir(run.path).read_tasks() or {}
        if "counts" in info:  # older runs did not record them
            counts.update(info["counts"])
            kinds.add(info.get("kind"))
            per_task.add(RunDir(run.path).load_config().data.per_task)
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    what = "points" if kinds == {"points"} else "images"
    text = f"Real training {what} per task: {lo:,}" + (f"–{hi:,}" if hi > lo else "")
    if per_task != {None}:
        text += (
            f" (data.per_task={'/'.join(str(n) for n in sorted(per_task - {None}))}: balanced "
            "over each task's labels, seeded, drawn after the data.heldout split)"
        )
    return [text + "."]


def _general_notes(protocol: Protocol) -> tuple[str, str]:
    """The notes every table of a bench shares: what all runs were trained with, and how the
    stability columns are counted."""
    first = (
        "Every preset was trained with the same overrides: "
        + (" ".join(protocol.overrides) or "(none)")
        + f"; metrics {', '.join(protocol.metrics)} evaluated every {protocol.eval_every} steps "
        "and at the end (EMA generators where the preset keeps them)."
    )
    last = (
        "Stability: D/G-loss std over the last steps of each run (eval.stability_window), mean "
        "over seeds; grad spikes: logged steps with a gradient norm above 10× its run median, and "
        "non-finite: logged steps with NaN/inf, both summed over seeds."
    )
    return first, last


def _notes(
    targets: dict[str, float],
    automatic: bool,
    rows: list[Row],
    keys: list[str],
    baseline: str | None,
    baseline_finished: bool,
) -> list[str]:
    notes = []
    for key, value in targets.items():
        how = "the final mean of the preset that did worst" if automatic else "given by --target"
        notes.append(
            f"Target {target_label(key, value)} ({how}): steps and seconds spent in training "
            "steps until the first evaluation that reached it, mean ± std over the seeds that "
            "did (reached/total)."
        )
    referenced = [k for k in keys if any(k in r.reference for r in rows)]
    if referenced:
        notes.append(
            f"N beside {', '.join(referenced)}: the real images each FID compared against (per "
            "task for fid, all tasks together for fid_pooled; a range where tasks or seeds "
            "differ) and the split they came from (eval.reference: train, heldout or all). FID "
            "from fewer real images than feature dimensions is biased; KID is not."
        )
    if baseline is not None:
        notes.append(
            f"{delta_label(baseline)}: the mean over the per-task metric values M (fid/task3, "
            f"accuracy/task2, ...) of s·(M − M_{baseline})/|M_{baseline}| × 100, s = +1 where "
            "larger is better and −1 where smaller is better (Maninis et al. 2019, Vandenhende "
            f"et al. 2021): positive is better than {baseline}. Per seed against {baseline}'s "
            "mean over seeds, then mean ± std over seeds."
        )
        if baseline_finished:
            notes += delta_notes(rows, baseline)
        else:
            notes.append(f"No run of {baseline} finished, so Δm is — throughout.")
    return notes


def report_bench_dir(
    out: Path, goals: dict[str, float] | None = None, baseline: str | None = None
) -> Path:
    """Rebuild the table and report of a bench directory from its finished runs (with other
    targets when `goals` are given, Δm % against `baseline` when one is named)."""
    protocol, presets, values = read_protocol(out)
    bench = BenchDir(out)
    known = [BenchRun(p, p, 0, Path(), setting(protocol.sweep, v) if protocol.sweep else None)
             for p in presets for v in (values or [None])]  # fmt: skip
    names = [r.name for r in known]
    runs = []
    for name in [*names, *(f for f in bench.labels() if f not in names)]:
        label, swept = parse_name(name)
        if (swept and swept.split("=", 1)[0]) != protocol.sweep:
            continue  # not a run of this bench's protocol
        preset_dir = bench.runs / name
        seeds = sorted(int(d.name[4:]) for d in preset_dir.glob("seed*") if d.name[4:].isdigit())
        for seed in seeds:
            run = BenchRun(label, label, seed, bench.run(name, seed), swept)
            if finished(run):
                runs.append(run)
    if not runs:
        raise RunError(f"{out}: no finished runs to report")
    write_outputs(out, runs, protocol, goals, baseline=baseline)
    return bench.report
