"""Fault injection for the crash-safety tests: `MTGAN_TEST_FAULT=point:arg[,point:arg]`.

Points: `checkpoint:N` kills the process with SIGKILL halfway through writing its N-th
checkpoint (weights written, state and rename not yet); `exit:R:S` makes rank R exit abruptly
when it reaches step S. Unset (always, outside tests) it costs one dict lookup per call.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _specs() -> list[list[str]]:
    raw = os.environ.get("MTGAN_TEST_FAULT", "")
    return [item.split(":") for item in raw.split(",") if item]


def checkpoint_write() -> None:
    """Called between writing a checkpoint's weights and its state."""
    specs = [s for s in _specs() if s[0] == "checkpoint"]
    if not specs:
        return
    _counts["checkpoint"] = _counts.get("checkpoint", 0) + 1
    if any(int(s[1]) == _counts["checkpoint"] for s in specs):
        os.kill(os.getpid(), signal.SIGKILL)


def step_reached(rank: int, step: int) -> None:
    """Called at the start of every step."""
    for spec in _specs():
        if spec[0] == "exit" and int(spec[1]) == rank and int(spec[2]) == step:
            os._exit(3)
