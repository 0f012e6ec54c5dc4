"""glibc malloc settings for the training process.

A training step frees and reallocates the same large buffers (activations, gradients, bf16
weight copies) every step. glibc serves blocks above its mmap threshold with fresh mmaps and
returns freed heap tops to the OS, so every step pays page faults for memory it just gave back
(benchmarks/results/design-notes.md has the step times with and without these settings).
The cost: the process keeps its peak heap instead of shrinking after it.
Applied once per process with `mallopt`; nothing happens off glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_heap() -> bool:
    """Serve large blocks from the heap and never trim it; True if the settings took effect."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
