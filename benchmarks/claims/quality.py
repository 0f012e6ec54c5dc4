"""Memorisation and classification accuracy score (CAS) of every finished run of the named
benches, beside their KID: what KID alone cannot say at 10 images per task (a copier of its
10 images can score well).

    python benchmarks/claims/quality.py e1-long-plain e1-long-augment ...

Evaluates each run in runs/claims/<bench>/runs.csv on a copy of its run directory under
runs/claims/quality/ (`mtgan eval COPY --metrics memorisation,cas,kid`: the bench's own
eval.json stays as it was), once, writes benchmarks/claims/<bench>/quality.csv (path, kid,
memorisation, memorisation_excess, cas, cas_real) and prints their mean ± std per contender.
About 100 s a run on one core.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from live import ROOT, bench_runs, write_table

KEYS = ("kid", "memorisation", "memorisation_excess", "cas", "cas_real")
METRICS = "memorisation,cas,kid"


def evaluated(run: Path) -> dict[str, float]:
    """The copy's eval.json, evaluated now unless a finished copy is there."""
    copy = ROOT / "runs" / "claims" / "quality" / run.relative_to(ROOT / "runs" / "claims")
    result = copy / "eval.json"
    if not (result.exists() and all(k in json.loads(result.read_text()) for k in KEYS)):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run, copy)
        command = ["mtgan", "eval", str(copy), "--metrics", METRICS]
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main(names: list[str]) -> None:
    for name in names:
        rows = []
        contenders: dict[str, list[dict[str, float]]] = defaultdict(list)
        for row in bench_runs(name):
            values = evaluated(ROOT / row["path"])
            rows.append((row["path"], *(values[k] for k in KEYS)))
            contenders[f"{row['preset']} {row.get('data.per_task', '')}"].append(values)
        write_table(name, "quality.csv", ("path", *KEYS), rows)
        print("| contender | " + " | ".join(KEYS) + " |")
        print("|---|" + "---|" * len(KEYS))
        for contender, runs_of in contenders.items():
            cells = []
            for k in KEYS:
                xs = [v[k] for v in runs_of]
                std = statistics.stdev(xs) if len(xs) > 1 else 0.0
                cells.append(f"{statistics.fmean(xs):.3g} ± {std:.2g}")
            print(f"| {contender} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
