"""The live generators' KID (not their EMA) of every finished run of the named benches:

    python benchmarks/claims/live.py e1-plain e1-augment e2-9-fresh ...

Runs `mtgan eval RUN --metrics kid --live` on each run in runs/claims/<bench>/runs.csv that
has no eval-live.json yet (the final checkpoint; eval.json is kept), then writes each run's
live KID to benchmarks/claims/<bench>/live.csv (path, kid): what the tables' --live view
reads (`live_kid`), so it is rebuilt from the repository alone.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def live_kid(bench: Path) -> dict[str, float]:
    """runs.csv path → the live KID, from the live.csv in `bench` ({} without one)."""
    path = bench / "live.csv"
    if not path.exists():
        return {}
    return {row["path"]: float(row["kid"]) for row in csv.DictReader(path.open())}


def main(names: list[str]) -> None:
    for name in names:
        runs = ROOT / "runs" / "claims" / name / "runs.csv"
        if not runs.exists():
            sys.exit(f"no {runs}")
        rows = []
        for row in csv.DictReader(runs.open()):
            result = ROOT / row["path"] / "eval-live.json"
            if not result.exists():
                command = ["mtgan", "eval", row["path"], "--metrics", "kid", "--live"]
                subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            rows.append((row["path"], json.loads(result.read_text())["kid"]))
        out = ROOT / "benchmarks" / "claims" / name / "live.csv"
        with out.open("w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([("path", "kid"), *rows])
        print(f"{name}: {len(rows)} runs → {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
