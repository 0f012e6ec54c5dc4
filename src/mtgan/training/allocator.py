"""glibc malloc settings for the training process (`train.keep_heap`).

A training step frees and reallocates the same large buffers (activations, gradients, bf16
weight copies) every step. glibc serves blocks above its mmap threshold with fresh mmaps and
returns freed heap tops to the OS, so every step pays page faults for memory it just gave back
(benchmarks/results/design-notes.md has the step times with and without these settings).
The cost: the process keeps its peak heap instead of shrinking after it.
Applied with `mallopt`, process-wide, so by the entry point (`mtgan train`), never by a
Trainer a library user builds; nothing happens off glibc (macOS, Windows, musl).

What a page fault costs differs between machines (a VM's nested page tables, the kernel's
zeroing of fresh pages), so `auto` measures: it times the run's own networks forward and
backward with glibc's defaults and with the heap kept, alternately (well under a second),
keeps the heap only where that is faster, and caches the verdict per machine and network
shapes, as `train.precision=auto` does (precision.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from mtgan.metrics.cache import cache_dir
from mtgan.training.distributed import Dist, broadcast_object
from mtgan.training.precision import machine_key, measured_speed, shape_digest

if TYPE_CHECKING:
    from mtgan.training.trainer import Trainer

CACHE = "heap.json"
# The heap is kept where the probe ran at least this much faster with it. Lower than the
# precision's margin: keeping it costs memory, never accuracy, and the gain is often ~10%.
MARGIN = 1.03
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# glibc's documented defaults, restored by set_keep_heap(False). Any mallopt turns off glibc's
# own raising of the thresholds after a large free (for good), so the thresholds are set
# back to their starting values: "defaults" is the same state whenever the probe returns to it.
_DEFAULTS = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024}
_KEPT = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}

Probe = Callable[[], tuple[float, float]]  # → (seconds with glibc's defaults, with the heap kept)
_kept = False  # set by this module: a later run's verdict may undo it


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def set_keep_heap(keep: bool) -> bool:
    """Serve large blocks from the heap and never trim it (keep), or glibc's defaults again
    (the kept memory trimmed); True if the settings took effect."""
    global _kept
    libc = _libc()
    if libc is None:
        return False
    _kept = keep
    done = all([bool(libc.mallopt(k, v)) for k, v in (_KEPT if keep else _DEFAULTS).items()])
    if not keep:
        libc.malloc_trim(0)
    return done


def keep_heap() -> bool:
    """Serve large blocks from the heap and never trim it; True if the settings took effect."""
    return set_keep_heap(True)


@dataclass(frozen=True)
class Heap:
    keep: bool
    reason: str

    def describe(self, asked: bool | str) -> str:
        chosen = "kept" if self.keep else "glibc's defaults"
        return f"keep_heap {asked} → {chosen}: {self.reason}"

    def record(self, asked: bool | str) -> dict[str, object]:
        return {"asked": asked, "keep": self.keep, "reason": self.reason}


def shape_key(module: nn.Module, rows: int) -> str:
    """What the measurement holds for besides the machine: the parameters' shapes, the rows."""
    return shape_digest(";".join(str(tuple(p.shape)) for p in module.parameters()), rows)


def heap_probe(step: Callable[[], object], rounds: int = 4, budget_s: float = 0.5) -> Probe:
    """Times `step` with glibc's defaults and with the heap kept, alternately: each setting's
    least time over the rounds (as many as fit in `budget_s`, at least one), each timed call
    after an untimed one in the same setting (so that the heap is in that setting's state).
    Leaves glibc's defaults set."""

    def once() -> float:
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0

    def probe() -> tuple[float, float]:
        best = {False: float("inf"), True: float("inf")}
        start = time.perf_counter()
        try:
            for _ in range(rounds):
                for keep in (False, True):
                    set_keep_heap(keep)
                    step()
                    best[keep] = min(best[keep], once())
                if time.perf_counter() - start > budget_s:  # a large network: fewer rounds
                    break
        finally:
            set_keep_heap(False)
        return best[False], best[True]

    return probe


def decide_heap(
    asked: bool | str, device: torch.device, key: str, probe: Probe, cache: Path | None = None
) -> Heap:
    """Whether to keep the heap. `probe` is only called when `auto` has no cached verdict."""
    if _libc() is None:
        return Heap(False, "not glibc: there is nothing to set")
    if asked != "auto":
        return Heap(bool(asked), "set by train.keep_heap")
    if device.type != "cpu":
        # the step's large buffers live on the GPU; the host's are few and small
        return Heap(False, f"the step's buffers are on the {device.type} device")
    speed, how = measured_speed(
        (cache or cache_dir()) / CACHE, f"{machine_key(device)}; {key}", probe
    )
    return Heap(speed >= MARGIN, f"its networks ran {speed:.2f}× as fast with it ({how})")


def apply_heap(
    asked: bool | str,
    step: Callable[[], object],
    key: str,
    device: torch.device,
    dist: Dist,
) -> Heap:
    """Decide on rank 0 (ranks probing side by side would time each other), give every rank
    its verdict and set it in this process."""
    heap = decide_heap(asked, device, key, heap_probe(step)) if dist.main else None
    heap = broadcast_object(dist, heap)
    assert isinstance(heap, Heap)
    if heap.keep or _kept:  # glibc's defaults stay as they are unless this module set them
        set_keep_heap(heap.keep)
    return heap


def choose_heap(trainer: Trainer) -> Heap:
    """`train.keep_heap` for the process of a built Trainer (what `mtgan train` and the
    benchmarks apply), probed on its own networks at its batch; kept as `trainer.heap`."""
    train = trainer.config.train
    rows = max(1, min(256, train.batch_size // trainer.dist.world))
    step = partial(trainer.probe_forward, rows, True)
    key = shape_key(trainer.model, rows)
    trainer.heap = apply_heap(train.keep_heap, step, key, trainer.device, trainer.dist)
    return trainer.heap
