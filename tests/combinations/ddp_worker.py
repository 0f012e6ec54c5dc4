"""Run by torchrun from test_ddp_balancers.py: trains the 2-vs-1 configuration with every
balancer, one after the other in the same process group, and has rank 0 save the weights."""

from __future__ import annotations

import sys
from pathlib import Path

from matrix import BALANCER_NAMES, DDP_SETUPS, ddp_config
from two_processes import train_and_save

STEPS = 20


def main(out: Path) -> None:
    runs = [(s, n) for s in DDP_SETUPS for n in BALANCER_NAMES]
    train_and_save(((f"{s}-{n}", ddp_config(s, n)) for s, n in runs), STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
