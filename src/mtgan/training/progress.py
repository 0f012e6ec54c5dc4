"""The training progress line: tqdm's bar on a terminal; in a log file (stderr not a terminal),
one plain line per tenth of the run, since a bar's carriage-return redraws flood a log."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm.auto import tqdm

LINES = 10  # plain lines over a whole run


class PlainProgress:
    """tqdm's interface as the loop uses it (`update`, `set_postfix`, `n`, `close`), printing
    `train 300/3000 (10 %), 41.2 steps/s, d/loss=0.512 g/loss=1.230` at each tenth."""

    def __init__(self, total: int, initial: int, desc: str = "train") -> None:
        self.total, self.n, self.desc = total, initial, desc
        self.every = max(1, total // LINES)
        self.postfix: dict[str, str] = {}
        self._since, self._t0 = initial, time.perf_counter()

    def update(self, steps: int = 1) -> None:
        self.n += steps
        if self.n % self.every == 0 or self.n == self.total:
            self._line()

    def set_postfix(self, values: dict[str, Any]) -> None:
        self.postfix = {k: str(v) for k, v in values.items()}

    def _line(self) -> None:
        now = time.perf_counter()
        rate = (self.n - self._since) / max(now - self._t0, 1e-9)
        self._since, self._t0 = self.n, now
        percent = 100 * self.n // max(self.total, 1)
        text = f"{self.desc} {self.n}/{self.total} ({percent} %), {rate:.1f} steps/s"
        if self.postfix:
            text += ", " + " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class Silent(PlainProgress):
    def _line(self) -> None:
        pass


def progress(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar on a terminal, plain lines otherwise, nothing when not `enabled`."""
    if not enabled:
        return Silent(total, initial)
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)
    return PlainProgress(total, initial)
