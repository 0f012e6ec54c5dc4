"""`train.channels_last`: the convolutions' memory layout, and what `auto` may race.

Which layout is faster depends on the layer (its channels, size and stride), the backend (oneDNN,
cuDNN) and the processor: on one 2-core CPU a 32×32 input layer ran 3.4× faster in NHWC while a
64→32 transposed layer ran 2× slower. So `auto` races the two with whole training steps
(tuner.py), under the precision already chosen, and takes NHWC only where it is faster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from mtgan.config import ExperimentConfig
from mtgan.nets import StackedConv2d, StackedConvTranspose2d
from mtgan.training.switch import Situation, Switch

Convolution = StackedConv2d | StackedConvTranspose2d


def convolutions(modules: Iterable[nn.Module]) -> list[Convolution]:
    return [
        m
        for root in modules
        for m in root.modules()
        if isinstance(m, (StackedConv2d, StackedConvTranspose2d))
    ]


def set_channels_last(modules: Iterable[nn.Module], on: bool) -> None:
    for conv in convolutions(modules):
        conv.channels_last = on


class LayoutSwitch(Switch):
    name = "channels_last"

    def fixed(self, asked: Any, s: Situation) -> tuple[Any, str] | None:
        if len(s.data.shape) != 3:
            return False, "no convolutions (the data are not images)"
        model = s.config.model
        if model.arch == "mlp" and model.d_arch in (None, "mlp") and model.g_out_kernel is None:
            return False, "no convolutions"
        if asked != "auto":
            return bool(asked), "set by train.channels_last"
        return None

    def race(self, s: Situation) -> tuple[Any, Any, str]:
        return False, True, ""

    def label(self, value: Any) -> str:
        return "channels-last" if value else "contiguous"

    def configure(self, config: ExperimentConfig, value: Any) -> ExperimentConfig:
        train = config.train.model_copy(update={"channels_last": value})
        return config.model_copy(update={"train": train})
