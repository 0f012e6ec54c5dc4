"""Seconds per training step of presets, measured in one process so the numbers compare.

    python benchmarks/step_time.py pertask independent seed baseline [--steps 200] [--warmup 20]

Prints one line per preset (median and mean over timed steps) and a final JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mtgan.config import load_config
from mtgan.training.trainer import build_tuned


def time_preset(name: str, steps: int, warmup: int, overrides: list[str]) -> dict[str, float]:
    config = load_config(name, ["train.progress=false", *overrides])
    trainer = build_tuned(config)  # as `mtgan train` does
    for _ in range(warmup):
        trainer.train_step()
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        trainer.train_step()
        sync()  # CUDA kernels run asynchronously: time the work, not the launches
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "mean_s": statistics.fmean(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=["pertask", "independent"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every preset")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    for name in args.presets:
        results[name] = time_preset(name, args.steps, args.warmup, args.set)
        r = results[name]
        print(
            f"{name:12s} {r['median_s'] * 1e3:8.1f} ms/step (median)  {r['mean_s'] * 1e3:8.1f} mean"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
