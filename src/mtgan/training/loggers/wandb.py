"""Weights & Biases, offline unless the user chose a mode (`WANDB_MODE=online`): the run's files
go to `RUN/wandb` (or `WANDB_DIR`), and `wandb sync RUN/wandb/offline-run-*` uploads them later.

One wandb run per training process, named after the run directory, with the resolved config;
`step` is the x axis of every metric (`define_metric`), so a resumed or rolled-back run, whose
steps go back, logs where wandb's own counter would refuse.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mtgan.training.loggers.base import numbers

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir


class WandbLogger:
    def __init__(self, run: RunDir, config: ExperimentConfig, step: int):
        import wandb

        # The user's environment decides where it is set; offline, into the run, where it is not.
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "mtgan"),
            name=run.path.name,
            dir=None if "WANDB_DIR" in os.environ else str(run.wandb.parent),
            mode=None if "WANDB_MODE" in os.environ else "offline",
            config=config.model_dump(mode="json"),
        )
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def scalars(self, record: dict[str, Any]) -> None:
        self.run.log({"step": record["step"], **dict(numbers(record))})

    def close(self, ok: bool = True) -> None:
        self.run.finish(exit_code=0 if ok else 1)
