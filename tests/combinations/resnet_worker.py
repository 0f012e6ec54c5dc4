"""Run by torchrun from test_resnet_presets.py: the resnet factory under image presets on 2
processes (batch norm synchronised: its statistics are of the global batch); rank 0 saves the
weights."""

from __future__ import annotations

import sys
from pathlib import Path

from matrix import tiny
from two_processes import train_and_save

from mtgan.config import load_config

STEPS = 4
PRESETS = ["pertask", "mgan", "ssgan", "acgan", "cgan"]
RESNET = ["model.arch=resnet", "model.options.width=8", "train.sync_bn=true"]


def resnet_config(preset: str, accumulate: int = 1):
    extra = ["train.batch_size=20", "balance.d=fixed", "balance.g=fixed"]
    overrides = tiny(preset, *RESNET, *extra, f"train.accumulate={accumulate}")
    return load_config(preset, overrides)


def main(out: Path) -> None:
    train_and_save(((p, resnet_config(p)) for p in PRESETS), STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
