"""Metric sinks (`train.loggers`): one small class per sink behind one interface (base.py), a
registry, and `Loggers`, the one object the loop talks to.

metrics.jsonl is always written and always first: it is the run's record. A sink's missing
package is a ConfigError before anything is built (`require`); a sink other than jsonl that
fails mid-run is switched off with a warning, since the record goes on without it.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mtgan.errors import ConfigError, RunError
from mtgan.training.loggers.base import Logger, Open
from mtgan.training.loggers.csv import CsvLogger
from mtgan.training.loggers.jsonl import JsonlLogger
from mtgan.training.loggers.mlflow import MlflowLogger
from mtgan.training.loggers.tensorboard import TensorBoardLogger
from mtgan.training.loggers.wandb import WandbLogger

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig, TrainConfig
    from mtgan.rundir import RunDir


@dataclass(frozen=True)
class Sink:
    open: Open
    package: str | None = None  # the module it imports, None: nothing beyond mtgan's own
    extra: str | None = None  # `pip install "mtgan[extra]"` installs the package


SINKS: dict[str, Sink] = {
    "jsonl": Sink(JsonlLogger),
    "tensorboard": Sink(TensorBoardLogger, "tensorboard", "tensorboard"),
    "csv": Sink(CsvLogger),
    "wandb": Sink(WandbLogger, "wandb", "wandb"),
    "mlflow": Sink(MlflowLogger, "mlflow", "mlflow"),
}
RECORD = "jsonl"


def check_names(names: list[str]) -> list[str]:
    """`train.loggers` as saved: registered names, each once, jsonl first (always on)."""
    for name in names:
        if name not in SINKS:
            close = difflib.get_close_matches(name, SINKS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{name!r} is not a logger{hint}; choose from {', '.join(SINKS)}")
    return list(dict.fromkeys([RECORD, *names]))


def installed(package: str | None) -> bool:
    return package is None or importlib.util.find_spec(package) is not None


def chosen(train: TrainConfig) -> list[str]:
    """The sinks a run writes: `train.loggers`, or by default jsonl and, where it is installed,
    tensorboard (what runs did before train.loggers existed)."""
    if train.loggers is not None:
        return list(train.loggers)
    return [RECORD] + (["tensorboard"] if installed("tensorboard") else [])


def require(train: TrainConfig) -> None:
    """A ConfigError naming the extra to install if a chosen sink's package is missing."""
    for name in chosen(train):
        sink = SINKS[name]
        if not installed(sink.package):
            raise ConfigError(
                f"train.loggers: {name} needs the {sink.package} package, which is not "
                f'installed; pip install "mtgan[{sink.extra}]", or leave {name} out'
            )


class Loggers:
    """Every chosen sink as one: `scalars` fans a record out, jsonl first; `close` closes all."""

    def __init__(self, sinks: dict[str, Logger]):
        self.sinks = sinks

    def scalars(self, record: dict[str, Any]) -> None:
        for name, sink in list(self.sinks.items()):
            if name == RECORD:  # the run's record: its errors (a full disk) stop the run
                sink.scalars(record)
                continue
            try:
                sink.scalars(record)
            except Exception as e:
                print(
                    f"warning: the {name} logger failed at step {record.get('step')} ({e}); "
                    "it is off for the rest of the run, metrics.jsonl has every record",
                    file=sys.stderr,
                )
                self.sinks.pop(name)
                self._close(name, sink, ok=False)

    def close(self, ok: bool = True) -> None:
        """`ok`: the run stopped as asked (external runs are marked finished, else failed)."""
        for name, sink in self.sinks.items():
            self._close(name, sink, ok)
        self.sinks = {}

    @staticmethod
    def _close(name: str, sink: Logger, ok: bool) -> None:
        try:
            sink.close(ok)
        except Exception as e:  # closing must not hide the error that stopped the run
            print(f"warning: closing the {name} logger failed: {e}", file=sys.stderr)


def open_loggers(run: RunDir, config: ExperimentConfig, step: int) -> Loggers:
    """The chosen sinks of a run, opened (rank 0); `step`: where training starts."""
    require(config.train)
    sinks: dict[str, Logger] = {}
    for name in chosen(config.train):
        try:
            sinks[name] = SINKS[name].open(run, config, step)
        except Exception as e:
            Loggers(sinks).close(ok=False)
            raise RunError(f"train.loggers: cannot start the {name} logger: {e}") from e
    return Loggers(sinks)
