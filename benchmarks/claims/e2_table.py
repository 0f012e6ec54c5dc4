"""E2's table from its benches' runs.csv: KID per method and number of images, per held-out
digit (mean ± std over seeds), the geometric mean over digits of fresh KID / the method's KID
(above 1: the method beats a fresh GAN), the (digit, seed) pairs where the method's run beat
the fresh GAN's (a seed draws the same images for both), how each run stopped, and which
source task each transfer's own layers were copied from (its init.json: train.init_task, or the
task `nearest` chose), and how much of each digit's KID variance lies between seeds (the images
a seed draws) and between methods.

    python benchmarks/claims/e2_table.py [benchmarks/claims] [--bench e2|e2-long] [--live]

Reads <root>/<bench>-<digit>-<method>/runs.csv as `run.sh <bench>` copies them (e2: a 2,000-step
cap; e2-long: 6,000 steps and a ramped-up EMA); prints Markdown.
--live: each run's KID of its generators as trained rather than their EMA, from the live.csv
beside its runs.csv (`python benchmarks/claims/live.py e2-9-fresh ...`), for the runs it lists.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from live import live_kid

METHODS = ("fresh", "finetuned", "finetuned-augment", "frozen")  # run.sh e2's benches


def mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {std:.1f}"


def source_task(run: Path) -> str | None:
    """The source task a transfer run copied (its name in the source run), None for a fresh
    run (no init.json, or no task copied)."""
    init = run / "init.json"
    if not init.exists():
        return None
    record = json.loads(init.read_text())
    if record.get("init_task") is None:
        return None
    source_run = Path(record["source"]).parent.parent  # RUN/checkpoints/step-N
    names = json.loads((source_run / "tasks.json").read_text())["names"]
    return names[record["init_task"]]


def variance_split(
    by_seed: dict[tuple[str, str, str, str], float], k: str, digit: str
) -> tuple[float, float] | None:
    """The shares of one digit's KID variance (at k images, over its seeds × methods table)
    between seeds' means and between methods' means: a two-way split without interaction, as
    an analysis of variance sums its squares. A seed fixes the k images every method trains
    on, so a large first share says the draw matters more than the start. None unless every
    method ran every seed."""
    table = {(m, seed): v for (k_, m, d, seed), v in by_seed.items() if (k_, d) == (k, digit)}
    methods = sorted({m for m, _ in table})
    seeds = sorted({seed for _, seed in table})
    if len(table) != len(methods) * len(seeds) or len(methods) < 2 or len(seeds) < 2:
        return None
    grand = statistics.fmean(table.values())
    total = sum((v - grand) ** 2 for v in table.values())
    if total == 0:
        return None
    between_seeds = len(methods) * sum(
        (statistics.fmean(table[(m, s)] for m in methods) - grand) ** 2 for s in seeds
    )
    between_methods = len(seeds) * sum(
        (statistics.fmean(table[(m, s)] for s in seeds) - grand) ** 2 for m in methods
    )
    return between_seeds / total, between_methods / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="benchmarks/claims", type=Path)
    parser.add_argument("--bench", default="e2", help="the benches' prefix: e2 or e2-long")
    parser.add_argument("--live", action="store_true")
    args = parser.parse_args()
    root = args.root
    kid: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (k, method, digit)
    by_seed: dict[tuple[str, str, str, str], float] = {}  # (k, method, digit, seed)
    stops: dict[str, Counter] = defaultdict(Counter)
    sources: dict[tuple[str, str, str], Counter] = defaultdict(Counter)  # (digit, k, method)
    digits: list[str] = []
    for path in sorted(root.glob(f"{args.bench}-[0-9]-*/runs.csv")):
        digit, method = path.parent.name.removeprefix(f"{args.bench}-").split("-", 1)
        if digit not in digits:
            digits.append(digit)
        live = live_kid(path.parent) if args.live else {}
        for row in csv.DictReader(path.open()):
            if args.live and row["path"] not in live:
                continue
            value = live[row["path"]] if args.live else float(row["kid"])
            kid[(row["data.per_task"], method, digit)].append(value)
            by_seed[(row["data.per_task"], method, digit, row["seed"])] = value
            stops[method][row["stopped"]] += 1
            task = source_task(Path(row["path"]))
            if task is not None:
                sources[(digit, row["data.per_task"], method)][task] += 1
    ks = sorted({k for k, _, _ in kid}, key=int)
    head = " | ".join(f"digit {d}" for d in digits)
    print(f"| images | method | {head} | fresh / method | pairs won |")
    print("|---|---|" + "---|" * len(digits) + "---|---|")
    for k in ks:
        for m in METHODS:
            cells = " | ".join(mean_std(kid[(k, m, d)]) for d in digits)
            # digits differ several-fold in KID: compare within a digit, then average the ratios
            ratios = [
                statistics.fmean(kid[(k, "fresh", d)]) / statistics.fmean(kid[(k, m, d)])
                for d in digits
                if kid[(k, "fresh", d)] and kid[(k, m, d)]
            ]
            ratio = f"{statistics.geometric_mean(ratios):.2f}×" if ratios else "—"
            # a seed draws the same images for every method: compare run against run
            pairs = [
                (value, by_seed[(k, "fresh", d, seed)])
                for (k_, m_, d, seed), value in by_seed.items()
                if (k_, m_) == (k, m) and (k, "fresh", d, seed) in by_seed
            ]
            won = "—" if m == "fresh" else f"{sum(a < b for a, b in pairs)}/{len(pairs)}"
            print(f"| {k} | {m} | {cells} | {ratio} | {won} |")
    print()
    for m in METHODS:
        print(f"- {m}: stopped " + ", ".join(f"{n} × {why}" for why, n in stops[m].items()))
    # one line per digit and k where every transfer method copied the same (a seed draws the
    # same images for each, so `nearest` chooses alike), else one per method
    for digit, k in sorted({(d, k) for d, k, _ in sources}, key=lambda dk: (dk[0], int(dk[1]))):
        per_method = {m: c for (d, k_, m), c in sources.items() if (d, k_) == (digit, k)}
        alike = len({tuple(sorted(c.items())) for c in per_method.values()}) == 1
        for m, counts in per_method.items():
            copied = ", ".join(f"{name} × {n}" for name, n in counts.most_common())
            who = "the transfers" if alike else m
            print(f"- digit {digit}, {k} images, {who}: own layers copied from {copied}")
            if alike:
                break
    for k in ks:
        for digit in digits:
            split = variance_split(by_seed, k, digit)
            if split is not None:
                print(
                    f"- digit {digit}, {k} images, KID's variance over seeds × methods: "
                    f"{split[0]:.0%} between seeds, {split[1]:.0%} between methods"
                )


if __name__ == "__main__":
    main()
