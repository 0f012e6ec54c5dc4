"""A finished or running run opened from its directory: its config, metrics, weights,
samples and evaluation (`mtgan.open_run`, `mtgan.train`'s result)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from mtgan.config import EvalConfig, format_validation_error
from mtgan.data import build_tasks
from mtgan.data.taskset import to_display
from mtgan.errors import ConfigError, RunError
from mtgan.metrics.registry import check_fits, default_metrics
from mtgan.nets import MultiGAN
from mtgan.nets.routing import share_per_generator, task_samples
from mtgan.objectives.terms import declared_heads
from mtgan.rundir import TASKS, RunDir
from mtgan.training import latest_checkpoint, load_checkpoint
from mtgan.training.checkpoint import BEST, LATEST, named_checkpoint
from mtgan.training.ema import EMA


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
        live: bool = False,
    ) -> dict[str, Any]:
        """Evaluate the loaded checkpoint (the EMA generators when the run has them) and, with
        `write`, save the result in the run directory: eval.json for the latest checkpoint (the
        training's stop record kept), eval-<checkpoint>.json for another. Needs the training data
        (the real set is `eval.reference`'s split of it; the result's `protocol` says which).

        `extractor`: your own features for FID/KID/PRDC, e.g.
        `mtgan.metrics.ModuleFeatures(my_module, "my-features")`. `live`: the generators as
        trained, not their EMA (written to eval-live.json: eval.json stays the EMA's)."""
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
            partial(self.generate, use_ema=not live),
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
            "ema": self._ema is not None and not live,
            "features": ctx.features_name,
            "n": cfg.n,
            **evaluate(ctx, names),
        }
        result = {**result, "protocol": ctx.protocol()}  # after the metrics: what they used
        if write:
            self.eval_written = self.dir.write_eval(result, checkpoint=self.checkpoint, live=live)
        return result
