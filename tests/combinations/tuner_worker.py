"""Run by torchrun from tests/training/test_tuner.py: both ranks tune a run whose switches are
all on auto (racing them together, rank 0 measuring) and each writes what it decided."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.distributed import barrier, init_distributed
from mtgan.training.tuner import tune

OVERRIDES = [
    "data.tasks=[[0],[1],[7]]",
    "data.limit=40",
    "model.z_dim=8",
    "model.arch=dcgan",
    "model.g_hidden=[16,8]",
    "model.d_hidden=[8,16]",
    "train.batch_size=8",
    "train.device=cpu",
]


def main(out: Path) -> None:
    info = init_distributed(torch.device("cpu"), timeout_s=120)
    config = load_config("pertask", OVERRIDES)
    verdicts = tune(config, dist=info, cache=out, build=lambda c: Trainer(c, dist=info))
    chosen = {name: v.value for name, v in verdicts.items()}
    (out / f"rank{info.rank}.json").write_text(json.dumps(chosen))
    barrier(info)
    sys.stdout.flush()
    os._exit(0)  # past gloo's teardown (two_processes.train_and_save says why)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
