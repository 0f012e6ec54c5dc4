"""`mtgan bench`: presets × seeds under one protocol → table (Markdown, CSV) and HTML report.

    run_bench(["baseline", "independent", "pertask"], ["train.steps=2000"], seeds=[0, 1, 2],
              jobs=2, out=Path("runs/bench"), baseline="baseline")

writes into `out`: summary.md, summary.csv (one line per preset), runs.csv (one per run),
report.html, figures/*.png (the report's curves, for papers and READMEs) and the runs
themselves under runs/<preset>/seed<S>/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mtgan.atomic import write_text_atomic
from mtgan.bench.plan import (
    BenchRun,
    Protocol,
    fix_protocol,
    label_of,
    plan_runs,
    read_protocol,
    resolve_protocol,
)
from mtgan.bench.runner import execute, finished, wall_seconds
from mtgan.bench.summary import (
    Row,
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
from mtgan.errors import MtganError, RunError
from mtgan.report.history import RunResult, load_result, metric_keys, protocol_lines
from mtgan.report.html import write_page
from mtgan.report.pages import bench_page, shown_path
from mtgan.rundir import BenchDir


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
) -> BenchOutcome:
    """Train what is not finished yet, then write the table and the report of every run asked
    for. Runs that fail are listed in the outcome (their logs are in out/logs). `baseline`
    names one of `targets`: the table gives every preset's Δm % against it."""
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
    protocol, _ = resolve_protocol(targets, overrides, metrics, eval_every)
    runs = plan_runs(out, targets, seeds)
    fix_protocol(out, protocol, list(dict.fromkeys(r.label for r in runs)))
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


def collect(runs: list[BenchRun]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        result = load_result(run.label, run.seed, run.path, wall_seconds(run))
        groups.setdefault(run.label, []).append(result)
    return groups


def write_outputs(
    out: Path,
    runs: list[BenchRun],
    protocol: Protocol,
    goals: dict[str, float] | None = None,
    note: str = "",
    baseline: str | None = None,
) -> str:
    """summary.md, summary.csv, runs.csv and report.html for the given finished runs; with
    `baseline` (a preset's label), a Δm % column against it."""
    groups = collect(runs)
    keys = metric_keys([r for rs in groups.values() for r in rs])
    targets = goals if goals else default_targets(groups, keys)
    unknown = [k for k in targets if k not in keys]
    if unknown:
        raise MtganError(f"--target {unknown[0]}: not a reported metric; these are: {keys}")
    rows = summarise(groups, keys, targets, baseline)
    notes = _notes(protocol, targets, not goals, rows, keys, baseline, baseline in groups)
    notes += protocol_lines(groups)  # what each FID compared: N generated, reference, features
    markdown = markdown_table(rows, keys, targets, baseline)
    bench = BenchDir(out)
    write_text_atomic(bench.summary_md, markdown + "\n" + "\n".join(f"- {n}" for n in notes))
    write_text_atomic(bench.summary_csv, summary_csv(rows, keys, targets, baseline))
    write_text_atomic(bench.runs_csv, runs_csv(groups, keys))
    cells = [table_cells(r, keys, targets, baseline) for r in rows]
    subtitle = f"{shown_path(out)} · {len(runs)} runs · {note}".rstrip(" ·")
    columns = table_columns(keys, targets, baseline)
    page = bench_page(groups, columns, cells, keys, notes, subtitle, bench.figures)
    write_page(bench.report, page)
    return markdown


def _notes(
    protocol: Protocol,
    targets: dict[str, float],
    automatic: bool,
    rows: list[Row],
    keys: list[str],
    baseline: str | None,
    baseline_finished: bool,
) -> list[str]:
    notes = [
        "Every preset was trained with the same overrides: "
        + (" ".join(protocol.overrides) or "(none)")
        + f"; metrics {', '.join(protocol.metrics)} evaluated every {protocol.eval_every} steps "
        "and at the end (EMA generators where the preset keeps them).",
    ]
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
    notes.append(
        "Stability: D/G-loss std over the last steps of each run (eval.stability_window), mean "
        "over seeds; grad spikes: logged steps with a gradient norm above 10× its run median, and "
        "non-finite: logged steps with NaN/inf, both summed over seeds."
    )
    return notes


def report_bench_dir(
    out: Path, goals: dict[str, float] | None = None, baseline: str | None = None
) -> Path:
    """Rebuild the table and report of a bench directory from its finished runs (with other
    targets when `goals` are given, Δm % against `baseline` when one is named)."""
    protocol, presets = read_protocol(out)
    bench = BenchDir(out)
    found = bench.labels()
    runs = []
    for label in [*presets, *(f for f in found if f not in presets)]:
        preset_dir = bench.runs / label
        seeds = sorted(int(d.name[4:]) for d in preset_dir.glob("seed*") if d.name[4:].isdigit())
        for seed in seeds:
            run = BenchRun(label, label, seed, bench.run(label, seed))
            if finished(run):
                runs.append(run)
    if not runs:
        raise RunError(f"{out}: no finished runs to report")
    write_outputs(out, runs, protocol, goals, baseline=baseline)
    return bench.report
