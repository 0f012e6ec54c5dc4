"""Where a run's tensors live: the device a config asks for, counters kept on it (so that a
step updates them without a host sync), and batch indices moved to it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.errors import RunError


def pick_device(name: str) -> torch.device:
    """train.device: `auto` is CUDA where there is a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("train.device=cuda, but no CUDA device is available; use auto or cpu")
    return torch.device(name)


class DeviceCount:
    """An int attribute kept as a tensor on the trainer's device, so that a step can update it
    without a host sync; reading it syncs (at log and checkpoint steps only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, trainer: Any, owner: type | None = None) -> Any:
        return self if trainer is None else int(getattr(trainer, self.slot))

    def __set__(self, trainer: Any, value: int) -> None:
        setattr(trainer, self.slot, torch.tensor(value, device=trainer.device))


def on_device(shard: slice | Tensor, device: torch.device) -> slice | Tensor:
    return shard if isinstance(shard, slice) else shard.to(device)
