"""Which balancer gives the best samples? A screen of every balancer on one seed, then fixed
weights against the two best on three seeds, all under the preset's own budget.

    python benchmarks/balancer_quality.py pertask [--steps 3000] [--jobs 2] [--top 2]
    python benchmarks/balancer_quality.py gman

Each balancer is set for both phases (`balance.d`, `balance.g`); for `gman` the preset's own
G balancer (softmax(λ·V), "gman") is one of the candidates and "fixed" means fixed weights in
both phases. Every candidate becomes a config file (configs/<preset>-<balancer>.yaml under the
output directory) and all of them one `mtgan bench`, so the runs, the table, the curves and
the HTML report are the bench's own, and an interrupted screen resumes where it stopped.
Ranked by the preset's headline metric (`fid`: mean over tasks, lower is better) at the end of
the budget. Writes benchmarks/results/balancer-quality-<preset>.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
from pathlib import Path

import yaml

from mtgan.balance import BALANCERS
from mtgan.bench.suite import run_bench
from mtgan.config import load_config

RESULTS = Path(__file__).parent / "results"


def candidates(preset: str) -> list[str]:
    names = sorted(set(BALANCERS) - {"torchjd", "fixed"})  # torchjd: an optional extra
    if preset != "gman":
        names.remove("gman")  # GMAN's weighting is for many discriminators of one generator
    return ["fixed", *names]


def write_config(preset: str, balancer: str, folder: Path) -> str:
    """The preset with `balancer` in both phases, as a config file the bench labels by name."""
    overrides = [f"balance.d={balancer}", f"balance.g={balancer}", "balance.d_options={}"]
    overrides.append("balance.g_options={}")
    config = load_config(preset, overrides).model_dump(mode="json")
    path = folder / f"{preset}-{balancer}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def ranking(summary: Path, metric: str) -> list[tuple[str, float]]:
    """(label, mean metric) from a bench's summary.csv, best (lowest) first."""
    with summary.open() as f:
        rows = [(r["preset"], float(r[f"{metric}_mean"])) for r in csv.DictReader(f)]
    return sorted(rows, key=lambda r: r[1] if math.isfinite(r[1]) else math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=["pertask", "gman"])
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--top", type=int, default=2, help="balancers kept for the seeds")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--metric", default="fid")
    parser.add_argument("--out", type=Path, help="default runs/balancer-quality/<preset>")
    args = parser.parse_args()
    out = args.out or Path("runs/balancer-quality") / args.preset
    overrides = [f"train.steps={args.steps}"] if args.steps else []
    metrics = None  # the bench's own choice: fid (+ accuracy for class tasks), stability
    configs = {b: write_config(args.preset, b, out / "configs") for b in candidates(args.preset)}

    run_bench(list(configs.values()), overrides, [0], args.jobs, out, metrics, quiet=True)
    shutil.copy(out / "summary.md", out / "screen.md")
    screen = ranking(out / "summary.csv", args.metric)
    best = [label for label, _ in screen if label != f"{args.preset}-fixed"][: args.top]
    finalists = [f"{args.preset}-fixed", *best]
    seeds = list(range(args.seeds))
    run_bench([str(out / "configs" / f"{f}.yaml") for f in finalists], overrides, seeds,
              args.jobs, out, metrics, quiet=True)  # fmt: skip

    lines = [
        f"# Balancer quality: {args.preset}",
        "",
        f"    python benchmarks/balancer_quality.py {args.preset}"
        + (f" --steps {args.steps}" if args.steps else ""),
        "",
        f"Screen: every balancer in both phases, seed 0, ranked by final `{args.metric}`:",
        "",
        "| rank | balancer | " + args.metric + " |",
        "|---|---|---|",
        *(f"| {i} | {label} | {v:.1f} |" for i, (label, v) in enumerate(screen, 1)),
        "",
        f"Fixed weights against the {args.top} best, seeds {seeds}:",
        "",
        (out / "summary.md").read_text(),
    ]
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"balancer-quality-{args.preset}.md"
    target.write_text("\n".join(lines) + "\n")
    print(target.read_text())


if __name__ == "__main__":
    main()
