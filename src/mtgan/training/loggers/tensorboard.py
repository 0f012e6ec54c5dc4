"""Scalars to TensorBoard event files in `RUN/tb` (`tensorboard --logdir RUN/tb`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtgan.training.loggers.base import numbers

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir


class TensorBoardLogger:
    def __init__(self, run: RunDir, config: ExperimentConfig, step: int):
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run hides the events written past its checkpoint before the interruption.
        self.writer = SummaryWriter(str(run.tensorboard), purge_step=step or None)

    def scalars(self, record: dict[str, Any]) -> None:
        for key, value in numbers(record):
            self.writer.add_scalar(key, value, record["step"])

    def close(self, ok: bool = True) -> None:
        self.writer.close()
