"""E1's map from its two benches' runs.csv: per-task KID of every contender, without and with
DiffAugment, at each number of images per task, against `independent` with augmentation
(the issue's bar: the best sharing configuration ≥ 30 % better, seed bands apart).

    python benchmarks/claims/e1_table.py [benchmarks/claims] [--bench e1|e1-long]
        [--figure FILE.png] [--live]

Reads <root>/<bench>-plain/runs.csv and <root>/<bench>-augment/runs.csv as `run.sh <bench>`
copies them (e1: a 3,000-step cap; e1-long: 10,000 steps and a ramped-up EMA);
with --live, each run's KID of its live generators instead of their EMA, from the live.csv
beside them (`python benchmarks/claims/live.py e1-plain e1-augment`; runs without one are left out);
prints Markdown; with --figure also draws KID against the images per task, one line per
contender (mean ± std band, a dot per seed: mtgan's sweep chart).
Δ % = (KID of the bar − KID) / KID of the bar, the bar being independent+augment, so positive
is better than it; "apart" when the two mean ± std bands do not overlap.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from live import live_kid

VARIANTS = ("plain", "augment")
BAR = ("independent", "augment")
STOPS = {"steps": "at the cap", "converged": "converged", "diverged": "diverged"}  # stop_reason


def figure(
    kid: dict[tuple[str, str, str], list[float]],
    presets: list[str],
    path: Path,
    live: bool,
    cap: int,
) -> None:
    from mtgan.report.curves import plot_sweep

    ns = sorted({k[0] for k in kid}, key=int)
    lines = {
        f"{preset}{' + augment' if variant == 'augment' else ''}": [
            kid.get((n, preset, variant), []) for n in ns
        ]
        for preset in presets
        for variant in VARIANTS
    }
    fig = plot_sweep("kid", "data.per_task", ns, [float(n) for n in ns], lines, log_x=True)
    scored = "live generators" if live else "EMA generators"
    # two lines: one does not fit the figure's width
    title = (
        f"per-task KID of the {scored} (lower is better)\n"
        f"stopped by KID's patience or a {cap:,}-step cap"
    )
    fig.axes[0].set_title(title, fontsize=9)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="benchmarks/claims", type=Path)
    parser.add_argument("--bench", default="e1", help="the benches' prefix: e1 or e1-long")
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--live", action="store_true", help="the live generators' KID")
    args = parser.parse_args()
    root = args.root
    kid: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (N, preset, variant)
    stops: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    steps: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    presets: list[str] = []
    for variant in VARIANTS:
        bench = root / f"{args.bench}-{variant}"
        path = bench / "runs.csv"
        if not path.exists():
            continue
        by_path = live_kid(bench)
        for row in csv.DictReader(path.open()):
            if args.live and row["path"] not in by_path:
                continue
            key = (row["data.per_task"], row["preset"], variant)
            kid[key].append(float(by_path[row["path"]] if args.live else row["kid"]))
            stops[key][row["stopped"]] += 1
            steps[key].append(int(row["steps"]))
            if row["preset"] not in presets:
                presets.append(row["preset"])
    print("| images per task | contender | seeds | per-task KID | stopped | steps | Δ vs the bar |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted({k[0] for k in kid}, key=int):
        bar = kid.get((n, *BAR), [])
        for preset in presets:
            for variant in VARIANTS:
                values = kid.get((n, preset, variant))
                if not values:
                    continue
                mean = statistics.fmean(values)
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                stopped = ", ".join(
                    f"{STOPS.get(why, why)} {c}/{len(values)}"
                    for why, c in stops[(n, preset, variant)].items()
                )
                delta = "—"
                if bar and (preset, variant) != BAR:
                    ref = statistics.fmean(bar)
                    ref_std = statistics.stdev(bar) if len(bar) > 1 else 0.0
                    apart = mean + std < ref - ref_std or mean - std > ref + ref_std
                    delta = f"{(ref - mean) / ref:+.0%}" + (", apart" if apart else "")
                print(
                    f"| {n} | {preset}{' + augment' if variant == 'augment' else ''} | "
                    f"{len(values)} | {mean:.1f} ± {std:.1f} | {stopped} | "
                    f"{statistics.fmean(steps[(n, preset, variant)]):,.0f} | {delta} |"
                )
    if args.figure is not None:
        cap = max(s for runs in steps.values() for s in runs)
        figure(kid, presets, args.figure, args.live, cap)


if __name__ == "__main__":
    main()
