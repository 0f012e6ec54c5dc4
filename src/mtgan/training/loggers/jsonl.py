"""metrics.jsonl, the run's own record: always on (RunDir writes it, a resume truncates it to
the checkpoint, reports and `Run.metrics()` read it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir


class JsonlLogger:
    def __init__(self, run: RunDir, config: ExperimentConfig, step: int):
        self.run = run

    def scalars(self, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)

    def close(self, ok: bool = True) -> None:
        pass
