"""Run by torchrun from test_sync_bn_presets.py: trains every preset with train.sync_bn, one
after the other in the same process group; rank 0 saves the weights, or the message of a
preset that 2 processes cannot split (a ConfigError, raised on every rank alike)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from matrix import PRESETS, sync_bn_config

from mtgan.errors import ConfigError
from mtgan.training import Trainer
from mtgan.training.distributed import init_distributed, shutdown

STEPS = 6


def main(out: Path) -> None:
    info = init_distributed(torch.device("cpu"), timeout_s=120)
    for preset in PRESETS:
        try:
            trainer = Trainer(sync_bn_config(preset), dist=info)
        except ConfigError as e:
            if info.main:
                (out / f"{preset}.refused").write_text(str(e))
            continue
        for _ in range(STEPS):
            trainer.train_step()
        if info.main:
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            torch.save(weights, out / f"{preset}.pt")
    shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
