"""The Python API: everything the command line does, as plain function calls.

import mtgan
config = mtgan.load_config("pertask", ["train.steps=200"])
run = mtgan.train(config, out="runs/demo")
images = run.sample(task=3, n=16)          # (16, 1, 28, 28) in [0, 1]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from mtgan.config import EvalConfig, ExperimentConfig, format_validation_error, load_config
from mtgan.data import build_tasks
from mtgan.data.taskset import to_display
from mtgan.errors import ConfigError, MtganError, RunError
from mtgan.metrics.registry import check_fits, default_metrics
from mtgan.nets import MultiGAN
from mtgan.nets.routing import share_per_generator, task_samples
from mtgan.objectives.terms import build_terms, declared_heads
from mtgan.rundir import CONFIG, TASKS, RunDir, default_run_dir
from mtgan.training import Trainer, latest_checkpoint, load_checkpoint, pick_device
from mtgan.training.callbacks import check_callbacks
from mtgan.training.checkpoint import BEST, LATEST, named_checkpoint
from mtgan.training.distributed import barrier, broadcast_object, init_distributed, shutdown
from mtgan.training.ema import EMA
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
    start = describe_start(config, model, data.num_tasks, _init_source(config))
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


class Run:
    """A run directory opened for reading: config, metrics, checkpoints, sampling, evaluation."""

    # Noise vectors per generator that `sample_chunks` draws at once: it bounds memory, and a
    # request of at most this many per generator gets exactly `sample`'s noise.
    noise_block = 10_000

    def __init__(self, path: str | Path, checkpoint: str | int | None = None):
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.config = self.dir.load_config()
        info = self.dir.read_tasks()
        if info is None:
            raise RunError(f"{self.path} has no {TASKS}; was it written by mtgan train?")
        self.task_names: list[str] = info["names"]
        self.shape: tuple[int, ...] = tuple(info["shape"])
        self.kind: str = info["kind"]
        self.num_classes: int = info.get("num_classes", 0)
        self.checkpoint = checkpoint
        self._model: MultiGAN | None = None
        self._ema: EMA | None = None
        self._step: int | None = None
        self.eval_written: Path | None = None  # where `evaluate` last wrote its result

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, tasks={len(self.task_names)}, step={self.step})"

    @property
    def step(self) -> int:
        """The step of the loaded checkpoint (the latest unless one was chosen)."""
        self._load()
        return self._step or 0

    def metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl, in order."""
        return self.dir.read_metrics()

    def checkpoint_path(self) -> Path:
        """The checkpoint directory this Run reads (the latest unless one was chosen)."""
        if self.checkpoint is None:
            path = latest_checkpoint(self.dir.checkpoints)
            if path is None:
                raise RunError(f"{self.path} has no checkpoint yet")
            return path
        name = self.checkpoint
        if name in (LATEST, BEST):
            path = named_checkpoint(self.dir.checkpoints, str(name))
            if path is None:
                why = "; it is kept by runs with train.until" if name == BEST else ""
                raise RunError(f"{self.path} has no {name} checkpoint{why}")
            return path
        if isinstance(name, int) or str(name).isdigit():
            name = f"step-{int(name):07d}"
        path = self.dir.checkpoints / str(name)
        if not path.is_dir():
            have = sorted(p.name for p in self.dir.checkpoints.glob("step-*"))
            raise RunError(f"no checkpoint {name} in {self.path}; have: {', '.join(have)}")
        return path

    def _load(self) -> None:
        if self._model is not None:
            return
        path = self.checkpoint_path()
        torch.manual_seed(self.config.seed)
        model = MultiGAN(
            self.config.model,
            self.shape,
            len(self.task_names),
            self.num_classes,
            heads=declared_heads(self.config),
        )
        modules: dict[str, torch.nn.Module] = {"model": model}
        if self.config.train.ema:
            self._ema = EMA(model.generator, self.config.train.ema)
            modules["ema"] = self._ema
        state = load_checkpoint(path, torch.nn.ModuleDict(modules), "cpu")
        self._model, self._step = model, int(state["step"])

    def weights(self) -> torch.nn.ModuleDict:
        """The loaded checkpoint's networks as saved: "model" and, with EMA, "ema"."""
        self._load()
        assert self._model is not None
        ema = {"ema": self._ema} if self._ema is not None else {}
        return torch.nn.ModuleDict({"model": self._model, **ema})

    def task_index(self, task: int | str) -> int:
        """A task given by index or by name ("digit 3") → its index."""
        if isinstance(task, int) or str(task).lstrip("-").isdigit():
            k = int(task)
            if not 0 <= k < len(self.task_names):
                raise RunError(
                    f"task {k} does not exist; this run has tasks 0..{len(self.task_names) - 1}"
                )
            return k
        if task in self.task_names:
            return self.task_names.index(task)
        raise RunError(f"unknown task {task!r}; tasks: {', '.join(self.task_names)}")

    def generate(self, z: Tensor, use_ema: bool = True, labels: Tensor | None = None) -> Tensor:
        """Samples (NG, n, *shape) for noise (NG, n, z_dim): images in [0, 1], or points.
        A conditional model makes the classes `labels` (NG, n) (default 0, 1, …, C−1, 0, …)."""
        self._load()
        assert self._model is not None
        net = self._ema.net if (use_ema and self._ema is not None) else self._model.generator
        return to_display(self._model.sample_with(net, z, labels), self.kind)

    def sample(
        self,
        task: int | str = 0,
        n: int = 64,
        seed: int = 0,
        use_ema: bool = True,
        label: int | None = None,
    ) -> Tensor:
        """n samples of one task: images (n, C, H, W) in [0, 1], or points (n, 2).
        A conditional model makes class `label`, or every class in turn when it is None."""
        k = self.task_index(task)
        self._load()
        assert self._model is not None
        self._check_label(label)
        tasks = self._model.generator_tasks
        gen = torch.Generator().manual_seed(seed)
        shape = (self._model.num_generators, share_per_generator(n, tasks), self._model.z_dim)
        labels = None if label is None else torch.full(shape[:2], label)
        samples = self.generate(torch.randn(shape, generator=gen), use_ema, labels)
        return task_samples(samples, tasks, k, n)

    def sample_batches(
        self,
        task: int | str = 0,
        n: int = 64,
        seed: int = 0,
        batch: int = 500,
        use_ema: bool = True,
        label: int | None = None,
    ) -> Iterator[Tensor]:
        """n samples of one task, at most `batch` at a time: images (b, C, H, W) in [0, 1], or
        points (b, 2). The noise stream of `sample_chunks`: the samples do not depend on `batch`."""
        chunks = self.sample_chunks([task], n, seed, batch, use_ema, label)
        return (samples[0] for samples, _ in chunks)

    def sample_chunks(
        self,
        tasks: Sequence[int | str] | None = None,
        n: int = 64,
        seed: int = 0,
        batch: int = 500,
        use_ema: bool = True,
        label: int | None = None,
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """n samples of each of `tasks` (default: every task), at most `batch` per task at a time:
        (samples (T, b, *shape) as `sample` gives them, classes (T, b) that a conditional model
        was asked for, else None). One pass of the generators serves every task.

        One generator seeded with `seed` draws the noise in blocks of `noise_block` vectors per
        generator, whatever `batch` is, so the samples do not depend on `batch` and memory holds
        one block and one chunk. Up to `noise_block` samples per generator, the noise (and so
        the samples) is `sample`'s; with seed=config.seed and n=eval.n, what `evaluate` scores.
        Bad arguments raise here, before the first chunk.
        """
        ks = (
            list(range(len(self.task_names)))
            if tasks is None
            else [self.task_index(t) for t in tasks]
        )
        if n < 1 or batch < 1:
            raise RunError(f"need n >= 1 and batch >= 1 samples, got n={n}, batch={batch}")
        self._load()
        self._check_label(label)
        return self._chunks(ks, n, seed, batch, use_ema, label)

    def _chunks(
        self, ks: list[int], n: int, seed: int, batch: int, use_ema: bool, label: int | None
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        model = self._model
        assert model is not None
        gen_tasks, classes = model.generator_tasks, model.num_classes
        owners = max(gen_tasks.count(t) for t in set(gen_tasks))  # generators per task
        m = share_per_generator(n, gen_tasks)
        block, step = min(m, self.noise_block), max(1, batch // owners)
        gen = torch.Generator().manual_seed(seed)
        for start in range(0, m, block):
            shape = (model.num_generators, min(block, m - start), model.z_dim)
            z = torch.randn(shape, generator=gen)
            for i in range(0, shape[1], step):
                first = start + i
                chunk = z[:, i : i + step]
                labels = None
                if classes:
                    index = torch.arange(first, first + chunk.shape[1])
                    wanted = index % classes if label is None else torch.full_like(index, label)
                    labels = wanted.expand(model.num_generators, -1)
                out = self.generate(chunk, use_ema, labels)
                take = min(chunk.shape[1] * owners, n - first * owners)
                samples = torch.stack([task_samples(out, gen_tasks, k, take) for k in ks])
                if labels is None:
                    yield samples, None
                else:
                    picked = [task_samples(labels, gen_tasks, k, take) for k in ks]
                    yield samples, torch.stack(picked)

    def _check_label(self, label: int | None) -> None:
        assert self._model is not None
        classes = self._model.num_classes
        if label is not None and not 0 <= label < classes:
            raise RunError(
                f"label {label}: this run's generators are not conditional"
                if not classes
                else f"label {label} does not exist; this run has classes 0..{classes - 1}"
            )

    def evaluate(
        self,
        metrics: list[str] | None = None,
        features: str | None = None,
        n: int | None = None,
        write: bool = True,
        extractor: Any = None,
    ) -> dict[str, Any]:
        """Evaluate the loaded checkpoint (the EMA generators when the run has them) and, with
        `write`, save the result in the run directory: eval.json for the latest checkpoint (the
        training's stop record kept), eval-<checkpoint>.json for another. Needs the training data
        (the real set is `eval.reference`'s split of it; the result's `protocol` says which).

        `extractor`: your own features for FID/KID/PRDC, e.g.
        `mtgan.metrics.ModuleFeatures(my_module, "my-features")`."""
        from mtgan.data import build_tasks
        from mtgan.metrics.evaluate import EvalContext, evaluate, mixture_name

        overrides = {}
        if features is not None:
            overrides["features"] = features
        if n is not None:
            overrides["n"] = n
        try:
            cfg = EvalConfig.model_validate({**self.config.eval.model_dump(), **overrides})
        except ValidationError as e:
            raise ConfigError(format_validation_error(e).replace("\n  ", "\n  eval.")) from None
        names = metrics or cfg.metrics or default_metrics(self.config)
        data = build_tasks(self.config.data, self.config.seed)
        # before anything is generated: each metric can run on this data
        check_fits(self.config.model_copy(update={"eval": cfg}), data, names, extractor is not None)
        self._load()
        assert self._model is not None
        ctx = EvalContext(
            data,
            cfg,
            self.generate,
            self._model.z_dim,
            self._model.generator_tasks,
            mixture=mixture_name(self.config),
            num_classes=self._model.num_classes,
            records=self.metrics(),
            seed=self.config.seed,
            extractor=extractor,
        )
        result = {
            "step": self.step,
            "checkpoint": self.checkpoint_path().name,
            "ema": self._ema is not None,
            "features": ctx.features_name,
            "n": cfg.n,
            **evaluate(ctx, names),
        }
        result = {**result, "protocol": ctx.protocol()}  # after the metrics: what they used
        if write:
            self.eval_written = self.dir.write_eval(result, checkpoint=self.checkpoint)
        return result


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
