"""How fast mtgan trains against a plain PyTorch GAN loop and against the machine's FLOP floor.

    python benchmarks/speed.py [--quick] [--rounds 5] [--step-time 0.4] [--warmup 2]
        [--device cpu|cuda] [--batch 64] [--no-memory] [--skip ROW ...] [--json-only]

Everything compared runs in ONE process, interleaved: each round gives every matmul-rate kernel
a torch.utils.benchmark blocked_autorange, then every training step one of `--step-time`
seconds (in reverse order every other round), so a machine whose speed drifts slows all of them
alike; figures are ratios of medians over all rounds. The first call of each blocked_autorange
(it sizes the blocks) is untimed: it re-warms caches after the other rows ran.
FLOPs are counted by torch.utils.flop_counter.FlopCounterMode over one whole training step:
matrix products and convolutions, forward and backward (elementwise work, losses and Adam count
zero). For speed-mlp that is 15.9 MFLOP a sample, the count B·(3g − g0 + 8d − 2d0) the hand
formula gave; the plain loop's is B·d more, as its G step also fills D's weight gradients.
The model is the `speed-mlp` preset: a single-task MLP GAN on the bundled digits,
G 100→128→256→512→1024→784 (BatchNorm + ReLU, tanh out), D 784→512→256→1 (LeakyReLU 0.2),
non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64, at the precision that
`train.precision=auto` picks (reported, with its reason).

Rows (step times, median ms):
  plain            a textbook loop: DataLoader, nn.Sequential, BCEWithLogits, two torch Adams
  single           mtgan Trainer.train_step on speed-mlp
  pertask_k10      the same networks as K = 10 tasks (pertask preset); independent_k10 likewise
  single_b256      speed-mlp at batch 256, against its floor: its FLOPs at the torch.mm rate
                   (median over shapes), at the oneDNN rate, and its own matmuls back to back
  dcgan32          speed-mlp with model.arch=dcgan on the digits zero-padded to 32×32 (there is
                   no dcgan preset): G 100→128·4²→64·8²→32·16²→1·32², D 1·32²→32·16²→64·8²→
                   128·4²→1 (4×4 kernels, stride 2)
  resnet32         the same data with model.arch=resnet (SNGAN-style residual G and D, width 32,
                   mtgan/nets/resnet.py), one task
  options          train.precision=bf16 / fp16 / fp32 and train.compile=true, where they exist
  memory           peak RSS of K = 10 vs single on the CPU, each in a fresh subprocess

Targets (issue 16), printed met / not met:
  single_vs_plain       single / plain                                       ≤ 0.6
  k10_plain_vs_pertask  (10 × plain) / pertask_k10                           ≥ 2.5
  floor_ratio_b256      single_b256 / its FLOP floor at the precision it trains in  ≤ 1.5
                        (torch.mm rate in that dtype; floor_ratio_b256_fp32: at float32's)
k10_vs_single (pertask_k10 / single) is still reported but has no target: K tasks are K× the
FLOPs.

The last line is one JSON object. Keys new with this FlopCounterMode / torch.utils.benchmark
version: targets {name: {value, target, met, matmuls_only}} (matmuls_only: the ratio with the row's
step replaced by its own matmuls back to back, nothing else: the best reachable with these
kernels), mmseq_ms {row: ms of its matmuls alone}; precision_auto {asked, chosen, reason} (what
`mtgan train` prints as `precision auto → ...`), precision_by_row, auto_vs_best {row: its step
under auto / the faster of its fp32 and bf16 rows, target ≤ 1.05}, heap_auto {asked, chosen, reason}
(train.keep_heap, decided on the single row's networks), channels_last_by_row (what
`train.channels_last=auto` measured for each row's networks), cpu_bf16_flags (the CPU's native-bf16
flags, [] for none), bf16_vs_fp32 (bf16 row / fp32 row); step_flops {row: FLOPs}, step_flops_by_op
{row: {aten op: FLOPs}}; floor_precision_b256, floor_ms_b256_chosen, mm_gflops_low_by_shape (the
floor at the b256 row's own precision, the target's), floor_ratio_b256_fp32 (at float32's);
dcgan32_gflops (its FLOPs / its median step); step_ms_iqr, step_samples
(timed steps per row); failed_rows {row: why}; device, batch, step_time_s, skipped. Gone: `steps`
(a row is timed for a fixed time per round, not a fixed count). With --batch B the b64 keys are
named b{B}. benchmarks/gpu_check.sh runs this with --device cuda. The defaults took 448 s on 2
cores shared with other jobs (the run had 44% of them), --quick about 100 s; see
benchmarks/results/speed-cpu.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _timing import (
    count_step,
    first_line,
    gflops_by_shape,
    interleaved,
    matmul_sequence,
    measure_memory,
    memory_child,
    memory_figures,
    memory_lines,
    mm_kernel,
    onednn_kernels,
)
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mtgan.config import TrainConfig, load_config
from mtgan.data.mnist import load_mnist5k
from mtgan.training import Trainer
from mtgan.training.allocator import apply_heap
from mtgan.training.tuner import tune

PRESET = "speed-mlp"
K = 10
QUIET = ["train.progress=false", "train.loggers=[jsonl]"]
TARGETS = {
    "single_vs_plain": ("≤", 0.6),
    "k10_plain_vs_pertask": ("≥", 2.5),
    "floor_ratio_b256": ("≤", 1.5),
}
OPTIONAL = {
    "independent_k10",
    "dcgan32",
    "resnet32",
    "bf16_autocast",
    "fp16_autocast",
    "fp32",
    "compile",
}
PRECISIONS = ("fp32", "bf16")  # the rows `auto` is compared with
LOW_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # precisions with their own floor
OPTIONAL |= {f"{row}_{p}" for row in ("single_b256", "pertask_k10") for p in PRECISIONS}


def k_task_overrides(g_hidden: list[int], d_hidden: list[int], batch: int) -> list[str]:
    """pertask / independent with speed-mlp's networks, no EMA, `batch` per task."""
    return [
        f"model.g_hidden=[{','.join(map(str, g_hidden))}]",
        f"model.d_hidden=[{','.join(map(str, d_hidden))}]",
        "model.g_norm=batch",
        "model.d_norm=none",
        "train.ema=null",
        f"train.batch_size={batch}",
    ]


def dcgan32_overrides(folder: Path) -> list[str]:
    """speed-mlp as a DCGAN on the bundled digits zero-padded to 32×32 (written as a .npz)."""
    images, labels = load_mnist5k()
    x = nn.functional.pad(images, (2, 2, 2, 2)).mul(255).round().to(torch.uint8)
    path = folder / "digits32.npz"
    np.savez(path, x=x.numpy(), y=labels.numpy())
    widths = ["model.g_hidden=[128,64,32]", "model.d_hidden=[32,64,128]"]
    return [f"data.path={path}", "model.arch=dcgan", *widths]


class PlainLoop:
    """The GAN loop as most scripts write it: one step = one D update + one G update."""

    def __init__(self, g_widths: list[int], d_widths: list[int], batch: int, device: str):
        torch.manual_seed(0)
        images, _ = load_mnist5k()
        x = (images * 2 - 1).flatten(1)  # [0, 1] → [-1, 1], (5000, 784)
        self.loader = DataLoader(TensorDataset(x), batch_size=batch, shuffle=True, drop_last=True)
        self.batches, self.device, self.z_dim = iter(self.loader), device, g_widths[0]
        g_layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(g_widths[:-1], g_widths[1:])):
            g_layers.append(nn.Linear(n_in, n_out))
            last = i == len(g_widths) - 2
            g_layers += [nn.Tanh()] if last else [nn.BatchNorm1d(n_out), nn.ReLU()]
        d_layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(d_widths[:-1], d_widths[1:])):
            d_layers.append(nn.Linear(n_in, n_out))
            if i < len(d_widths) - 2:
                d_layers.append(nn.LeakyReLU(0.2))
        self.G, self.D = nn.Sequential(*g_layers).to(device), nn.Sequential(*d_layers).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCEWithLogitsLoss()

    def step(self) -> None:
        try:
            (real,) = next(self.batches)
        except StopIteration:  # a new epoch: the user pays for the new iterator and shuffle
            self.batches = iter(self.loader)
            (real,) = next(self.batches)
        real = real.to(self.device)
        b = real.shape[0]
        ones = torch.ones(b, 1, device=self.device)
        zeros = torch.zeros(b, 1, device=self.device)
        fake = self.G(torch.randn(b, self.z_dim, device=self.device))

        self.opt_d.zero_grad()
        loss_d = self.criterion(self.D(real), ones) + self.criterion(self.D(fake.detach()), zeros)
        loss_d.backward()
        self.opt_d.step()

        self.opt_g.zero_grad()
        loss_g = self.criterion(self.D(fake), ones)
        loss_g.backward()
        self.opt_g.step()


# ---------------------------------------------------------------- options (autocast, compile)


def option_overrides(base: list[str]) -> dict[str, list[str] | str]:
    """For each option row, the overrides that switch it on, or why it is not available: only
    switches the config exposes are used, so in a tree without them the rows say so."""
    rows: dict[str, list[str] | str] = {}
    for name, field, override in (
        ("bf16_autocast", "precision", "train.precision=bf16"),
        ("fp16_autocast", "precision", "train.precision=fp16"),
        ("fp32", "precision", "train.precision=fp32"),
        ("compile", "compile", "train.compile=true"),
    ):
        if field not in TrainConfig.model_fields:
            rows[name] = f"not available yet: the config has no train.{field} switch"
            continue
        try:
            load_config(PRESET, [*base, override])
            rows[name] = [override]
        except Exception:
            rows[name] = f"not available: {override} does not validate"
    return rows


def bf16_cpu_flags() -> list[str] | None:
    """The CPU's native-bf16 instruction flags in /proc/cpuinfo; None where it is unreadable."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    flags = next((ln.partition(":")[2].split() for ln in lines if ln.startswith("flags")), [])
    return [f for f in ("avx512_bf16", "amx_bf16", "avx_ne_convert") if f in flags]


# ---------------------------------------------------------------- the measurement


def build_rows(
    args: argparse.Namespace, base: list[str], k_over: list[str], tmp: Path
) -> tuple[dict[str, Trainer], dict[str, list[str] | str], dict[str, str], str]:
    """The mtgan trainers of every row, the option rows' overrides (or why not), the optional
    rows that failed to build (why), and the name of the batch-256 row."""
    builds: dict[str, tuple[str, list[str]]] = {
        "single": (PRESET, []),
        "pertask_k10": ("pertask", k_over),
        "independent_k10": ("independent", k_over),
        "dcgan32": (PRESET, dcgan32_overrides(tmp)),
        "resnet32": (PRESET, [*dcgan32_overrides(tmp)[:1], "model.arch=resnet"]),
    }
    b256 = "single"
    if args.batch != 256:
        builds["single_b256"], b256 = (PRESET, ["train.batch_size=256"]), "single_b256"
    options = option_overrides(base)
    builds.update({n: (PRESET, how) for n, how in options.items() if isinstance(how, list)})
    # `auto` beside both precisions for the rows the single row's options do not cover
    for row in (b256, "pertask_k10"):
        preset, over = builds[row]
        for p in PRECISIONS:
            builds[f"{row}_{p}"] = (preset, [*over, f"train.precision={p}"])
    trainers: dict[str, Trainer] = {}
    failed: dict[str, str] = {}
    for name, (preset, over) in builds.items():
        if name in args.skip:
            (options if name in options else failed)[name] = "skipped with --skip"
            continue
        try:
            config = load_config(preset, [*base, *over])
            # the switches raced on throw-away trainers, as `mtgan train` does
            verdicts = tune(config, build=lambda c: Trainer(c))
            trainers[name] = Trainer(config, verdicts=verdicts)
        except Exception as e:  # an optional row that fails to build is a row of n/a
            if name not in OPTIONAL:
                raise
            failed[name] = f"failed to build: {first_line(e)}"
    return trainers, options, failed, b256


def measure(args: argparse.Namespace, log: Callable[[str], None], tmp: Path) -> dict[str, Any]:
    device, batch = torch.device(args.device), args.batch
    cfg = load_config(PRESET)
    numel = 1 * 28 * 28  # the bundled digits, flattened
    g_widths = [cfg.model.z_dim, *cfg.model.g_hidden, numel]
    d_widths = [numel, *cfg.model.d_hidden, 1]
    base = [*QUIET, f"train.device={args.device}", f"train.batch_size={batch}"]
    k_over = k_task_overrides(cfg.model.g_hidden, cfg.model.d_hidden, batch)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, batch {batch}")
    log(f"{PRESET}: G {g_widths}, D {d_widths}; {args.rounds} rounds of {args.step_time} s a row")

    log("building the rows ...")
    trainers, options, failed, b256 = build_rows(args, base, k_over, tmp)
    # process-wide, as `mtgan train` sets it for its run: here for the single-task row's
    heap = trainers["single"].verdicts["keep_heap"]
    apply_heap(heap)
    runners = {"plain": PlainLoop(g_widths, d_widths, batch, args.device).step}
    runners.update({name: t.train_step for name, t in trainers.items()})
    log("counting FLOPs (FlopCounterMode, one training step each) ...")
    # not resnet32: FlopCounterMode's module hooks fail on spectral norm's parametrizations
    counted = [n for n in ("plain", "single", "pertask_k10", b256, "dcgan32") if n in runners]
    counts = {name: count_step(runners[name]) for name in counted}
    flops = {name: c.flops for name, c in counts.items()}

    squares = [256, 512, 1024] if args.quick else [256, 512, 1024, 1536, 2048]
    shapes = [(n, n, n) for n in squares]
    for widths in (g_widths, d_widths):
        shapes += [(256, i, o) for i, o in zip(widths[:-1], widths[1:])]
    dnn, dnn_how = onednn_kernels(shapes, device)
    probes = {f"mm {m}x{k}x{n}": mm_kernel(m, k, n, device) for m, k, n in shapes}
    probes.update({f"dnn {key}": fn for key, fn in (dnn or {}).items()})
    probes["mmseq"] = matmul_sequence(counts[b256].matmuls, device)
    # the floor at the precision the b256 row trains in (the target's), where that is not fp32
    low = LOW_DTYPES.get(trainers[b256].precision) if b256 in trainers else None
    if low is not None:
        probes.update(
            {f"mm low {m}x{k}x{n}": mm_kernel(m, k, n, device, low) for m, k, n in shapes}
        )
        probes["mmseq low"] = matmul_sequence(counts[b256].matmuls, device, low)
    # each target row's own matmuls alone: the best its ratio could be with nothing else
    seq_rows = [n for n in ("single", "pertask_k10") if n in counts]
    probes.update({f"mmseq {n}": matmul_sequence(counts[n].matmuls, device) for n in seq_rows})

    log("timing (interleaved) ...")
    timed, rates, failed_runs = interleaved(
        runners, probes, rounds=args.rounds, step_time=args.step_time,
        probe_time=args.probe_time, warmup=args.warmup, optional=OPTIONAL, log=log,
    )  # fmt: skip
    failed.update(failed_runs)
    options.update({n: why for n, why in failed.items() if n in options})
    ms = {name: m.median * 1e3 for name, m in timed.items()}
    by_shape = gflops_by_shape(shapes, rates, "mm")
    dnn_by_shape = gflops_by_shape(shapes, rates, "dnn") if dnn else None
    mm_gflops = statistics.median(by_shape.values())
    dnn_gflops = statistics.median(dnn_by_shape.values()) if dnn_by_shape else None
    floor = {b: flops[n] / (mm_gflops * 1e9) for b, n in ((batch, "single"), (256, b256))}
    floor_dnn = flops[b256] / (dnn_gflops * 1e9) if dnn_gflops else None
    mmseq_s, b256_s = rates["mmseq"].median, ms[b256] / 1e3
    low_by_shape = gflops_by_shape(shapes, rates, "mm low") if low is not None else None
    # the target's floor: at the b256 row's own precision (float32's where it trains in fp32)
    floor_chosen = (
        flops[b256] / (statistics.median(low_by_shape.values()) * 1e9)
        if low_by_shape
        else floor[256]
    )
    mmseq_chosen_s = rates["mmseq low"].median if low is not None else mmseq_s

    def ratio(a: str, b: str, scale: float = 1.0) -> float | None:
        return scale * ms[a] / ms[b] if a in ms and b in ms else None

    result: dict[str, Any] = {
        "single_vs_plain": ratio("single", "plain"),
        "k10_vs_single": ratio("pertask_k10", "single"),
        "floor_ratio_b256": b256_s / floor_chosen,
        "floor_ratio_b256_fp32": b256_s / floor[256],
        "floor_precision_b256": trainers[b256].precision if b256 in trainers else None,
        "floor_ms_b256_chosen": floor_chosen * 1e3,
        "mm_gflops_low_by_shape": low_by_shape,
        "floor_ratio_b256_onednn": b256_s / floor_dnn if floor_dnn else None,
        "floor_ratio_b256_mmseq": b256_s / mmseq_s,
        "independent_k10_vs_single": ratio("independent_k10", "single"),
        "k10_plain_vs_pertask": ratio("plain", "pertask_k10", K),
        "k10_plain_vs_independent": ratio("plain", "independent_k10", K),
        "mm_gflops": mm_gflops,
        "onednn_gflops": dnn_gflops,
        "onednn_note": dnn_how,
        "mm_gflops_by_shape": by_shape,
        "onednn_gflops_by_shape": dnn_by_shape,
        f"step_flops_b{batch}": flops["single"],
        "step_flops_b256": flops[b256],
        "step_flops": flops,
        "step_flops_by_op": {name: c.by_op for name, c in counts.items()},
        f"floor_ms_b{batch}": floor[batch] * 1e3,
        "floor_ms_b256": floor[256] * 1e3,
        "floor_ms_b256_onednn": floor_dnn * 1e3 if floor_dnn else None,
        "mmseq_ms_b256": mmseq_s * 1e3,
        "dcgan32_gflops": flops["dcgan32"] / ms["dcgan32"] / 1e6 if "dcgan32" in ms else None,
        "step_ms": ms,
        "step_ms_mean": {name: m.mean * 1e3 for name, m in timed.items()},
        "step_ms_iqr": {name: m.iqr * 1e3 for name, m in timed.items()},
        "step_samples": {name: len(m.times) for name, m in timed.items()},
        "precision_auto": trainers["single"].verdicts["precision"].record(),
        "precision_by_row": {name: t.precision for name, t in trainers.items()},
        "auto_vs_best": auto_vs_best(ms, b256),
        "auto_picked_faster": auto_picked(
            ms, {name: t.precision for name, t in trainers.items()}, b256
        ),
        "heap_auto": heap.record(),
        "channels_last_by_row": {
            name: t.verdicts["channels_last"].value for name, t in trainers.items()
        },
        "options": {name: ratio(name, "single") for name in options},
        "options_note": {n: h if isinstance(h, str) else " ".join(h) for n, h in options.items()},
        "bf16_vs_fp32": ratio("bf16_autocast", "fp32"),
        "cpu_bf16_flags": bf16_cpu_flags() if device.type == "cpu" else None,
        "failed_rows": {n: why for n, why in failed.items() if n not in options},
    }
    if not args.no_memory:
        log("measuring memory in subprocesses ...")
        cases = {"single": (PRESET, base[-1:]), "pertask_k10": ("pertask", k_over)}
        mem = measure_memory(__file__, cases, args.mem_steps, args.threads, args.mem_repeats)
        figures = memory_figures(mem)
        result.update({k: figures[k] for k in ("mem_ratio_k10", "mem_excess_ratio_k10")})
        result["memory"] = {**mem, "extra_state_bytes": figures["extra_state"]}
    seq_ms = {n: rates[f"mmseq {n}"].median * 1e3 for n in seq_rows}
    result["mmseq_ms"] = {**seq_ms, b256: mmseq_s * 1e3}
    matmuls_only = {
        "single_vs_plain": seq_ms["single"] / ms["plain"] if "single" in seq_ms else None,
        "k10_plain_vs_pertask": (
            K * ms["plain"] / seq_ms["pertask_k10"] if "pertask_k10" in seq_ms else None
        ),
        "floor_ratio_b256": mmseq_chosen_s / floor_chosen,
    }
    result["targets"] = {
        name: {
            "value": result[name],
            "target": f"{op} {bound}",
            "met": met(result[name], op, bound),
            "matmuls_only": matmuls_only[name],
        }
        for name, (op, bound) in TARGETS.items()
    }
    return result


def _precision_pairs(b256: str) -> dict[str, tuple[str, str]]:
    """row → (its fp32 row, its bf16 row)."""
    pairs = {"single": ("fp32", "bf16_autocast")}
    pairs.update({row: (f"{row}_fp32", f"{row}_bf16") for row in (b256, "pertask_k10")})
    return pairs


def auto_vs_best(ms: dict[str, float], b256: str) -> dict[str, float]:
    """Each row's step under `train.precision=auto` / its faster of fp32 and bf16 forced."""
    return {
        row: ms[row] / min(ms[a], ms[b])
        for row, (a, b) in _precision_pairs(b256).items()
        if all(n in ms for n in (row, a, b))
    }


def auto_picked(ms: dict[str, float], chosen: dict[str, str], b256: str) -> dict[str, bool]:
    """Whether `auto` chose the precision whose forced row was the faster, per row. Two rows of
    the same settings differ by up to ~15 % in one speed.py run (their place in the rounds, their
    memory), which auto_vs_best includes and this does not."""
    return {
        row: chosen[row] == ("fp32" if ms[a] <= ms[b] else "bf16")
        for row, (a, b) in _precision_pairs(b256).items()
        if all(n in ms for n in (a, b)) and row in chosen
    }


def met(value: float | None, op: str, bound: float) -> bool | None:
    return None if value is None else (value <= bound if op == "≤" else value >= bound)


# ---------------------------------------------------------------- the table


def num(x: float | None, fmt: str = "6.2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def report(r: dict[str, Any], log: Callable[[str], None]) -> None:
    """The readable table of a result of `measure`."""
    ms, batch, dnn = r["step_ms"], r["batch"], r["onednn_gflops_by_shape"]
    log(f"\n== floor (float32 matmul rate, {r['threads']} threads, {r['device']})")
    log(f"{'shape M×K×N':>16s} {'torch.mm':>10s} {'oneDNN':>10s}   GFLOP/s")
    for key, rate in r["mm_gflops_by_shape"].items():
        log(f"{key:>16s} {rate:10.1f} {num(dnn and dnn[key], '10.1f'):>10s}")
    log(f"{'median':>16s} {r['mm_gflops']:10.1f} {num(r['onednn_gflops'], '10.1f'):>10s}")
    if dnn is None:
        log(f"oneDNN linear: n/a ({r['onednn_note']})")
    log("FLOPs of one training step (FlopCounterMode: matmuls and convolutions, fwd + bwd)")
    for name, f in r["step_flops"].items():
        by_op = r["step_flops_by_op"][name].items()
        ops = ", ".join(f"{op.removeprefix('aten.')} {n / 1e9:.3f}" for op, n in by_op)
        log(f"  {name:14s} {f / 1e9:8.3f} GFLOP  ({ops})")
    log(
        f"  floor at B=256: {r['floor_ms_b256']:.1f} ms at the torch.mm rate, "
        f"{num(r['floor_ms_b256_onednn'], '.1f')} ms at the oneDNN rate, "
        f"{r['mmseq_ms_b256']:.1f} ms running the step's own matmuls"
    )
    if r["mm_gflops_low_by_shape"]:
        rates = ", ".join(f"{k} {v:.0f}" for k, v in r["mm_gflops_low_by_shape"].items())
        log(f"  in {r['floor_precision_b256']} (the B=256 row's precision), GFLOP/s: {rates}")
        log(f"  floor at B=256 in {r['floor_precision_b256']}: {r['floor_ms_b256_chosen']:.1f} ms")

    log("\n== step time (ms; median, mean and IQR over the timed steps of all rounds)")
    labels = {
        "plain": f"plain loop, B={batch}",
        "single": f"mtgan speed-mlp, B={batch}",
        "pertask_k10": f"mtgan pertask K=10, B={batch}/task",
        "independent_k10": "mtgan independent K=10",
        "single_b256": "mtgan speed-mlp, B=256",
        "dcgan32": f"mtgan dcgan 32×32, B={batch}",
        "resnet32": f"mtgan resnet 32×32 (width 32), B={batch}",
    }
    for key, label in labels.items():
        if key in ms:
            spread = f"mean {r['step_ms_mean'][key]:.1f}, IQR {r['step_ms_iqr'][key]:.1f}"
            log(f"  {label:34s} {ms[key]:8.1f}   ({spread}, n {r['step_samples'][key]})")
    log(f"  {'10 × plain loop':34s} {K * ms['plain']:8.1f}")
    floors = f"{r[f'floor_ms_b{batch}']:8.1f} / {r['floor_ms_b256']:.1f}"
    log(f"  {f'floor B={batch} / B=256 (mm rate)':34s} {floors}")
    if r["dcgan32_gflops"] is not None:
        log(f"  dcgan32 computes {r['dcgan32_gflops']:.1f} GFLOP/s (its FLOPs / median step)")
    for name, why in r["failed_rows"].items():
        log(f"  {name}: n/a ({why})")

    log("\n== ratios")
    for key, note in (
        ("single_vs_plain", "mtgan single / plain loop"),
        ("k10_vs_single", "pertask K=10 / single (no target: K tasks are K× the FLOPs)"),
        ("independent_k10_vs_single", "independent K=10 / single"),
        ("k10_plain_vs_pertask", "10·plain / pertask K=10 (>1: mtgan K=10 wins)"),
        ("k10_plain_vs_independent", "10·plain / independent K=10"),
        ("floor_ratio_b256", "B=256 step / its floor at its precision's torch.mm rate"),
        ("floor_ratio_b256_fp32", "B=256 step / its floor at the float32 torch.mm rate"),
        ("floor_ratio_b256_onednn", "B=256 step / its floor at the oneDNN rate"),
        ("floor_ratio_b256_mmseq", "B=256 step / its own matmuls back to back"),
    ):
        log(f"  {key:26s} {num(r[key]):>6s}  {note}")
    log("\n== targets (issue 16); last column: the ratio if the step were its matmuls alone")
    for name, t in r["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        alone = num(t.get("matmuls_only"))
        log(f"  {name:26s} {num(t['value']):>6s}  target {t['target']:6s} {verdict:8s} {alone:>6s}")

    p = r["precision_auto"]
    log("\n== precision (what `mtgan train` prints for the single-task run)")
    log(f"  precision {p['asked']} → {p['chosen']}: {p['reason']}")
    for row, x in r["auto_vs_best"].items():
        right = "picked the faster" if r["auto_picked_faster"].get(row) else "picked the slower"
        log(f"  {row:14s} auto / the faster of fp32 and bf16 = {x:.2f} (target ≤ 1.05); {right}")
    log(f"  this run's whole steps: bf16 row / fp32 row = {num(r['bf16_vs_fp32'], '.2f')}")
    if r["cpu_bf16_flags"] is not None:
        flags = ", ".join(r["cpu_bf16_flags"]) or "none (bf16 is emulated in fp32 here)"
        log(f"  native-bf16 CPU flags (avx512_bf16, amx_bf16, avx_ne_convert): {flags}")
    log(f"  per row: {r['precision_by_row']}")
    h = r["heap_auto"]
    log(f"  keep_heap {h['asked']} → {'kept' if h['chosen'] else 'glibc defaults'}: {h['reason']}")
    if "memory" in r:
        for line in memory_lines(r):
            log(line)
    log("\n== options (single-task step, relative to the mtgan single step)")
    for name, how in r["options_note"].items():
        if name in ms:
            log(f"  {name:14s} {ms[name]:8.1f} ms  ({r['options'][name]:.2f}× single)  {how}")
        else:
            log(f"  {name:14s}      n/a  ({how})")
    log(f"\ntotal runtime {r['runtime_s']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, short rows")
    parser.add_argument("--rounds", type=int, default=None, help="interleaving rounds (5)")
    parser.add_argument("--step-time", type=float, default=None, help="s per row per round (0.4)")
    parser.add_argument("--probe-time", type=float, default=None, help="s per kernel per round")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row first (2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (train.device of every row)")
    parser.add_argument("--batch", type=int, default=64, help="batch of every row but b256")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(OPTIONAL), help="rows")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--_mem", help=argparse.SUPPRESS)
    parser.add_argument("--_mem-steps", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--set", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args._mem:
        memory_child(args._mem, [*QUIET, *args.set], args._mem_steps)
        return
    for key, quick, full in (
        ("rounds", 2, 5), ("step_time", 0.3, 0.4), ("probe_time", 0.02, 0.05), ("warmup", 1, 2),
        ("mem_steps", 5, 20), ("mem_repeats", 1, 2),
    ):  # fmt: skip
        if getattr(args, key, None) is None:
            setattr(args, key, quick if args.quick else full)

    def log(text: str = "") -> None:
        if not args.json_only:
            print(text, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, log, Path(tmp))
    result.update(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        device=args.device,
        batch=args.batch,
        rounds=args.rounds,
        step_time_s=args.step_time,
        warmup=args.warmup,
        quick=args.quick,
        skipped=args.skip,
        runtime_s=time.perf_counter() - started,
    )
    report(result, log)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
