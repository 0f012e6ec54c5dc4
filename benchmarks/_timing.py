"""Helpers of benchmarks/speed.py: FLOPs of a training step, matmul-rate kernels, timing of
several runners interleaved in one process with torch.utils.benchmark, and the peak memory of
a training run in a fresh process."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import benchmark
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.training.trainer import build_tuned

Measurement = benchmark.Measurement
MATMULS = {"aten.mm": 0, "aten.addmm": 1, "aten.bmm": 0, "aten.baddbmm": 1}  # → index of A


class MatmulShapes(TorchDispatchMode):
    """Records the (batch, M, K, N) of every matrix product dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int, int, int]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        first = MATMULS.get(str(func.overloadpacket))
        if first is not None:
            a, b = args[first], args[first + 1]
            batch = a.shape[0] if a.dim() == 3 else 1
            self.shapes.append((batch, a.shape[-2], a.shape[-1], b.shape[-1]))
        return func(*args, **(kwargs or {}))


@dataclass
class StepCount:
    """What one call of a training step computes: FLOPs as torch.utils.flop_counter counts them
    (matrix products and convolutions, forward and backward; elementwise work, losses and the
    optimizer count zero) by aten op, and the shapes of its matrix products."""

    flops: int
    by_op: dict[str, int]
    matmuls: list[tuple[int, int, int, int]] = field(default_factory=list)


def count_step(step: Callable[[], object]) -> StepCount:
    """Counts one call of `step` (after one uncounted call: lazy state, first-step branches)."""
    step()
    with FlopCounterMode(display=False) as counter, MatmulShapes() as shapes:
        step()
    by_op = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return StepCount(counter.get_total_flops(), by_op, shapes.shapes)


# ---------------------------------------------------------------- kernels for the matmul rate


def mm_kernel(
    m: int, k: int, n: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> Callable[[], object]:
    """torch.mm (M, K) @ (K, N) in `dtype` into a preallocated output."""
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    c = torch.empty(m, n, device=device, dtype=dtype)
    return lambda: torch.mm(a, b, out=c)


def onednn_kernels(
    shapes: list[tuple[int, int, int]], device: torch.device
) -> tuple[dict[str, Callable[[], object]] | None, str]:
    """torch._C._nn.mkldnn_linear on mkldnn-layout input and weight (no bias): the kernel behind
    torch.utils.mkldnn.MkldnnLinear. (None, why) where there is none to time."""
    if device.type != "cpu":
        return None, "oneDNN is the CPU library; no row on " + device.type
    if not torch.backends.mkldnn.is_available():
        return None, "this torch build has no oneDNN (torch.backends.mkldnn.is_available() false)"
    linear = getattr(torch._C._nn, "mkldnn_linear", None)
    if linear is None:
        return None, "torch._C._nn.mkldnn_linear does not exist in this torch"
    out = {}
    try:
        for m, k, n in shapes:
            x, w = torch.randn(m, k).to_mkldnn(), torch.randn(n, k).to_mkldnn()
            linear(x, w)
            out[f"{m}x{k}x{n}"] = lambda x=x, w=w: linear(x, w)
    except (RuntimeError, TypeError) as e:
        return None, f"mkldnn_linear failed: {first_line(e)}"
    return out, "torch._C._nn.mkldnn_linear(x.to_mkldnn(), weight.to_mkldnn())"


def matmul_sequence(
    shapes: list[tuple[int, int, int, int]],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> Callable[[], None]:
    """A step's own matrix products, in `dtype`, back to back (torch.mm, or torch.bmm for a
    batch of several): every product at its own shape's rate, with nothing else of the step."""
    ops = []
    for batch, m, k, n in shapes:
        dims = (batch,) if batch > 1 else ()
        a, b = (torch.randn(*dims, *s, device=device, dtype=dtype) for s in ((m, k), (k, n)))
        out = torch.empty(*dims, m, n, device=device, dtype=dtype)
        ops.append((torch.bmm if dims else torch.mm, a, b, out))

    def run() -> None:
        for op, a, b, c in ops:
            op(a, b, out=c)

    return run


def gflops_by_shape(
    shapes: list[tuple[int, int, int]], rates: dict[str, Measurement], kernel: str
) -> dict[str, float]:
    """GFLOP/s of the probe named "{kernel} MxKxN" for each (M, K, N), from its median time."""
    keys = {f"{m}x{k}x{n}": 2 * m * k * n for m, k, n in shapes}
    return {key: f / rates[f"{kernel} {key}"].median / 1e9 for key, f in keys.items()}


# ---------------------------------------------------------------- interleaved timing


def interleaved(
    runners: dict[str, Callable[[], object]],
    probes: dict[str, Callable[[], object]],
    *,
    rounds: int,
    step_time: float,
    probe_time: float,
    warmup: int,
    optional: set[str],
    log: Callable[[str], None],
) -> tuple[dict[str, Measurement], dict[str, Measurement], dict[str, str]]:
    """Time every runner and probe in `rounds` rounds; each round samples every probe, then
    gives every runner a Timer.blocked_autorange of `step_time` seconds, visiting them in
    reverse order every other round. A machine whose speed drifts then slows all of them alike,
    and the merged measurements (seconds per call over all rounds) compare by their medians.

    Runners first take `warmup` untimed calls. An optional runner that raises is dropped (its
    error is returned by name); any other error propagates."""
    threads = torch.get_num_threads()

    def timer(fn: Callable[[], object], name: str) -> benchmark.Timer:
        return benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads, description=name)

    failed: dict[str, str] = {}
    live = {name: timer(fn, name) for name, fn in runners.items()}
    probe_timers = {name: timer(fn, name) for name, fn in probes.items()}
    samples: dict[str, list[Measurement]] = {name: [] for name in [*runners, *probes]}

    def guarded(name: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as e:
            if name not in optional:
                raise
            failed[name] = f"failed: {first_line(e)}"
            live.pop(name, None)
            log(f"  {name}: {failed[name]}")
            return None

    for name, fn in runners.items():
        guarded(name, lambda fn=fn: [fn() for _ in range(warmup)])
    log(f"  warmed up: {warmup} untimed steps each")
    for r in range(rounds):
        for name, t in probe_timers.items():
            samples[name].append(t.blocked_autorange(min_run_time=probe_time))
        order = list(live.items())
        for name, t in order if r % 2 == 0 else order[::-1]:
            m = guarded(name, lambda t=t: t.blocked_autorange(min_run_time=step_time))
            if m is not None:
                samples[name].append(m)
        log(f"  round {r + 1}/{rounds} done")
    merged = {
        name: Measurement.merge(ms)[0] for name, ms in samples.items() if ms and name not in failed
    }
    steps = {name: m for name, m in merged.items() if name in runners}
    return steps, {name: m for name, m in merged.items() if name in probes}, failed


# ---------------------------------------------------------------- memory, in a fresh process


def _proc_status_bytes(field: str) -> int | None:
    """A memory line of /proc/self/status ("VmRSS", "VmHWM") in bytes; None off Linux."""
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def ru_maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap memory back to the system (glibc's malloc_trim), then
    restart the kernel's peak-RSS count from the current RSS (Linux clear_refs "5"), so that the
    peak that follows is the training's own. Each part is skipped where unavailable."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def memory_child(preset: str, overrides: list[str], steps: int) -> None:
    """Run inside the subprocess: print one JSON line with the base and peak RSS.

    Peak is VmHWM where it exists: Linux's ru_maxrss survives execve (a child reports at least
    the parent's RSS at fork time), VmHWM starts afresh at exec."""
    cfg = load_config(preset, overrides)
    data = build_tasks(cfg.data, cfg.seed)
    # The base: interpreter + torch + mtgan + the data set, resident before the trainer is
    # built. Loading the data frees temporaries that the C allocator may keep resident (and the
    # trainer then reuses unseen), by a varying amount; returning them first makes the base what
    # is live. The high-water mark at this point is kept as well.
    base_hwm = _proc_status_bytes("VmHWM") or ru_maxrss_bytes()
    release_freed_memory()
    base = _proc_status_bytes("VmRSS") or ru_maxrss_bytes()
    trainer = build_tuned(cfg, data)  # as `mtgan train` does
    for _ in range(steps):
        trainer.train_step()
    peak = _proc_status_bytes("VmHWM") or ru_maxrss_bytes()
    n_params = sum(p.numel() for p in trainer.model.parameters())
    n_ema = sum(p.numel() for p in trainer.ema.net.parameters()) if trainer.ema else 0
    adam = sum(
        t.numel() * t.element_size()
        for phase in trainer.phases
        for state in phase.optimizer.state.values()
        for t in state.values()
        if torch.is_tensor(t) and t.dim() > 0
    )
    print(
        json.dumps(
            {
                "base_bytes": base,
                "base_hwm_bytes": base_hwm,
                "peak_bytes": peak,
                "ru_maxrss_bytes": ru_maxrss_bytes(),
                "params": n_params,
                "ema_params": n_ema,
                # weights + Adam's two moments (3 × 4 bytes per parameter) + the EMA copy
                "state_bytes": 12 * n_params + 4 * n_ema,
                "adam_state_bytes_measured": adam,
            }
        )
    )


def measure_memory(
    script: str, cases: dict[str, tuple[str, list[str]]], steps: int, threads: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """Each case (preset, overrides) in a fresh CPU subprocess (`script --_mem ...`, which calls
    memory_child), `repeats` times in alternation; per case the run that grew least above its
    base is kept (the allocator only ever adds noise to what the run needs), with every run's
    growth listed under `grown_runs_bytes`."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (preset, overrides) in cases.items():
            cmd = [sys.executable, script, "--_mem", preset, "--_mem-steps", str(steps)]
            cmd += ["--threads", str(threads), "--set", *overrides, "train.device=cpu"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"memory subprocess for {name} failed:\n{done.stderr[-2000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = {}
    for name, rs in runs.items():
        grown = [r["peak_bytes"] - r["base_bytes"] for r in rs]
        out[name] = {**rs[grown.index(min(grown))], "grown_runs_bytes": grown}
    return out


def memory_figures(mem: dict[str, dict[str, Any]]) -> dict[str, float]:
    """mem_ratio_k10: the K = 10 run's peak RSS above its own baseline (interpreter, torch,
    mtgan, data, resident before the trainer is built) over the single run's, plus the bytes of
    weights, Adam moments and EMA the K = 10 model holds beyond the single one:
      (peak_k10 − base_k10) / ((peak_single − base_single) + (state_k10 − state_single)).
    "K = 10 peak ≤ 1.5 × single plus the extra weights" read as 1.5 × (single + extra) is
    mem_ratio_k10 ≤ 1.5; read as 1.5 × single + extra (stricter), mem_excess_ratio_k10 ≤ 1.5:
      ((peak_k10 − base_k10) − (state_k10 − state_single)) / (peak_single − base_single)."""
    single, k10 = mem["single"], mem["pertask_k10"]
    grown_single = single["peak_bytes"] - single["base_bytes"]
    grown_k10 = k10["peak_bytes"] - k10["base_bytes"]
    extra = k10["state_bytes"] - single["state_bytes"]
    return {
        "grown_single": grown_single,
        "grown_k10": grown_k10,
        "extra_state": extra,
        "mem_ratio_k10": grown_k10 / (grown_single + extra),
        "mem_excess_ratio_k10": (grown_k10 - extra) / grown_single,
    }


def memory_lines(r: dict[str, Any]) -> list[str]:
    """The memory section of speed.py's table, from its result `r`."""
    mib, mem = 2**20, r["memory"]
    lines = ["", "== memory (CPU, fresh subprocess each, peak RSS)"]
    for name, m in (("single", mem["single"]), ("pertask K=10", mem["pertask_k10"])):
        base, peak = m["base_bytes"] / mib, m["peak_bytes"] / mib
        lines.append(
            f"  {name:13s} base {base:7.1f} MiB  peak {peak:7.1f} MiB  grown {peak - base:6.1f}"
            f" MiB  params {m['params']:,}  weights+Adam+EMA {m['state_bytes'] / mib:.1f} MiB"
        )
    ratio, excess = r["mem_ratio_k10"], r["mem_excess_ratio_k10"]
    verdict = "met" if ratio <= 1.5 else "NOT met"
    runs = {
        n: ", ".join(f"{g / mib:.1f}" for g in mem[n]["grown_runs_bytes"])
        for n in mem
        if n != "extra_state_bytes"
    }
    return [
        *lines,
        f"  mem_ratio_k10 = grown_k10 / (grown_single + extra) = {ratio:.2f}  (≤ 1.5: {verdict})",
        f"  mem_excess_ratio_k10 = (grown_k10 − extra) / grown_single = {excess:.2f}  (stricter)",
        f"  grown in each run (MiB; the least is kept): {runs}",
    ]


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"
