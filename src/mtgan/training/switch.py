"""A speed switch: a `train.*` field that `auto` decides by measurement (tuner.py races the
settings), what it resolved to (`Verdict`), and what its rules may read (`Situation`).
The switches are the heap (allocator.py), the precision (precision.py) and the convolutions'
layout (layout.py)."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet
from mtgan.training.distributed import Dist


@dataclass(frozen=True)
class Verdict:
    """What one switch resolved to for a run, and why."""

    switch: str  # its train.* field
    asked: Any  # the config's value
    value: Any  # what the run uses
    label: str  # the value in words
    reason: str

    def describe(self) -> str:
        return f"{self.switch} {self.asked} → {self.label}: {self.reason}"

    def record(self) -> dict[str, Any]:
        return {"asked": self.asked, "chosen": self.value, "reason": self.reason}


@dataclass(frozen=True)
class Situation:
    """What a switch's rules may read: the run's config, data, device and process count."""

    config: ExperimentConfig
    data: TaskSet
    device: torch.device
    dist: Dist


class Switch:
    """One speed switch. Subclasses (precision.py, layout.py, allocator.py) say what is fixed
    without measuring, which two settings to race, and how a setting is put in place."""

    name: str  # the train.* field
    margin = 1.05  # the candidate must be this much faster than the reference to be chosen
    settle = 0  # untimed steps after entering a setting, before a timed one

    def fixed(self, asked: Any, s: Situation) -> tuple[Any, str] | None:
        """(value, reason) when there is nothing to measure: set by the user, or ruled out."""
        raise NotImplementedError

    def race(self, s: Situation) -> tuple[Any, Any, str]:
        """(reference, candidate, note): the note joins the cache key and the reason."""
        raise NotImplementedError

    def label(self, value: Any) -> str:
        return str(value)

    def configure(self, config: ExperimentConfig, value: Any) -> ExperimentConfig:
        """The config a probe trainer in this setting is built from."""
        return config

    def enter(self, value: Any) -> None:
        """Put a process-wide setting in place before a probe step (the heap's)."""

    def leave(self) -> None:
        """Undo what `enter` did, after the probe."""


def machine_key(device: torch.device) -> str:
    """What a verdict holds for: the processor (or GPU) and the torch build."""
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


def run_key(s: Situation) -> str:
    """What a verdict holds for besides the machine: everything that shapes a step's work."""
    train = s.config.train
    shapes = {
        "model": s.config.model.model_dump(mode="json"),
        "loss": s.config.loss.model_dump(mode="json"),
        "balance": s.config.balance.model_dump(mode="json"),
        "train": [train.batch_size, train.accumulate, train.n_critic, train.schedule, train.ema],
        "data": [list(s.data.shape), s.data.num_tasks, s.data.num_classes],
        "world": s.dist.world,
        "threads": torch.get_num_threads(),
    }
    return "run " + hashlib.sha1(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:12]
