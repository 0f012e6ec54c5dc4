"""Run by torchrun from test_ddp_balancers.py: trains the 2-vs-1 configuration with every
balancer, one after the other in the same process group, and has rank 0 save the weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from matrix import BALANCER_NAMES, DDP_SETUPS, ddp_config

from mtgan.training import Trainer
from mtgan.training.distributed import init_distributed, shutdown

STEPS = 20


def main(out: Path) -> None:
    info = init_distributed(torch.device("cpu"), timeout_s=120)
    runs = [(setup, name) for setup in DDP_SETUPS for name in BALANCER_NAMES]
    for setup, name in runs:
        trainer = Trainer(ddp_config(setup, name), dist=info)
        for _ in range(STEPS):
            trainer.train_step()
        if info.main:
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            torch.save(weights, out / f"{setup}-{name}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
