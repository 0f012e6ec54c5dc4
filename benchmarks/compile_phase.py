"""Would `torch.compile` of each phase's whole forward-and-gradient pay on this machine?

    python benchmarks/compile_phase.py [PRESET] [--rounds 5] [--steps 15] [--set KEY=VALUE ...]

Issue 16 part 3 asks for the whole step compiled as the CPU counterpart of a CUDA graph. The
engine cannot be compiled as it is: the D phase generates the step's fakes and the G phase
differentiates through that same graph, so no compiled region holds a phase's autograd.grad
alone ("Trying to backward through the graph a second time"). This measures the nearest thing
that compiles: every phase self-contained (its fakes generated again: `invalidate` replaced by
`release`), its `MicroBatches.gradients` (networks, losses, torch.autograd.grad) compiled with
`torch._dynamo.config.trace_autograd_ops`. Three trainers in one process, timed in
interleaved rounds (median ms per step):
  eager                 the engine as it is
  eager_regenerate      the fakes generated again by the G phase (the cost of self-containment)
  compiled_regenerate   the same, each phase's gradients compiled
Prints one line per row and a final JSON object. Results: benchmarks/results/design-notes.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mtgan.config import load_config
from mtgan.training import Trainer
from mtgan.training.trainer import build_tuned


def regenerating(trainer: Trainer) -> Trainer:
    """Each phase generates its own fakes: no graph crosses from one phase into the next."""
    contexts = trainer.micro.contexts

    def fresh(*args, **kwargs):
        out = contexts(*args, **kwargs)
        for ctx in out:
            ctx.invalidate = ctx.release
        return out

    trainer.micro.contexts = fresh
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="speed-mlp")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per row and round")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every row")
    args = parser.parse_args()
    overrides = ["train.progress=false", *args.set]
    torch._dynamo.config.trace_autograd_ops = True
    rows = {
        "eager": build_tuned(load_config(args.preset, overrides)),  # as `mtgan train` does
        "eager_regenerate": regenerating(Trainer(load_config(args.preset, overrides))),
        "compiled_regenerate": regenerating(Trainer(load_config(args.preset, overrides))),
    }
    heap = rows["eager"].verdicts["keep_heap"]
    compiled = rows["compiled_regenerate"]
    compiled.micro.gradients = torch.compile(compiled.micro.gradients)
    t0 = time.perf_counter()
    for trainer in rows.values():
        for _ in range(3):  # warm-up; the compiled row compiles here
            trainer.train_step()
    warm_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(args.rounds):
        order = list(rows) if r % 2 == 0 else list(reversed(rows))
        for name in order:
            for _ in range(args.steps):
                start = time.perf_counter()
                rows[name].train_step()
                times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.preset}")
    print(f"  precision {rows['eager'].precision}; {heap.describe()}")
    for name, value in ms.items():
        print(f"  {name:22s} {value:7.1f} ms  ({value / ms['eager']:.2f}× eager)")
    print(json.dumps({"preset": args.preset, "ms": ms, "warmup_and_compile_s": warm_s}))


if __name__ == "__main__":
    main()
