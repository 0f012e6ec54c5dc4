"""Does timing many trainers in one process (speed.py) slow a row? (issue 24)

    python benchmarks/interleave_cost.py [--rounds 12] [--steps 8]

Times speed-mlp at batch 256 (bf16 and fp32) alone and right after a step of another trainer
(pertask K=10 at batch 64, or speed-mlp at batch 64), in alternating blocks of `--steps` steps
over `--rounds` rounds, so drift of the machine touches every case alike. Prints the median and
quartiles (ms) of each case: the cost of another trainer's step evicting this one's caches.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.tuner import tune

QUIET = ["train.progress=false", "train.loggers=[jsonl]", "train.device=cpu"]


def build(preset: str, overrides: list[str]) -> Trainer:
    config = load_config(preset, [*QUIET, *overrides])
    return Trainer(config, verdicts=tune(config, build=lambda c: Trainer(c)))


def ms(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    rows = {p: build("speed-mlp", ["train.batch_size=256", f"train.precision={p}"])
            for p in ("bf16", "fp32")}  # fmt: skip
    others = {
        "pertask K=10": build("pertask", ["train.batch_size=64", "train.ema=null",
                                          "model.g_norm=batch", "model.d_norm=none"]),
        "speed-mlp B=64": build("speed-mlp", ["train.batch_size=64"]),
    }  # fmt: skip
    for t in [*rows.values(), *others.values()]:
        for _ in range(3):
            t.train_step()
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for p, row in rows.items():
            times.setdefault(f"{p} alone", []).extend(ms(row.train_step) for _ in range(args.steps))
            for name, other in others.items():
                for _ in range(args.steps):
                    other.train_step()
                    times.setdefault(f"{p} after {name}", []).append(ms(row.train_step))
    for case, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        print(f"{case:28s} {statistics.median(values):6.1f} ms  (quartiles {q1:.1f}, {q3:.1f})")


if __name__ == "__main__":
    main()
