"""One tuner for the speed switches that `auto` decides by measurement on the machine at hand:
the process's heap (`train.keep_heap`, allocator.py), the precision (`train.precision`,
precision.py) and the convolutions' memory layout (`train.channels_last`, layout.py).

A capability flag is no guide (oneDNN calls an emulated bf16 supported; AMX's bf16 matmuls are
fast while its bf16 batch norm is slow), and neither is a kernel or a forward pass: what the
user pays for is the whole training step. So for each switch left on `auto` the tuner builds
throw-away trainers of the run itself, one per setting (compile off), warms every setting up
(oneDNN builds its kernels on a first call), and times whole steps — forward, backward,
optimizer, at the run's batch — alternately, so that a machine busy with something else slows
them alike; each setting's least time counts. The run's own trainer is built afterwards with
the verdicts handed in, so the probe leaves no trace in its weights, optimizer or random
streams.

Switches are decided in order, each timed under the verdicts before it: the heap first (its page
faults are in every step the others time), then the precision, then the layout (measured under
the chosen precision). A verdict is cached per machine, torch version, thread count, the run's
network shapes and batch, and the verdicts before it (`CACHE` in the mtgan cache directory); a
probe takes about `BUDGET_S` a switch, the first time; a measurement taken while the machine is
busy with other work (its load average well above its cores) decides this run only and is not
cached. Rank 0 decides and every rank takes its
verdict; under data parallelism all ranks run the probe steps together, as they will train.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from mtgan.atomic import write_text_atomic
from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet, build_tasks
from mtgan.metrics.cache import cache_dir
from mtgan.training.allocator import HeapSwitch
from mtgan.training.device import pick_device
from mtgan.training.distributed import SINGLE, Dist, broadcast_object, device_for
from mtgan.training.layout import LayoutSwitch
from mtgan.training.precision import PrecisionSwitch
from mtgan.training.switch import Situation, Switch, Verdict, machine_key, run_key

CACHE = "tuning.json"
BUDGET_S = 1.0  # a switch's probe, after its warm-up steps; at least one round whatever it costs
MAX_ROUNDS = 30
BUSY = 1.5  # a measurement is not cached while the 1-minute load exceeds this many per core


# In this order: the heap's page faults are in every step the others time, and the layout is
# measured under the chosen precision.
SWITCHES: list[Switch] = [HeapSwitch(), PrecisionSwitch(), LayoutSwitch()]

Verdicts = dict[str, Verdict]
Build = Callable[[ExperimentConfig], "Steppable"]


class Steppable(Protocol):
    """What a probe needs of a trainer: its device and one training step."""

    device: torch.device

    def train_step(self) -> object: ...


def tune(
    config: ExperimentConfig,
    data: TaskSet | None = None,
    dist: Dist = SINGLE,
    build: Build | None = None,
    cache: Path | None = None,
    budget_s: float = BUDGET_S,
) -> Verdicts:
    """Every switch's verdict for this run, by the switch's field name. `build` makes a probe
    trainer from a config (the run's `Trainer` on `data` and `dist`); without it, a switch on
    `auto` takes its cached verdict, or its reference setting where there is none."""
    device = device_for(dist, pick_device(config.train.device))
    data = data if data is not None else build_tasks(config.data, config.seed)
    s = Situation(config, data, device, dist)
    path = (cache or cache_dir()) / CACHE
    verdicts: Verdicts = {}
    probe_config = _probe_config(config)
    for switch in SWITCHES:
        asked = getattr(config.train, switch.name)
        fixed = switch.fixed(asked, s)
        if fixed is not None:
            value, reason = fixed
        else:
            reference, candidate, note = switch.race(s)
            parts = [machine_key(device), switch.name + note, run_key(s), *_so_far(verdicts)]
            key = "; ".join(parts)
            speed, how = _known(path, key, dist)
            if speed is None and build is not None:
                pair = (reference, candidate)
                speed = _measure(switch, probe_config, build, dist, pair, budget_s)
                # rank 0 measured: every rank takes its figure, so all decide alike
                speed, how = broadcast_object(dist, (speed, _store(path, key, speed, dist)))
            value = candidate if speed is not None and speed >= switch.margin else reference
            where = "GPU" if device.type == "cuda" else "CPU"
            reason = (
                f"{note.lstrip('; ')}{'; ' if note else ''}{switch.label(candidate)} ran "
                f"{speed:.2f}× as fast as {switch.label(reference)} on this {where} ({how})"
                if speed is not None
                else f"not measured ({how}): {switch.label(reference)}"
            )
        verdicts[switch.name] = Verdict(switch.name, asked, value, switch.label(value), reason)
        probe_config = switch.configure(probe_config, value)  # the next switches time under it
    return verdicts


def _so_far(verdicts: Verdicts) -> list[str]:
    return [f"{name}={v.value}" for name, v in verdicts.items()]


def _probe_config(config: ExperimentConfig) -> ExperimentConfig:
    """A probe trainer's config: eager (a compiled step would time its compilation), and every
    switch at its reference until decided."""
    train = config.train.model_copy(
        update={"compile": False, "precision": "fp32", "channels_last": False}
    )
    return config.model_copy(update={"train": train})


def _measure(
    switch: Switch,
    config: ExperimentConfig,
    build: Build,
    dist: Dist,
    settings: tuple[Any, Any],
    budget_s: float,
) -> float | None:
    """Seconds of a reference step / seconds of a candidate step, on rank 0 (None elsewhere)."""
    configs = [switch.configure(config, value) for value in settings]
    first = build(configs[0])
    trainers = [first, first if configs[1] == configs[0] else build(configs[1])]
    steps = [_timed_step(t) for t in trainers]
    try:
        best = _race(switch, steps, settings, dist, budget_s)
    finally:
        switch.leave()
    return best[0] / max(best[1], 1e-12) if dist.main else None


def _timed_step(trainer: Steppable) -> Callable[[], float]:
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)

    def run() -> float:
        sync()
        t0 = time.perf_counter()
        trainer.train_step()
        sync()
        return time.perf_counter() - t0

    return run


def _race(
    switch: Switch,
    steps: list[Callable[[], float]],
    settings: tuple[Any, Any],
    dist: Dist,
    budget_s: float,
) -> list[float]:
    """Each setting's least step time: after a warm-up step of each, in rounds that alternate
    them, as many as fit in `budget_s` (rank 0's clock decides for all ranks)."""
    for step, value in zip(steps, settings):
        switch.enter(value)
        step()  # warm-up: kernels, oneDNN primitives, caches, the allocator's pools
    best = [float("inf")] * len(steps)
    start, rounds = time.perf_counter(), 0
    while True:
        for i, (step, value) in enumerate(zip(steps, settings)):
            switch.enter(value)
            for _ in range(switch.settle):
                step()
            best[i] = min(best[i], step())
        rounds += 1
        more = rounds < MAX_ROUNDS and time.perf_counter() - start < budget_s
        if not broadcast_object(dist, more):
            return best


def _known(path: Path, key: str, dist: Dist) -> tuple[float | None, str]:
    """The cached speed under `key` (rank 0 reads it; every rank learns it)."""
    speed = _read(path).get(key) if dist.main else None
    speed = broadcast_object(dist, speed)
    return (float(speed), "measured earlier") if speed is not None else (None, "not cached")


def _store(path: Path, key: str, speed: float | None, dist: Dist) -> str:
    how = "measured now"
    busy = _busy()
    if busy:  # a race run beside other work says little about the next run: keep it to this one
        return f"{how}, not cached ({busy})"
    if dist.main and speed is not None:
        try:
            write_text_atomic(path, json.dumps({**_read(path), key: speed}, indent=1))
        except OSError:
            how += ", not cached (cache directory not writable)"
    return how


def _busy(factor: float = BUSY) -> str:
    """Why the machine is too busy for a measurement worth caching, or "" (CPU load only: a
    GPU's own load is not visible here)."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):  # no load average on this platform
        return ""
    return f"load average {load:.1f} on {cores} cores" if load > factor * cores else ""


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
