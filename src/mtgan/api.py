"""The Python API: everything the command line does, as plain function calls.

import mtgan
config = mtgan.load_config("pertask", ["train.steps=200"])
run = mtgan.train(config, out="runs/demo")
images = run.sample(task=3, n=16)          # (16, 1, 28, 28) in [0, 1]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtgan.config import ExperimentConfig, load_config
from mtgan.data import build_tasks
from mtgan.errors import MtganError, RunError
from mtgan.metrics.registry import check_fits
from mtgan.nets import MultiGAN
from mtgan.objectives.terms import build_terms, declared_heads
from mtgan.run import Run
from mtgan.rundir import CONFIG, RunDir, default_run_dir
from mtgan.training import Trainer, pick_device
from mtgan.training.callbacks import check_callbacks
from mtgan.training.distributed import barrier, broadcast_object, init_distributed, shutdown
from mtgan.training.init_from import describe_start, locate_source, prepare_config, start_from
from mtgan.training.loggers import require as require_loggers
from mtgan.training.phases import build_phases, describe_phases
from mtgan.training.trainer import build_tuned


def describe(config: ExperimentConfig | str | Path | dict | None = None, overrides=None) -> str:
    """Every network, which layers are shared by whom, and parameter counts (shared vs own).

    Builds the data too, since the networks' shapes and the number of tasks come from it.
    """
    from mtgan.data import build_tasks

    config = prepare_config(load_config(config, overrides), None, None)
    data = build_tasks(config.data, config.seed)
    model = MultiGAN(
        config.model, data.shape, data.num_tasks, data.num_classes, heads=declared_heads(config)
    )
    phases = build_phases(config, model, build_terms(config))
    head = f"{data.num_tasks} task(s) of shape {'×'.join(map(str, data.shape))}: "
    names = ", ".join(data.names[:12]) + (" ..." if data.num_tasks > 12 else "")
    start = describe_start(config, model, data, _init_source(config))
    return head + names + "\n" + model.describe() + "\n" + describe_phases(phases) + start


def _init_source(config: ExperimentConfig) -> Run | None:
    """The run (and checkpoint) train.init_from names, opened; None without one."""
    source = config.train.init_from
    return None if source is None else Run(*locate_source(source))


def train(
    config: ExperimentConfig | str | Path | dict | None = None,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    quiet: bool = False,
    callbacks: Sequence[object] = (),
    init_from: str | Path | None = None,
) -> Run:
    """Train a config (preset name, YAML path, dict or ExperimentConfig) and return the run.

    With `resume=RUN_DIR` the run continues from its latest checkpoint exactly (weights,
    optimizers, EMA, step and RNG states); `overrides` such as `train.steps=N` extend it.
    Launched by torchrun (`torchrun --nproc_per_node N -m mtgan train ...`), every process trains
    its shard of the global batch and rank 0 alone writes the run directory.
    `callbacks`: objects with any of on_log(record), on_eval(step, result),
    on_checkpoint(step, path), on_stop(reason, step), called on rank 0 (training/callbacks.py).
    `init_from=RUN` (train.init_from): start from that run's weights (training/init_from.py).
    """
    source = config
    resumed = RunDir(resume).load_config() if resume is not None else None
    config = (
        RunDir(resume).load_config(overrides)
        if resume is not None
        else load_config(config, overrides)
    )
    config = prepare_config(config, init_from, resumed)
    require_loggers(config.train)  # a missing package fails here, before anything is built
    callbacks = check_callbacks(callbacks)
    info = init_distributed(pick_device(config.train.device), config.train.dist_timeout)
    quiet = quiet or not info.main
    try:
        data = build_tasks(config.data, config.seed)  # data and model first: no dir on errors
        check_fits(config, data)  # every metric of eval.metrics can run on this data
        trainer = build_tuned(config, data, info)  # speed switches measured (tuner.py)
        restored = trainer.restore(RunDir(resume)) if resume is not None else False
        init = None  # the weights a new run starts from, and what model.freeze holds fixed
        if not restored and (config.train.init_from is not None or config.model.freeze):
            init = start_from(trainer, _init_source(config))
        if trainer.step > config.train.steps:  # before the run directory is touched
            raise RunError(
                f"{resume} is at step {trainer.step}, past train.steps={config.train.steps}: "
                f"nothing to train, and nothing was changed; give train.steps above "
                f"{trainer.step} to continue it"
            )
        # Rank 0 decides the directory and prepares it; the others learn the outcome.
        outcome: tuple[str, str | None] = ("", None)
        if info.main:
            outcome = _prepare_run_dir(config, source, out, resume)
        path, error = broadcast_object(info, outcome)
        if error is not None:
            raise RunError(error)
        run_dir = RunDir(path)
        if info.main:
            _write_tasks(run_dir, trainer)
            if init is not None:
                run_dir.write_init(init.record())
        barrier(info)
        if init is not None:
            _say(quiet, init.summary())
        if resume is not None:
            if not restored:
                _say(quiet, f"no checkpoint in {run_dir.path}; starting from step 0")
            if info.main:
                run_dir.truncate_metrics(trainer.step)
        world = f" on {info.world} processes" if info.active else ""
        _say(quiet, f"run directory: {run_dir.path}{world}")
        for verdict in trainer.verdicts.values():
            if not verdict.reason.startswith("no convolutions"):
                _say(quiet, verdict.describe())
        t0, first = time.perf_counter(), trainer.step
        trainer.fit(run_dir, quiet=quiet, callbacks=callbacks)
        seconds = time.perf_counter() - t0
        done = f"{trainer.step} steps" if first == 0 else f"step {trainer.step} (from {first})"
        _say(quiet, f"finished {done} in {seconds:.1f} s: {run_dir.path}")
        barrier(info)
    finally:
        shutdown()
    return Run(run_dir.path)


def _prepare_run_dir(
    config: ExperimentConfig, source: Any, out: str | Path | None, resume: str | Path | None
) -> tuple[str, str | None]:
    """(run directory, error message or None): the directory is created and the config saved."""
    run_dir = RunDir(resume if resume is not None else out or default_run_dir(_run_name(source)))
    if resume is None and run_dir.config_path.exists():
        return str(run_dir.path), (
            f"{run_dir.path} already holds a run; use --resume {run_dir.path} to continue it "
            "or choose another --out"
        )
    try:
        run_dir.create(config)
    except MtganError as e:
        return str(run_dir.path), str(e)
    return str(run_dir.path), None


def _run_name(source: Any) -> str:
    """The preset's or config file's name for the default run directory."""
    if source is None:
        return "pertask"
    if isinstance(source, (str, Path)):
        return Path(source).stem
    return "run"


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _write_tasks(run_dir: RunDir, trainer: Trainer) -> None:
    # What sampling needs to rebuild the networks without the training data.
    info = {
        "names": trainer.data.names,
        "shape": list(trainer.data.shape),
        "kind": trainer.data.kind,
        "num_classes": trainer.model.num_classes,
        "counts": trainer.data.counts.tolist(),  # real training rows per task (data.per_task)
    }
    run_dir.write_tasks(info)


def report(
    path: str | Path,
    out: str | Path | None = None,
    goals: dict[str, float] | None = None,
    baseline: str | None = None,
) -> Path:
    """Write the HTML report of a run directory (or rebuild a bench directory's, with other
    targets if `goals` are given) and return its path: `RUN/report.html` unless `out` names
    another file."""
    from mtgan.bench import is_bench_dir, report_bench_dir
    from mtgan.report.history import load_result
    from mtgan.report.html import write_page
    from mtgan.report.pages import run_page

    path = Path(path)
    if is_bench_dir(path):
        if out is not None:
            raise MtganError("a bench report is always written to BENCH_DIR/report.html")
        return report_bench_dir(path, goals, baseline)
    run_dir = RunDir(path)
    if not run_dir.is_run():
        raise RunError(f"{path} is neither a run directory (no {CONFIG}) nor a bench directory")
    names = (run_dir.read_tasks() or {}).get("names", [])
    result = load_result(path.name, run_dir.load_config().seed, path)
    target = Path(out) if out is not None else run_dir.report_path
    return write_page(target, run_page(result, run_dir.config_path.read_text(), names))


def open_run(path: str | Path) -> Run:
    """Open a finished (or interrupted) run directory for sampling and reading metrics."""
    return Run(path)
