"""What a bench runs: presets × seeds (× the values of a swept key) under one protocol
(overrides, metrics, evaluation cadence, the swept key).

A bench directory (its layout: `mtgan.rundir.BenchDir`) holds the protocol, ordinary run
directories per preset (and swept value) and seed, and their logs. The protocol is fixed when
the directory is first used: a later `mtgan bench` into it may add presets, seeds or values of
the swept key, but not change the overrides, the metrics or the key, or the runs would not be
comparable any more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mtgan.atomic import write_text_atomic
from mtgan.bench.sweep import SWEPT, Sweep
from mtgan.config import ExperimentConfig, load_config
from mtgan.errors import ConfigError
from mtgan.metrics.registry import table_metrics
from mtgan.rundir import BenchDir

EVAL_POINTS = 10  # evaluations per run when --eval-every is not given: enough for a curve
# What the bench sets per run after the overrides (`run_overrides`), and the option for it.
PER_RUN = {"eval.metrics": "--metrics", "eval.every": "--eval-every", "seed": "--seeds"}


@dataclass
class Protocol:
    """What every run of a bench shares."""

    overrides: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    eval_every: int | None = None
    sweep: str | None = None  # the swept key (`--sweep`), or None


@dataclass(frozen=True)
class BenchRun:
    """One preset × seed of a bench (× swept value)."""

    label: str  # the preset's name, or a config file's stem
    target: str  # what `mtgan train` is given: a preset name or a config path
    seed: int
    path: Path
    setting: str | None = None  # the swept override, "data.per_task=10", or None

    @property
    def name(self) -> str:
        """The run's directory and log name: the label, with its swept setting if any."""
        return self.label if self.setting is None else f"{self.label}{SWEPT}{self.setting}"

    @property
    def extra(self) -> tuple[str, ...]:
        """Its overrides beyond the protocol's: the swept setting."""
        return () if self.setting is None else (self.setting,)


def parse_name(name: str) -> tuple[str, str | None]:
    """(label, setting) of a run's directory name (`BenchRun.name`)."""
    label, sep, setting = name.partition(SWEPT)
    return label, setting if sep else None


def label_of(target: str) -> str:
    return Path(target).stem if target.endswith((".yaml", ".yml")) else target


def resolve_protocol(
    targets: list[str],
    overrides: list[str],
    metrics: list[str] | None,
    eval_every: int | None,
    sweep: Sweep | None = None,
) -> tuple[Protocol, dict[str, ExperimentConfig]]:
    """Choose the metrics (those named, or the primary metrics every preset supports) and the
    cadence, then validate every preset (at every swept value) with exactly what its runs will
    be trained with, so a wrong key fails here, before any run; the configs are keyed by run
    name. `train.until` is left out of the first pass: it names a metric that only the
    protocol's `eval.metrics` adds."""
    if len({label_of(t) for t in targets}) != len(targets):
        raise ConfigError("mtgan bench: each preset may be named once")
    settings = [None] if sweep is None else list(sweep.settings())
    if sweep is not None:
        sweep.check_not_in(overrides)
        if sweep.key in PER_RUN:
            raise ConfigError(
                f"--sweep {sweep.key}: the bench sets it for every run; use {PER_RUN[sweep.key]}"
            )
    cases = [BenchRun(label_of(t), t, 0, Path(), s) for t in targets for s in settings]
    plain = [o for o in overrides if not o.split("=", 1)[0].startswith("train.until")]
    configs = {c.name: load_config(c.target, [*plain, *c.extra]) for c in cases}
    if metrics is None:
        each = [table_metrics(c) for c in configs.values()]
        metrics = [m for m in each[0] if all(m in e for e in each)]
    if eval_every is None:
        steps = min(c.train.steps for c in configs.values())
        eval_every = max(1, steps // EVAL_POINTS)
    key = None if sweep is None else sweep.key
    protocol = Protocol(list(overrides), list(metrics), eval_every, key)
    configs = {c.name: load_config(c.target, run_overrides(protocol, c, None)) for c in cases}
    return protocol, configs


def run_overrides(protocol: Protocol, run: BenchRun, threads: int | None) -> list[str]:
    """What each run is trained with: the protocol, its swept setting, its seed and quiet
    bookkeeping."""
    extra = [
        f"eval.metrics=[{','.join(protocol.metrics)}]",
        f"eval.every={protocol.eval_every}",
        f"seed={run.seed}",
    ]
    given = [*protocol.overrides, *run.extra]
    if threads is not None and not any(o.startswith("train.threads=") for o in given):
        extra.append(f"train.threads={threads}")
    return [*protocol.overrides, *run.extra, *extra]


def plan_runs(
    out: Path, targets: list[str], seeds: list[int], sweep: Sweep | None = None
) -> list[BenchRun]:
    """Every preset × swept value × seed, in that order."""
    settings = [None] if sweep is None else list(sweep.settings())
    runs = []
    for target in targets:
        for setting in settings:
            for seed in seeds:
                run = BenchRun(label_of(target), target, seed, Path(), setting)
                runs.append(replace(run, path=BenchDir(out).run(run.name, seed)))
    return runs


def fix_protocol(
    out: Path, protocol: Protocol, labels: list[str], values: Sequence[str] = ()
) -> None:
    """Record the protocol in a new bench directory, or check it against the recorded one;
    remember the presets and swept values in the order they were first benched (the tables
    keep it)."""
    path = BenchDir(out).protocol
    known: list[str] = []
    known_values: list[str] = []
    if path.exists():
        saved = json.loads(path.read_text())
        known = saved.pop("presets", [])
        known_values = saved.pop("values", [])
        recorded = Protocol(**saved)
        for name in ("overrides", "metrics", "eval_every", "sweep"):
            old, new = getattr(recorded, name), getattr(protocol, name)
            if old != new:
                raise ConfigError(
                    f"{out} holds a bench run with {name}={old}, not {new}: its runs would not "
                    "be comparable. Use another --out, or the same settings to add presets, "
                    "seeds or swept values"
                )
    out.mkdir(parents=True, exist_ok=True)
    presets = known + [label for label in labels if label not in known]
    record = {**asdict(protocol), "presets": presets}
    if protocol.sweep is not None:
        record["values"] = known_values + [v for v in values if v not in known_values]
    write_text_atomic(path, json.dumps(record, indent=1))


def read_protocol(out: Path) -> tuple[Protocol, list[str], list[str]]:
    """The recorded protocol, the presets and the swept values benched so far, in order."""
    path = BenchDir(out).protocol
    if not path.exists():
        raise ConfigError(f"{out} is not a bench directory (no {path.name})")
    saved = json.loads(path.read_text())
    presets = saved.pop("presets", [])
    values = saved.pop("values", [])
    return Protocol(**saved), presets, values


def is_bench_dir(path: Path) -> bool:
    return BenchDir(path).is_bench()
