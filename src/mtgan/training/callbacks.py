"""Python-API callbacks: `mtgan.train(..., callbacks=[obj])`, on rank 0.

An object may define any of these methods; the others are skipped:
    on_log(record)            each training log record, as metrics.jsonl gets it (`step`, losses,
                              `lr/<phase>`, ...)
    on_eval(step, result)     each evaluation: metric name → value
    on_checkpoint(step, path) each checkpoint written (complete: `latest` names it already)
    on_stop(reason, step)     once, when the run stops: "steps" (train.steps reached), or
                              "converged" / "diverged" (train.until)
A callback that raises stops the run with a RunError naming it; checkpoints are written whole
and renamed into place, so the last one is intact and `resume` continues from it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mtgan.errors import ConfigError, RunError
from mtgan.training.checkpoint import latest_checkpoint

if TYPE_CHECKING:
    from mtgan.rundir import RunDir

HOOKS = ("on_log", "on_eval", "on_checkpoint", "on_stop")


def check_callbacks(objects: Iterable[object]) -> list[object]:
    """The callbacks as a list; a ConfigError for one with none of the methods (a misspelt
    `on_logs` would otherwise be skipped without a word)."""
    objects = list(objects)
    for i, obj in enumerate(objects):
        if any(callable(getattr(obj, hook, None)) for hook in HOOKS):
            continue
        near = [m for n in dir(obj) for m in difflib.get_close_matches(n, HOOKS, n=1)]
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"callbacks[{i}] ({type(obj).__name__}) has none of the methods "
            f"{', '.join(HOOKS)}{hint}"
        )
    return objects


class Callbacks:
    """The user's callbacks for one run directory."""

    def __init__(self, objects: Iterable[object], run: RunDir):
        self.objects, self.run = check_callbacks(objects), run

    def fire(self, hook: str, *args: Any) -> None:
        for obj in self.objects:
            method = getattr(obj, hook, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as e:
                last = latest_checkpoint(self.run.checkpoints)
                kept = (
                    f"its last checkpoint, {last.name}, is intact" if last else "no checkpoint yet"
                )
                raise RunError(
                    f"callback {type(obj).__name__}.{hook} raised {type(e).__name__}: {e}; the "
                    f"run stopped ({kept}); continue it with "
                    f"mtgan.train(resume={str(self.run.path)!r})"
                ) from e
