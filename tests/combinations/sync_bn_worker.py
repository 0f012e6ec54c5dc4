"""Run by torchrun from test_sync_bn_presets.py: trains every preset with train.sync_bn, one
after the other in the same process group; rank 0 saves the weights, or the message of a
preset that 2 processes cannot split."""

from __future__ import annotations

import sys
from pathlib import Path

from matrix import PRESETS, sync_bn_config
from two_processes import train_and_save

STEPS = 6


def main(out: Path) -> None:
    train_and_save(((p, sync_bn_config(p)) for p in PRESETS), STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
