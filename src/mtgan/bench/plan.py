"""What a bench runs: presets × seeds under one protocol (overrides, metrics, evaluation cadence).

A bench directory (its layout: `mtgan.rundir.BenchDir`) holds the protocol, ordinary run
directories per preset and seed, and their logs. The protocol is fixed when the directory is
first used: a later `mtgan bench` into it may add presets or seeds, but not change the
overrides or the metrics, or the runs would not be comparable any more.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mtgan.atomic import write_text_atomic
from mtgan.config import ExperimentConfig, load_config
from mtgan.errors import ConfigError
from mtgan.metrics.registry import table_metrics
from mtgan.rundir import BenchDir

EVAL_POINTS = 10  # evaluations per run when --eval-every is not given: enough for a curve


@dataclass
class Protocol:
    """What every run of a bench shares."""

    overrides: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    eval_every: int | None = None


@dataclass(frozen=True)
class BenchRun:
    """One preset × seed of a bench."""

    label: str  # the preset's name, or a config file's stem
    target: str  # what `mtgan train` is given: a preset name or a config path
    seed: int
    path: Path


def label_of(target: str) -> str:
    return Path(target).stem if target.endswith((".yaml", ".yml")) else target


def resolve_protocol(
    targets: list[str], overrides: list[str], metrics: list[str] | None, eval_every: int | None
) -> tuple[Protocol, dict[str, ExperimentConfig]]:
    """Choose the metrics (those named, or the primary metrics every preset supports) and the
    cadence, then validate every preset with exactly what its runs will be trained with, so a
    wrong key fails here, before any run. `train.until` is left out of the first pass: it
    names a metric that only the protocol's `eval.metrics` adds."""
    if len({label_of(t) for t in targets}) != len(targets):
        raise ConfigError("mtgan bench: each preset may be named once")
    plain = [o for o in overrides if not o.split("=", 1)[0].startswith("train.until")]
    configs = {label_of(t): load_config(t, plain) for t in targets}
    if metrics is None:
        each = [table_metrics(c) for c in configs.values()]
        metrics = [m for m in each[0] if all(m in e for e in each)]
    if eval_every is None:
        steps = min(c.train.steps for c in configs.values())
        eval_every = max(1, steps // EVAL_POINTS)
    protocol = Protocol(list(overrides), list(metrics), eval_every)
    configs = {label_of(t): load_config(t, run_overrides(protocol, 0, None)) for t in targets}
    return protocol, configs


def run_overrides(protocol: Protocol, seed: int, threads: int | None) -> list[str]:
    """What each run is trained with: the protocol, its seed and quiet bookkeeping."""
    extra = [
        f"eval.metrics=[{','.join(protocol.metrics)}]",
        f"eval.every={protocol.eval_every}",
        f"seed={seed}",
    ]
    if threads is not None and not any(o.startswith("train.threads=") for o in protocol.overrides):
        extra.append(f"train.threads={threads}")
    return [*protocol.overrides, *extra]


def plan_runs(out: Path, targets: list[str], seeds: list[int]) -> list[BenchRun]:
    return [
        BenchRun(label_of(t), t, s, BenchDir(out).run(label_of(t), s))
        for t in targets
        for s in seeds
    ]


def fix_protocol(out: Path, protocol: Protocol, labels: list[str]) -> None:
    """Record the protocol in a new bench directory, or check it against the recorded one;
    remember the presets in the order they were first benched (the tables keep it)."""
    path = BenchDir(out).protocol
    known: list[str] = []
    if path.exists():
        saved = json.loads(path.read_text())
        known = saved.pop("presets", [])
        recorded = Protocol(**saved)
        for name in ("overrides", "metrics", "eval_every"):
            old, new = getattr(recorded, name), getattr(protocol, name)
            if old != new:
                raise ConfigError(
                    f"{out} holds a bench run with {name}={old}, not {new}: its runs would not "
                    "be comparable. Use another --out, or the same settings to add presets/seeds"
                )
    out.mkdir(parents=True, exist_ok=True)
    presets = known + [label for label in labels if label not in known]
    write_text_atomic(path, json.dumps({**asdict(protocol), "presets": presets}, indent=1))


def read_protocol(out: Path) -> tuple[Protocol, list[str]]:
    """The recorded protocol and the presets benched so far, in order."""
    path = BenchDir(out).protocol
    if not path.exists():
        raise ConfigError(f"{out} is not a bench directory (no {path.name})")
    saved = json.loads(path.read_text())
    presets = saved.pop("presets", [])
    return Protocol(**saved), presets


def is_bench_dir(path: Path) -> bool:
    return BenchDir(path).is_bench()
