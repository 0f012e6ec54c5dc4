"""Where a training step's time goes, by kind of op, beside each kind's floor (issue 24, 3–4).

    python benchmarks/step_profile.py [--preset speed-mlp] [--batch 256] [--precisions fp32,bf16]
                                      [--steps 20] [--threads N] [--set KEY=VALUE ...]

For each precision: the step's median time without the profiler, then per kind of op its
profiler self time per step, its share of the step, and its floor:
  matmul        mm/bmm/addmm/baddbmm and convolutions; floor: the step's own matrix products
                back to back at this precision (benchmarks/_timing.py matmul_sequence)
  optimizer     fused Adam, foreach ops (EMA) and the optimizer's Python
  batch norm    forward and backward
  casts/copies  _to_copy and copy_ (autocast's casts, and any other copy)
  reductions    sum/mean (bias gradients, losses)
  elementwise   every other aten op (activations, their backward, adds, fills)
  other         everything the profiler sees outside aten ops (autograd, Python)
Memory floor of a kind: the bytes its ops must move / the machine's copy bandwidth. Bytes are
counted exactly in one step by a dispatch mode (tensor arguments read, outputs and mutated
arguments written, at their real dtypes); the bandwidth is a large tensor copy's (bytes read +
written per second) at the same thread count. A kind near its memory floor has nothing left to
close but the traffic itself. Under bf16 it also counts the casts of one step: parameters to
bf16, gradients back to float32, and activations.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from _timing import count_step, matmul_sequence
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mtgan.config import load_config
from mtgan.training import Trainer

KINDS = ("matmul", "optimizer", "batch norm", "casts/copies", "reductions", "elementwise", "other")
MATMUL = {"mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward"}
MATMUL_PREFIX = ("mkldnn_convolution", "_convolution", "conv", "mkldnn_linear")
CASTS = {"copy_", "_to_copy", "to"}
REDUCTIONS = {"sum", "mean"}
VIEWS = {
    "view",
    "reshape",
    "t",
    "transpose",
    "expand",
    "unsqueeze",
    "squeeze",
    "permute",
    "as_strided",
    "select",
    "slice",
    "unflatten",
    "flatten",
    "alias",
    "detach",
    "empty",
    "empty_like",
    "empty_strided",
    "split",
    "unbind",
    "narrow",
    "resolve_conj",
    "lift_fresh",
}


def kind_of(name: str) -> str:
    """The kind of a profiler key ("aten::bmm", "Optimizer.step#Adam.step") or aten op name."""
    if name.startswith("Optimizer."):
        return "optimizer"
    if not name.startswith(("aten::", "aten.")):
        return "other"
    op = name.split("::")[-1].split(".")[-1] if "::" in name else name.split(".")[1]
    if op in MATMUL or op.startswith(MATMUL_PREFIX):
        return "matmul"
    if op.startswith(("_fused_adam", "_foreach_")):  # _fused_adam also covers _fused_adamw
        return "optimizer"
    if "batch_norm" in op:
        return "batch norm"
    if op in CASTS:
        return "casts/copies"
    if op in REDUCTIONS:
        return "reductions"
    if op in VIEWS:
        return "other"
    return "elementwise"


class Casts(TorchDispatchMode):
    """Dtype casts (`_to_copy` to another dtype) in the dispatched calls while active, by what
    was cast: a parameter to the low precision (matched by shape), a gradient back to float32
    (a low-precision tensor of a parameter's shape), or an activation."""

    def __init__(self, parameter_shapes: set[tuple[int, ...]]) -> None:
        super().__init__()
        self.shapes = parameter_shapes
        self.count: dict[str, int] = defaultdict(int)
        self.elements: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        dtype = kwargs.get("dtype")
        if func.overloadpacket.__name__ == "_to_copy" and dtype not in (None, args[0].dtype):
            src = args[0]
            if tuple(src.shape) not in self.shapes:
                what = "activations"
            elif src.dtype == torch.float32:
                what = "weights to low precision"
            else:
                what = "gradients to float32"
            self.count[what] += 1
            self.elements[what] += src.numel()
        return out


class BytesMoved(TorchDispatchMode):
    """Bytes each kind of op reads and writes in the dispatched calls while active."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = f"aten.{func.overloadpacket.__name__}"
        kind = kind_of(name)
        if kind != "other":
            schema = func._schema.arguments
            moved = 0
            for i, arg in enumerate(schema):
                value = args[i] if i < len(args) else kwargs.get(arg.name)
                size = sum(t.nbytes for t in tree_leaves(value) if isinstance(t, torch.Tensor))
                written = arg.alias_info is not None and arg.alias_info.is_write
                moved += size * (2 if written else 1)  # read, and written back if mutated
            if not any(r.alias_info for r in func._schema.returns):  # new outputs are written
                moved += sum(t.nbytes for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            self.bytes[kind] += moved
        return out


def copy_bandwidth() -> float:
    """Bytes read + written per second by a 256 MiB float32 copy (least of 5), at the threads
    torch is set to."""
    src = torch.randn(64 * 2**20)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(_timed(lambda: dst.copy_(src)) for _ in range(5))
    return 2 * src.nbytes / best


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def step_ms(trainer: Trainer, steps: int) -> float:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def profile_precision(args: argparse.Namespace, precision: str, bandwidth: float) -> dict:
    overrides = [
        "train.progress=false",
        f"train.precision={precision}",
        f"train.batch_size={args.batch}",
        f"train.threads={args.threads}",
        *args.set,
    ]
    trainer = Trainer(load_config(args.preset, overrides))
    for _ in range(10):
        trainer.train_step()
    median = step_ms(trainer, args.steps)
    with BytesMoved() as moved:
        trainer.train_step()
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    with Casts({tuple(p.shape) for p in params}) as casts:
        trainer.train_step()
    shapes = count_step(trainer.train_step).matmuls
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    sequence = matmul_sequence(shapes, trainer.device, dtype)
    sequence()
    matmul_floor = min(_timed(sequence) for _ in range(10)) * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            trainer.train_step()
    self_ms: dict[str, float] = defaultdict(float)
    top: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for event in prof.key_averages():
        ms = event.self_cpu_time_total / 1e3 / args.steps
        kind = kind_of(event.key)
        self_ms[kind] += ms
        top[kind].append((event.key, ms))
    total = sum(self_ms.values())
    rows = {}
    for kind in KINDS:
        moved_bytes = moved.bytes.get(kind, 0)
        floor = matmul_floor if kind == "matmul" else moved_bytes / bandwidth * 1e3
        rows[kind] = {
            "ms": self_ms.get(kind, 0.0),
            "share": self_ms.get(kind, 0.0) / total if total else 0.0,
            "mbytes": moved_bytes / 1e6,
            "floor_ms": floor if kind == "matmul" or moved_bytes else None,  # no bytes: no floor
            "top": [k for k, _ in sorted(top[kind], key=lambda kv: -kv[1])[:3]],
        }
    cast = {
        what: {"per_step": casts.count[what], "melements": casts.elements[what] / 1e6}
        for what in casts.count
    }
    return {
        "step_ms": median,
        "profiled_ms": total,
        "kinds": rows,
        "parameter_tensors": len(params),
        "casts": cast,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="speed-mlp")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bandwidth = copy_bandwidth()
    cpuinfo = Path("/proc/cpuinfo")
    words = cpuinfo.read_text().split() if cpuinfo.exists() else []
    flags = sorted({f for f in words if "bf16" in f})
    print(f"{args.preset}, batch {args.batch}, {args.threads} threads; bf16 flags: {flags}")
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + written)")
    result: dict[str, Any] = {
        "preset": args.preset,
        "batch": args.batch,
        "threads": args.threads,
        "bandwidth_gbs": bandwidth / 1e9,
    }
    for precision in args.precisions.split(","):
        r = profile_precision(args, precision, bandwidth)
        result[precision] = r
        print(f"\n{precision}: {r['step_ms']:.1f} ms a step ({r['profiled_ms']:.1f} profiled)")
        print(
            f"  {'kind':13s} {'ms':>7s} {'share':>6s} {'MB':>7s} {'floor ms':>8s} {'/floor':>6s}"
            "  top ops"
        )
        for kind, row in r["kinds"].items():
            floor = row["floor_ms"]
            ratio = f"{row['ms'] / floor:6.1f}" if floor else "     —"
            floor_text = f"{floor:8.2f}" if floor is not None else "       —"
            print(
                f"  {kind:13s} {row['ms']:7.2f} {row['share']:6.1%} {row['mbytes']:7.1f} "
                f"{floor_text} {ratio}  {', '.join(row['top'])}"
            )
        for what, c in r["casts"].items():
            print(f"  casts, {what}: {c['per_step']} a step, {c['melements']:.2f} M elements")
        if r["casts"]:
            print(f"  ({r['parameter_tensors']} parameter tensors)")
    if "fp32" in result and "bf16" in result:
        ratio = result["bf16"]["step_ms"] / result["fp32"]["step_ms"]
        result["bf16_vs_fp32"] = ratio
        print(f"\nbf16 step / fp32 step = {ratio:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
