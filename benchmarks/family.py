"""The GAN-family table: presets × data × seeds, each a real `mtgan train` run, then a table of
mean ± std of their final metrics, wall time per run and the exact commands.

    python benchmarks/family.py [--jobs 2] [--seeds 0 1 2] [--only mgan-2d/grid25 ...] [--out DIR]

Each run gets one thread (`train.threads=1`) and `--jobs` runs go side by side, so on this
2-core machine two runs share the CPU without oversubscribing it. The final evaluation of each
run is the run's `eval.json` (EMA generators where the preset has them). The last line printed
is one JSON object with every row, for scripts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def both(name: str) -> list[str]:
    return [f"balance.d={name}", f"balance.g={name}"]


# MAD-GAN on the grid with mgan-2d's networks and budget
MADGAN_2D = [
    "data.name=grid25", "model.z_dim=2", "model.g_hidden=[128,128,128,128]",
    "model.d_hidden=[128,128,128]", "model.d_activation=maxout", "model.maxout_pieces=3",
    "model.generators=10", "model.heads={source: 11}", "train.batch_size=100",
    "train.lr_g=5e-4", "train.lr_d=5e-4", "train.steps=40000", "eval.metrics=[modes]",
    "train.sample_every=10000", "train.checkpoint_every=10000",
]  # fmt: skip

# (row name, preset, overrides, metrics shown)
ROWS: list[tuple[str, str, list[str], list[str]]] = [
    ("mgan-2d/grid25", "mgan-2d", [], ["modes", "hq", "rkl"]),
    ("gan-2d/grid25", "gan-2d", [], ["modes", "hq", "rkl"]),
    ("mgan-2d/ring8", "mgan-2d", ["data.name=ring8"], ["modes", "hq", "rkl"]),
    ("mgan-ring/ring8", "mgan-ring", [], ["modes", "hq", "rkl"]),
    ("gan-2d/ring8", "gan-2d", ["data.name=ring8"], ["modes", "hq", "rkl"]),
    ("cogan-edges/mnist", "cogan-edges", [], ["agreement", "fid"]),
    ("cogan-negative/mnist", "cogan-negative", [], ["agreement", "fid"]),
    ("acgan/mnist", "acgan", [], ["accuracy", "fid"]),
    ("madgan/grid25", "madgan", MADGAN_2D, ["modes", "hq", "rkl"]),
    ("seed/mnist", "seed", [], ["fid", "accuracy"]),
    ("seed-gd/mnist", "seed-gd", [], ["fid", "accuracy"]),
    ("independent/mnist", "independent", [], ["fid", "accuracy"]),
    # issue 5: fixed weights against a loss-based and a gradient-based balancer
    ("pertask+fixed", "pertask", [], ["fid", "accuracy"]),
    ("pertask+uncertainty", "pertask", both("uncertainty"), ["fid", "accuracy"]),
    ("pertask+pcgrad", "pertask", both("pcgrad"), ["fid", "accuracy"]),
    ("gman+fixed", "gman", ["balance.g=fixed", "balance.g_options={}"], ["fid"]),
    ("gman+gman", "gman", [], ["fid"]),
    ("gman+hypervolume", "gman", ["balance.g=hypervolume", "balance.g_options={}"], ["fid"]),
]


METRICS_OF: dict[str, list[str]] = {}  # preset → metrics to evaluate when it names none


def run_one(out: Path, preset: str, overrides: list[str], seed: int) -> dict:
    tag = hashlib.sha1(" ".join(overrides).encode()).hexdigest()[:8] if overrides else "default"
    run_dir = out / f"{preset}-{tag}-s{seed}"
    cmd = [
        "mtgan", "train", preset, *overrides, f"seed={seed}", "train.threads=1",
        "train.loggers=[jsonl]", "--out", str(run_dir), "--quiet",
    ]  # fmt: skip
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    if not (run_dir / "eval.json").exists():  # presets without eval.metrics: evaluate now
        metrics = ",".join(m for m in METRICS_OF.get(preset, []))
        subprocess.run(["mtgan", "eval", str(run_dir), "--metrics", metrics], check=True,
                       capture_output=True)  # fmt: skip
    evaluation = json.loads((run_dir / "eval.json").read_text())
    return {"command": " ".join(cmd[:-4] + cmd[-3:-2]), "wall_s": wall, "eval": evaluation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", help="row names to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/family"))
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.only or r[0] in args.only]
    for _, preset, _, metrics in rows:
        METRICS_OF.setdefault(preset, metrics)
    jobs = [(row, seed) for row in rows for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, args.out, r[1], r[2], s) for r, s in jobs]
        results = [f.result() for f in futures]

    table = []
    print("| preset / data | " + " | ".join(["metric", "mean ± std", "per seed"]) + " | steps | "
          "wall per run |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for row in rows:
        mine = [res for (r, _), res in zip(jobs, results) if r is row]
        steps = mine[0]["eval"]["step"]
        walls = [m["wall_s"] for m in mine]
        entry = {"row": row[0], "steps": steps, "wall_s": walls, "commands": []}
        for metric in row[3]:
            values = [m["eval"][metric] for m in mine]
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            entry[metric] = values
            print(
                f"| {row[0]} | {metric} | {mean:.4g} ± {std:.2g} | "
                f"{', '.join(f'{v:.4g}' for v in values)} | {steps} | "
                f"{statistics.fmean(walls):.0f} s |"
            )
        entry["commands"] = [m["command"] for m in mine]
        table.append(entry)
    print()
    for entry in table:
        print(f"{entry['row']}: {entry['commands'][0]}")
    print(json.dumps(table), file=sys.stdout)


if __name__ == "__main__":
    main()
