"""`train.channels_last=auto`: the convolutions' memory layout, decided by measurement.

Which layout is faster depends on the layer (its channels, size and stride), the backend
(oneDNN, cuDNN) and the processor: on one 2-core CPU a 32×32 input layer ran 3.4× faster in
NHWC while a 64→32 transposed layer ran 2× slower. So `auto` times the run's own networks,
forward and backward, in both layouts (alternately, well under a second), takes NHWC only
where it is faster, and caches the verdict per machine and network shape, as
`train.precision=auto` does (precision.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mtgan.metrics.cache import cache_dir
from mtgan.nets import StackedConv2d, StackedConvTranspose2d
from mtgan.training.distributed import Dist, broadcast_object
from mtgan.training.precision import (
    MARGIN,
    interleaved,
    machine_key,
    measured_speed,
    shape_digest,
)

CACHE = "layout.json"

Convolution = StackedConv2d | StackedConvTranspose2d
Probe = Callable[[], tuple[float, float]]  # → (seconds contiguous, seconds channels-last)


@dataclass(frozen=True)
class Layout:
    channels_last: bool
    reason: str

    def describe(self, asked: bool | str) -> str:
        chosen = "channels-last" if self.channels_last else "contiguous"
        return f"channels_last {asked} → {chosen}: {self.reason}"

    def record(self, asked: bool | str) -> dict[str, object]:
        return {"asked": asked, "channels_last": self.channels_last, "reason": self.reason}


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


def shape_key(convs: list[Convolution], rows: int) -> str:
    """What the measurement holds for besides the machine: every convolution's shape."""
    text = ";".join(f"{type(c).__name__}{c.copies},{c.in_ch},{c.out_ch},{c.stride}" for c in convs)
    return shape_digest(text, rows)


def decide_layout(
    asked: bool | str,
    device: torch.device,
    convs: list[Convolution],
    probe: Probe,
    rows: int,
    cache: Path | None = None,
) -> Layout:
    """The layout to train in. `probe` is only called when `auto` has no cached verdict."""
    if not convs:
        return Layout(False, "no convolutions")
    if asked != "auto":
        return Layout(bool(asked), "set by train.channels_last")
    key = f"{machine_key(device)}; convolutions {shape_key(convs, rows)}"
    speed, how = measured_speed((cache or cache_dir()) / CACHE, key, probe)
    where = "GPU" if device.type == "cuda" else "CPU"
    return Layout(
        speed >= MARGIN,
        f"channels-last ran at {speed:.2f}× the contiguous speed on this {where} ({how})",
    )


def layout_probe(
    step: Callable[[], object], modules: list[nn.Module], device: torch.device
) -> Probe:
    """Times `step` (the run's networks forward and backward) in both layouts, alternately;
    leaves the modules contiguous."""

    def in_layout(on: bool) -> Callable[[], object]:
        def run() -> object:
            set_channels_last(modules, on)
            return step()

        return run

    def probe() -> tuple[float, float]:
        try:
            return interleaved(in_layout(False), in_layout(True), device, budget_s=0.3)
        finally:
            set_channels_last(modules, False)

    return probe


def apply_layout(
    asked: bool | str,
    nets: list[nn.Module],
    step: Callable[[], object],
    rows: int,
    device: torch.device,
    dist: Dist,
) -> Layout:
    """Decide on rank 0 (ranks probing side by side would time each other), give every rank
    its verdict, and set it on `nets` (the model first; its EMA copy too)."""
    layout = None
    if dist.main:
        probe = layout_probe(step, nets, device)
        layout = decide_layout(asked, device, convolutions(nets[:1]), probe, rows)
    layout = broadcast_object(dist, layout)
    assert isinstance(layout, Layout)
    set_channels_last(nets, layout.channels_last)
    return layout
