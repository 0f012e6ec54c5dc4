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


def bench_runs(name: str) -> list[dict[str, str]]:
    """The rows of runs/claims/<name>/runs.csv (one per finished run); exits without one."""
    runs = ROOT / "runs" / "claims" / name / "runs.csv"
    if not runs.exists():
        sys.exit(f"no {runs}")
    return list(csv.DictReader(runs.open()))


def write_table(name: str, file: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    """benchmarks/claims/<name>/<file>: the CSV the repository keeps beside the bench's tables."""
    out = ROOT / "benchmarks" / "claims" / name / file
    with out.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    print(f"{name}: {len(rows)} runs → {out.relative_to(ROOT)}")


def main(names: list[str]) -> None:
    for name in names:
        rows = []
        for row in bench_runs(name):
            result = ROOT / row["path"] / "eval-live.json"
            if not result.exists():
                command = ["mtgan", "eval", row["path"], "--metrics", "kid", "--live"]
                subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            rows.append((row["path"], json.loads(result.read_text())["kid"]))
        write_table(name, "live.csv", ("path", "kid"), rows)


if __name__ == "__main__":
    main(sys.argv[1:])
