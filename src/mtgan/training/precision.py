"""`train.precision=auto`, decided by measurement on the machine at hand.

A capability flag is no guide: oneDNN reports bf16 as supported on CPUs that emulate it (an
Intel Xeon without AVX512-BF16 or AMX runs it at about a third of the float32 rate) and some
that compute it natively gain little at small widths. So `auto` times the run's own networks,
forward, in float32 and under bf16 autocast (a few passes, well under a second), takes bf16 only
where it is faster, and caches the verdict per machine (CPU model or GPU name, torch version) in
the mtgan cache directory; the run directory's metrics and the log say what was chosen and why.

A GPU without native bf16 (before Ampere: T4, V100) probes fp16 instead, which it computes in
its tensor cores, by the same rule; its verdict is cached apart from bf16's. A CPU never gets
fp16 from `auto`: its float16 kernels are slow, and it would need a loss scale for nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mtgan.atomic import write_text_atomic
from mtgan.metrics.cache import cache_dir

CACHE = "precision.json"
MARGIN = 1.1  # bf16 must be this much faster: a probe of a few passes has a few % of noise
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# candidate ("bf16" or "fp16") → (seconds in fp32, seconds under autocast to the candidate)
Probe = Callable[[str], tuple[float, float]]


@dataclass(frozen=True)
class Verdict:
    precision: str  # "fp32", "bf16" or "fp16"
    reason: str

    def describe(self, asked: str) -> str:
        return f"precision {asked} → {self.precision}: {self.reason}"


def machine_key(device: torch.device) -> str:
    """What the verdict holds for: the processor (or GPU) and the torch build."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model() or platform.processor() or platform.machine()
    return f"{device.type}: {name}; torch {torch.__version__}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def decide(
    asked: str, device: torch.device, kind: str, probe: Probe, cache: Path | None = None
) -> Verdict:
    """The precision to train in. `probe` is only called when `auto` has no cached verdict for
    this machine."""
    if asked != "auto":
        return Verdict(asked, "set by train.precision")
    if kind == "points":
        # bf16 resolves 4.0 only to ±0.016, a third of the 2D grid's σ = 0.05
        return Verdict("fp32", "2D points stay in float32 (bf16 cannot resolve their modes)")
    candidate, key, note = "bf16", machine_key(device), ""
    # Without native bf16 (the default `including_emulation` says True for an emulated one)
    if device.type == "cuda" and not _native_bf16():
        candidate, key, note = "fp16", f"{key}; fp16", "this GPU has no bf16; "
    where = "GPU" if device.type == "cuda" else "CPU"
    speed, how = measured_speed((cache or cache_dir()) / CACHE, key, lambda: probe(candidate))
    choice = candidate if speed >= MARGIN else "fp32"
    reason = f"{note}{candidate} ran at {speed:.2f}× the fp32 speed on this {where} ({how})"
    return Verdict(choice, reason)


def _native_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch without the argument: its own answer
        return torch.cuda.is_bf16_supported()


def shape_digest(text: str, rows: int) -> str:
    """A short key for what a cached measurement holds for besides the machine: the measured
    networks' shapes (as `text`) and the rows they were timed on."""
    return hashlib.sha1(f"{text}|{rows}".encode()).hexdigest()[:12]


def measured_speed(
    path: Path, key: str, probe: Callable[[], tuple[float, float]]
) -> tuple[float, str]:
    """(seconds of the reference / seconds of the candidate, how it was known): from the cache
    file at `path` under `key`, or measured by `probe` now and cached there (the speed switches
    that are decided by measurement share this: precision here, the layout in layout.py)."""
    known = _read(path)
    if key in known:
        return float(known[key]), "measured earlier"
    base_s, candidate_s = probe()
    speed, how = base_s / max(candidate_s, 1e-12), "measured now"
    try:
        write_text_atomic(path, json.dumps({**known, key: speed}, indent=1))
    except OSError:
        how += ", not cached (cache directory not writable)"
    return speed, how


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def interleaved(
    a: Callable[[], object], b: Callable[[], object], device: torch.device, budget_s: float = 0.1
) -> tuple[float, float]:
    """Seconds of one call of `a` and of `b`: each the least of several, the two alternated so
    that a machine busy with something else slows both alike, after a warm-up call of each; in
    about `budget_s`. Stops early once `b` is plainly slower (4× `a`: an emulated bf16)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def once(run: Callable[[], object]) -> float:
        sync()
        t0 = time.perf_counter()
        run()
        sync()
        return time.perf_counter() - t0

    once(a)  # warm-up: caches, kernels, oneDNN primitives
    best_a = once(a)
    best_b = once(b)  # its warm-up: if even that is 4× slower, b is plainly slower
    if best_b > 4 * best_a:
        return best_a, best_b
    best_b = float("inf")
    start = time.perf_counter()
    for i in range(50):
        best_a, best_b = min(best_a, once(a)), min(best_b, once(b))
        if best_b > 4 * best_a or (i >= 2 and time.perf_counter() - start > budget_s):
            break
    return best_a, best_b


def forward_probe(forward: Callable[[], object], device: torch.device) -> Probe:
    """Times `forward` (the run's networks on a batch of its own layer widths) without
    gradients, in float32 and under autocast to the candidate (bf16 or fp16), alternately."""

    def probe(candidate: str) -> tuple[float, float]:
        def low() -> None:
            with torch.autocast(device.type, dtype=DTYPES[candidate]):
                forward()

        with torch.no_grad():
            return interleaved(forward, low, device)

    return probe
