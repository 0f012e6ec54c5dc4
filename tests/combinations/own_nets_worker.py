"""Run by torchrun from tests/nets/test_own_networks.py: a user's own networks (own_nets.py)
trained on 2 processes, plain and accumulating 2 micro-batches; rank 0 saves the weights."""

from __future__ import annotations

import sys
from pathlib import Path

from two_processes import train_and_save

from mtgan.config import load_config

STEPS = 6
TINY = [
    "data.tasks=[[0],[1],[7]]",
    "data.limit=40",
    "model.z_dim=8",
    "model.arch=own_nets:build",
    "model.options.width=16",
    "model.options.norm=false",  # batch statistics are per process and per micro-batch
    "train.batch_size=40",
    "train.precision=fp32",
    "train.keep_heap=false",
    "train.device=cpu",
]
SETUPS = {"plain": [], "pcgrad": ["balance.g=pcgrad"], "accumulate": ["train.accumulate=2"]}


def config(setup: str):
    return load_config("pertask", [*TINY, *SETUPS[setup]])


def main(out: Path) -> None:
    train_and_save(((name, config(name)) for name in SETUPS), STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
