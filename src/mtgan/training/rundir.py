"""The run directory: resolved config, metrics (JSONL), TensorBoard events, samples, checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mtgan.atomic import write_text_atomic
from mtgan.config import ExperimentConfig, load_config, save_config
from mtgan.errors import RunError

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
PRECISION = "precision.json"


def default_run_dir(preset: str) -> Path:
    return Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """Paths and writers of one run. Only this class knows the directory layout."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def create(self, config: ExperimentConfig) -> None:
        """Make the directory and save the resolved config; fail early if it is not writable."""
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
            save_config(config, self.config_path)
        except OSError as e:
            raise RunError(f"cannot write the run directory {self.path}: {e.strerror}") from None

    def load_config(self, overrides: list[str] | None = None) -> ExperimentConfig:
        if not self.config_path.exists():
            raise RunError(f"{self.path} is not a run directory (no {CONFIG})")
        return load_config(self.config_path, overrides)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a crash mid-write: not a record
                continue
        return records

    def write_eval(self, result: dict[str, Any]) -> None:
        """eval.json: the last evaluation of this run (written whole, then renamed)."""
        write_text_atomic(self.path / "eval.json", json.dumps(result, indent=1))

    def write_precision(self, record: dict[str, Any]) -> None:
        """precision.json: what `train.precision` resolved to on this machine, and why."""
        write_text_atomic(self.path / PRECISION, json.dumps(record, indent=1))

    def read_precision(self) -> dict[str, Any]:
        return json.loads((self.path / PRECISION).read_text())

    def eval_step(self) -> int | None:
        """The step of the last final evaluation (eval.json), None if there is none."""
        try:
            return int(json.loads((self.path / "eval.json").read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past `after_step` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        # A crash while rewriting must not lose the history.
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))


class TensorBoard:
    """Scalars to TensorBoard when it is installed and wanted; silently nothing otherwise."""

    def __init__(self, path: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                return
            self.writer = SummaryWriter(str(path / "tb"))

    def scalars(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
