"""Run by torchrun from test_accumulate.py: 2 processes, each accumulating 2 micro-batches of
its shard (4 parts of the global batch in all); rank 0 saves the weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from matrix import tiny

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.distributed import init_distributed, shutdown

STEPS = 10
# GP (each part takes its columns of one global draw) and 5 discriminators splitting a batch
SETUPS = {"pertask-gp": ("pertask", ["loss.gp=1"]), "gman": ("gman", ["balance.g=fixed"])}


def accumulate_config(setup: str, accumulate: int):
    preset, extra = SETUPS[setup]
    overrides = tiny(preset, "train.batch_size=40", "model.g_norm=none", *extra)
    return load_config(preset, [*overrides, f"train.accumulate={accumulate}"])


def main(out: Path) -> None:
    info = init_distributed(torch.device("cpu"), timeout_s=120)
    for setup in SETUPS:
        trainer = Trainer(accumulate_config(setup, 2), dist=info)
        for _ in range(STEPS):
            trainer.train_step()
        if info.main:
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            torch.save(weights, out / f"{setup}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
