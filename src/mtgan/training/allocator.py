"""glibc malloc settings for the training process (`train.keep_heap`).

A training step frees and reallocates the same large buffers (activations, gradients, bf16
weight copies) every step. glibc serves blocks above its mmap threshold with fresh mmaps and
returns freed heap tops to the OS, so every step pays page faults for memory it just gave back
(benchmarks/results/design-notes.md has the step times with and without these settings).
The cost: the process keeps its peak heap instead of shrinking after it.
Applied with `mallopt`, process-wide, so by the entry point (`mtgan train`), never by a
Trainer a library user builds; nothing happens off glibc (macOS, Windows, musl).

What a page fault costs differs between machines (a VM's nested page tables, the kernel's
zeroing of fresh pages), so `auto` races the two settings with whole training steps of the run
(tuner.py) and keeps the heap only where that is faster.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

from mtgan.training.switch import Situation, Switch, Verdict

# The heap is kept where the probe ran at least this much faster with it. Lower than the
# precision's margin: keeping it costs memory, never accuracy, and the gain is often ~10%.
MARGIN = 1.03
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# glibc's documented defaults, restored by set_keep_heap(False). Any mallopt turns off glibc's
# own raising of the thresholds after a large free (for good), so the thresholds are set
# back to their starting values: "defaults" is the same state whenever the probe returns to it.
_DEFAULTS = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024}
_KEPT = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}

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


class HeapSwitch(Switch):
    name = "keep_heap"
    margin = MARGIN
    settle = 1  # a step in the new setting first: the heap takes that setting's shape

    def fixed(self, asked: Any, s: Situation) -> tuple[Any, str] | None:
        if _libc() is None:
            return False, "not glibc: there is nothing to set"
        if asked != "auto":
            return bool(asked), "set by train.keep_heap"
        if s.device.type != "cpu":
            # the step's large buffers live on the GPU; the host's are few and small
            return False, f"the step's buffers are on the {s.device.type} device"
        return None

    def race(self, s: Situation) -> tuple[Any, Any, str]:
        return False, True, ""

    def label(self, value: Any) -> str:
        return "kept" if value else "glibc's defaults"

    def enter(self, value: Any) -> None:
        set_keep_heap(bool(value))

    def leave(self) -> None:
        set_keep_heap(False)


def apply_heap(verdict: Verdict) -> None:
    """Put the verdict in place for this process (glibc's defaults stay as they are unless
    this module set them)."""
    if verdict.value or _kept:
        set_keep_heap(bool(verdict.value))
