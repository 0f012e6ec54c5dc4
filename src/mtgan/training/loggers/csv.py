"""`RUN/metrics.csv`: metrics.jsonl as one wide table, what pandas.read_csv or a spreadsheet
opens as is: one row per record (a training log step, or an evaluation), `step` first, then one
column per key in the order keys first appeared; a record leaves the columns it lacks empty.

A key first seen mid-run (the first evaluation's) widens the header: the file is rewritten,
a handful of times per run; every other record is one appended row. Opened on a resumed run, the
table is rebuilt from metrics.jsonl, which the resume has cut at its checkpoint, so the two agree.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from mtgan.atomic import write_text_atomic

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir


class CsvLogger:
    def __init__(self, run: RunDir, config: ExperimentConfig, step: int):
        self.path = run.metrics_csv
        self.columns: list[str] = ["step"]
        # metrics.jsonl's events (rollback, stop) are not metric rows
        self.write([r for r in run.read_metrics() if "event" not in r])

    def scalars(self, record: dict[str, Any]) -> None:
        if any(key not in self.columns for key in record):
            with self.path.open(newline="") as f:
                self.write([*csv.DictReader(f), record])
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(record)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """The whole file, header from every row's keys (the current columns first)."""
        for row in rows:
            self.columns += [key for key in row if key not in self.columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, text.getvalue())

    def close(self, ok: bool = True) -> None:
        pass
