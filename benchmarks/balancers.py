"""What each balancer costs: seconds per training step relative to fixed weights, measured in
one process with the runners interleaved (so machine noise hits all of them alike).

    python benchmarks/balancers.py [--steps 30] [--rounds 3] [--presets pertask gman]

The balancer is set for both phases (`balance.d` and `balance.g`); `gman` keeps its own G
balancer when "fixed" is measured there, since that is the preset. Targets (issue 5): loss-based
≤ 1.05×, gradient-based ≤ 1.5× the fixed-weight step. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mtgan.balance import BALANCERS
from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.trainer import build_tuned


def make(preset: str, balancer: str, threads: int, extra: list[str]) -> Trainer:
    overrides = ["train.progress=false", f"balance.d={balancer}", f"train.threads={threads}"]
    overrides += extra
    if not (preset == "gman" and balancer == "fixed"):
        overrides += [f"balance.g={balancer}", "balance.g_options={}"]
    config = load_config(preset, overrides)
    trainer = build_tuned(config)  # as `mtgan train` does
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=["pertask", "gman"])
    parser.add_argument("--balancers", nargs="+", default=sorted(set(BALANCERS) - {"torchjd"}))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    args = parser.parse_args()
    table: dict[str, dict[str, float]] = {}
    for preset in args.presets:
        names = [b for b in args.balancers if b != "gman" or preset == "gman"]
        trainers = {name: make(preset, name, args.threads, args.set) for name in names}
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        times: dict[str, list[float]] = {name: [] for name in names}
        for trainer in trainers.values():  # warm-up
            for _ in range(5):
                trainer.train_step()
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step()
                times[name].append((time.perf_counter() - t0) / args.steps)
        base = statistics.median(times["fixed"])
        kinds = {n: "gradient" if BALANCERS[n].needs_gradients else "loss" for n in names}
        print(f"\n{preset}: {base * 1e3:.1f} ms/step with fixed weights")
        print(f"{'balancer':12s} {'kind':9s} {'ms/step':>8s} {'× fixed':>8s}")
        table[preset] = {}
        for name in names:
            t = statistics.median(times[name])
            table[preset][name] = t / base
            print(f"{name:12s} {kinds[name]:9s} {t * 1e3:8.1f} {t / base:8.2f}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
