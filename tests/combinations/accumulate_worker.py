"""Run by torchrun from test_accumulate.py: 2 processes, each accumulating 2 micro-batches of
its shard (4 parts of the global batch in all); rank 0 saves the weights."""

from __future__ import annotations

import sys
from pathlib import Path

from matrix import tiny
from two_processes import train_and_save

from mtgan.config import load_config

STEPS = 10
# GP (each part takes its columns of one global draw) and 5 discriminators splitting a batch
SETUPS = {"pertask-gp": ("pertask", ["loss.gp=1"]), "gman": ("gman", ["balance.g=fixed"])}


def accumulate_config(setup: str, accumulate: int):
    preset, extra = SETUPS[setup]
    overrides = tiny(preset, "train.batch_size=40", "model.g_norm=none", *extra)
    return load_config(preset, [*overrides, f"train.accumulate={accumulate}"])


def main(out: Path) -> None:
    train_and_save(((s, accumulate_config(s, 2)) for s in SETUPS), STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
