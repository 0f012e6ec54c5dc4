"""The interface every metric sink implements, and the scalars of a record that sinks log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig
    from mtgan.rundir import RunDir


class Logger(Protocol):
    """A metric sink, opened on rank 0 when the loop starts (see `Open`)."""

    def scalars(self, record: dict[str, Any]) -> None:
        """One record of metrics.jsonl: `step` and the values logged at it."""

    def close(self, ok: bool = True) -> None:
        """Flush and release; `ok` is False when the run stopped on an error."""


# A sink's class: opened with the run directory, the resolved config (hyperparameters, logged
# once by the sinks that keep them) and the step training starts from (> 0 on resume).
Open = Callable[["RunDir", "ExperimentConfig", int], Logger]


def numbers(record: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The record's numeric values by key, without `step` (the x axis, not a value)."""
    for key, value in record.items():
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            yield key, value
