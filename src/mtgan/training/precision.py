"""`train.precision`: float32, or autocast to bf16 / fp16, and what `auto` may race.

`auto` races bf16 against float32 with whole training steps (tuner.py) and takes bf16 only
where it is faster on this machine: oneDNN reports bf16 as supported on CPUs that emulate it
(an Intel Xeon without AVX512-BF16 or AMX runs it at about a third of the float32 rate), and
where its matmuls are fast, casts and a slower bf16 batch norm can still eat the gain.

A GPU without native bf16 (before Ampere: T4, V100) races fp16 instead, which its tensor cores
compute; its verdict is cached apart from bf16's. A CPU never gets fp16 from `auto`: its float16
kernels are slow, and it would need a loss scale for nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from mtgan.config import ExperimentConfig
from mtgan.training.switch import Situation, Switch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast a step of this precision runs under (disabled for fp32)."""
    low = DTYPES.get(precision)
    return torch.autocast(device.type, dtype=low or torch.bfloat16, enabled=low is not None)


class PrecisionSwitch(Switch):
    name = "precision"

    def fixed(self, asked: Any, s: Situation) -> tuple[Any, str] | None:
        if asked != "auto":
            return asked, "set by train.precision"
        if s.data.kind == "points":
            # bf16 resolves 4.0 only to ±0.016, a third of the 2D grid's σ = 0.05
            return "fp32", "2D points stay in float32 (bf16 cannot resolve their modes)"
        return None

    def race(self, s: Situation) -> tuple[Any, Any, str]:
        if s.device.type == "cuda" and not _native_bf16():
            return "fp32", "fp16", "; this GPU has no bf16"
        return "fp32", "bf16", ""

    def configure(self, config: ExperimentConfig, value: Any) -> ExperimentConfig:
        train = config.train.model_copy(update={"precision": value})
        return config.model_copy(update={"train": train})


def _native_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch without the argument: its own answer
        return torch.cuda.is_bf16_supported()
