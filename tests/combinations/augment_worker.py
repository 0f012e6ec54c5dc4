"""Run by torchrun from test_augment_presets.py: every loss.augment setup trained on 2
processes (one of them accumulating 2 micro-batches per process as well); rank 0 saves the
weights."""

from __future__ import annotations

import sys
from pathlib import Path

from matrix import AUGMENT, tiny
from two_processes import train_and_save

from mtgan.config import load_config

STEPS = 10
FIXED = ["balance.d=fixed", "balance.g=fixed"]
# name → (preset, overrides, micro-batches per process on 2 processes)
SETUPS = {
    # one D per task; GP's and R1's critic is D ∘ augment
    "pertask-gp-r1": ("pertask", ["loss.gp=1", "loss.r1=1", "loss.r1_every=2"], 1),
    # 10 generators pooled on one D: the fakes' draws lie in blocks, one per generator
    "mgan": ("mgan", FIXED, 1),
    # 5 discriminators splitting one task's batch
    "gman": ("gman", FIXED, 1),
    # rotations of augmented reals (D) and fakes (G)
    "ssgan": ("ssgan", ["loss.rotation_g=0.2"], 1),
    # ADA's p from every part's D(real) signs, summed over processes and micro-batches
    "pertask-ada": (
        "pertask",
        ["loss.augment_target=0.6", "loss.augment_p=0.5", "loss.augment_ramp=40"],
        2,
    ),
    # 2 processes × 2 micro-batches: 4 parts of one global draw
    "pertask-accumulate": ("pertask", ["loss.gp=1", "loss.r1=1", "loss.r1_every=2"], 2),
}


def augment_config(setup: str, accumulate: int = 1):
    preset, extra, _ = SETUPS[setup]
    overrides = tiny(preset, "train.batch_size=40", "model.g_norm=none", AUGMENT, *extra)
    return load_config(preset, [*overrides, f"train.accumulate={accumulate}"])


def main(out: Path) -> None:
    runs = ((name, augment_config(name, SETUPS[name][2])) for name in SETUPS)
    train_and_save(runs, STEPS, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
