"""Scalars to TensorBoard (`RUN/tb`), when the optional extra is installed and wanted."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TensorBoard:
    """Scalars to TensorBoard when it is installed and wanted; silently nothing otherwise."""

    def __init__(self, path: Path, enabled: bool):  # path: RunDir.tensorboard
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                return
            self.writer = SummaryWriter(str(path))

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
