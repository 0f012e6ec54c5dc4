"""`train.init_from`: a new run that starts from a finished run's weights.

Tensors are matched by name and shape only (the model's state dict, EMA included), never by
reading how a network is built, so any network whose task-own tensors are stacked along their
first axis works: K networks' copies as (K, ...) or (K·m, ...), a shared tensor without a task
axis. A tensor whose name and shape match the source's is loaded; one whose copy count differs
(nine tasks' layers, one task now) starts fresh, or with `train.init_task=t` as copies of task
t's slice of the source tensor; anything else starts fresh, and the report says why. Only
weights are taken: optimizers, step and random state start anew. Every rank loads the same file
into the same freshly seeded model, so data-parallel ranks end identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet
from mtgan.errors import ConfigError, RunError
from mtgan.rundir import INIT, RunDir
from mtgan.training.checkpoint import WEIGHTS
from mtgan.training.freeze import describe_frozen
from mtgan.training.nearest_task import NEAREST, nearest_task

if TYPE_CHECKING:
    from mtgan.run import Run
    from mtgan.training.trainer import Trainer

# Which family's network count a tensor's copy axis follows, by where the tensor lives in the
# saved weights (`Trainer.weights`: "model" and "ema"); other tensors try both and the tasks.
FAMILIES = {"model.generator.": "g", "ema.": "g", "model.discriminator.": "d", "model.heads.": "d"}


@dataclass(frozen=True)
class Networks:
    """The task each generator and each discriminator of a model serves, and the task count."""

    generators: tuple[int, ...]
    discriminators: tuple[int, ...]
    tasks: int

    @classmethod
    def of(cls, model: nn.Module, tasks: int) -> Networks:
        return cls(tuple(model.generator_tasks), tuple(model.discriminator_tasks), tasks)

    def serving(self, family: str) -> tuple[int, ...]:
        """The task of each network of a family ("g", "d"), or each task itself ("tasks")."""
        return {"g": self.generators, "d": self.discriminators}.get(
            family, tuple(range(self.tasks))
        )


@dataclass
class InitReport:
    """What a run started from: which tensors were loaded, copied from a task, left fresh
    (with why), which of the source's went unused, and which parameters are frozen."""

    source: str | None = None  # the checkpoint directory
    step: int | None = None  # its training step
    task: int | None = None  # train.init_task, or the task `nearest` chose
    distances: list[float] | None = None  # train.init_task=nearest: to each source task
    loaded: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    fresh: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    buffers: set[str] = field(default_factory=set)  # which names are buffers (statistics)

    def record(self) -> dict[str, Any]:
        """RUN/init.json."""
        return {
            "source": self.source,
            "step": self.step,
            "init_task": self.task,
            "nearest_distances": self.distances,
            "loaded": self.loaded,
            "copied": self.copied,
            "fresh": self.fresh,
            "unused": self.unused,
            "frozen": self.frozen,
        }

    def counts(self) -> str:
        """How many tensors were loaded, copied and left fresh, and whose weights are new."""
        how = " (nearest)" if self.distances is not None else ""
        copied = f", {len(self.copied)} copied from task {self.task}{how}" if self.copied else ""
        new = [n for n in self.fresh if n not in self.buffers and not n.startswith("ema.")]
        fresh = f" (new weights: {', '.join(layers(new))})" if new else ""
        return f"{len(self.loaded)} tensor(s) loaded{copied}, {len(self.fresh)} fresh{fresh}"

    def summary(self) -> str:
        """One line for the console."""
        parts = []
        if self.source is not None:
            parts.append(f"init from {self.source} (step {self.step}): {self.counts()}")
        if self.frozen:
            parts.append(f"frozen: {', '.join(layers(self.frozen))}")
        return "; ".join(parts) + f"; details in {INIT}"


def layers(names: list[str] | dict[str, str]) -> list[str]:
    """Tensor names → their layers, in order: each name up to its first numeric part
    (`generator.blocks.0`) without the weights' "model." prefix."""
    out: dict[str, None] = {}
    for name in names:
        parts = name.removeprefix("model.").split(".")
        cut = next((i + 1 for i, part in enumerate(parts) if part.isdigit()), len(parts) - 1)
        out.setdefault(".".join(parts[:cut]), None)
    return list(out)


def split_size(old: torch.Size, new: torch.Size, k_old: int, k_new: int) -> int | None:
    """m such that old = (k_old·m, *rest) and new = (k_new·m, *rest); None if none fits."""
    if len(old) != len(new) or not old or old[1:] != new[1:]:
        return None
    if old[0] % k_old or new[0] % k_new or old[0] // k_old != new[0] // k_new:
        return None
    return old[0] // k_old


def _copies(
    name: str, old: Tensor, new: torch.Size, before: Networks, after: Networks, task: int
) -> Tensor | None:
    """Task `task`'s slice of `old`, repeated for every copy of `new`; None if no split fits."""
    family = next((f for prefix, f in FAMILIES.items() if name.startswith(prefix)), None)
    order = [family, "tasks"] if family else ["g", "d", "tasks"]
    for fam in order:
        serving = before.serving(fam)
        if task not in serving:
            continue
        k_old, k_new = len(serving), len(after.serving(fam))
        m = split_size(old.shape, new, k_old, k_new)
        if m is not None:
            one = old.unflatten(0, (k_old, m))[serving.index(task)]
            return one.unsqueeze(0).expand(k_new, *one.shape).reshape(new)
    return None


def plan(
    target: dict[str, Tensor],
    source: dict[str, Tensor],
    before: Networks,
    after: Networks,
    task: int | None,
) -> tuple[dict[str, Tensor], InitReport]:
    """The value each tensor of `target` takes from `source` (state dicts by name), and the
    report. A target "ema." tensor reads the source's generator when the source has no EMA."""
    report = InitReport(task=task)
    values: dict[str, Tensor] = {}
    used: set[str] = set()
    source_ema = any(n.startswith("ema.") for n in source)
    for name, tensor in target.items():
        origin = name
        if name.startswith("ema.net.") and not source_ema:
            origin = "model.generator." + name.removeprefix("ema.net.")
        old = source.get(origin)
        if old is None:
            report.fresh[name] = "not in the source"
            continue
        used.add(origin)
        if old.shape == tensor.shape:
            values[name] = old
            report.loaded.append(name)
            continue
        shapes = f"{tuple(old.shape)} in the source, {tuple(tensor.shape)} here"
        copy = None if task is None else _copies(name, old, tensor.shape, before, after, task)
        if copy is not None:
            values[name] = copy
            report.copied.append(name)
        elif task is None:
            report.fresh[name] = f"{shapes}; train.init_task=T copies task T's"
        else:
            report.fresh[name] = f"{shapes}: no per-network split fits"
    report.unused = [n for n in source if n not in used]
    return values, report


def locate_source(text: str | Path) -> tuple[Path, str | None]:
    """(run directory, checkpoint name or None for its latest) that train.init_from names."""
    path = Path(text)
    if not path.exists():
        raise RunError(
            f"train.init_from: {text} does not exist; give a run directory (with config.yaml) "
            "or one of its checkpoints (RUN/checkpoints/step-N)"
        )
    if RunDir(path).is_run():
        return path, None
    run = path.parent.parent
    if (path / WEIGHTS).is_file() and path.parent.name == "checkpoints" and RunDir(run).is_run():
        return run, path.name
    raise RunError(
        f"train.init_from: {text} is neither a run directory (no config.yaml) nor a checkpoint "
        f"of one (RUN/checkpoints/step-N with {WEIGHTS})"
    )


def prepare_config(
    config: ExperimentConfig, init_from: str | Path | None, resumed: ExperimentConfig | None
) -> ExperimentConfig:
    """The config with `init_from` (the --init-from flag) set, its source as an absolute path;
    refused with a resume, which restores everything from the run's own checkpoint."""
    if init_from is not None and resumed is not None:
        raise ConfigError(
            "--init-from cannot be combined with --resume: a resume restores the run's own "
            "weights, optimizers and step; start a new run (--out) with --init-from instead"
        )
    train = config.train
    if resumed is not None and (train.init_from, train.init_task) != (
        resumed.train.init_from,
        resumed.train.init_task,
    ):
        raise ConfigError(
            "train.init_from and train.init_task cannot change on --resume (the run started "
            f"from {resumed.train.init_from}); start a new run (--out) to initialise it anew"
        )
    if init_from is not None:
        train = train.model_copy(update={"init_from": str(init_from)})
    if train.init_task is not None and train.init_from is None:
        raise ConfigError(
            f"train.init_task={train.init_task} copies a source run's task, but train.init_from "
            "names no source run; set train.init_from=RUN (or --init-from RUN)"
        )
    if resumed is None and train.init_from is not None:
        train = train.model_copy(update={"init_from": str(Path(train.init_from).absolute())})
    return config.model_copy(update={"train": train})


def source_task(
    config: ExperimentConfig, data: TaskSet, source: Run
) -> tuple[int | None, list[float] | None]:
    """train.init_task as a source task (checked), and with `nearest` the distance to each."""
    task = config.train.init_task
    if task == NEAREST:
        return nearest_task(config, data, source)
    _check_task(task, source)
    return task, None


def _check_task(task: int | None, source: Run) -> None:
    if task is not None and task >= len(source.task_names):
        raise ConfigError(
            f"train.init_task={task}: the source run {source.path} has tasks "
            f"0..{len(source.task_names) - 1} ({', '.join(source.task_names[:10])})"
        )


def _source_state(source: Run) -> tuple[dict[str, Tensor], Networks, str, int]:
    with torch.random.fork_rng(devices=[]):  # loading seeds torch: keep this run's stream
        weights = source.weights()
    nets = Networks.of(weights["model"], len(source.task_names))
    return weights.state_dict(), nets, str(source.checkpoint_path()), source.step


def start_from(trainer: Trainer, source: Run | None) -> InitReport:
    """Load `source`'s weights into the trainer's model and EMA copy (see the module's
    docstring) and report what was loaded, copied, left fresh and frozen."""
    config = trainer.config
    target = nn.ModuleDict({"model": trainer.model})
    if trainer.ema is not None:
        target["ema"] = trainer.ema
    report = InitReport()
    if source is not None:
        task, distances = source_task(config, trainer.data, source)
        state, before, path, step = _source_state(source)
        after = Networks.of(trainer.model, trainer.data.num_tasks)
        values, report = plan(target.state_dict(), state, before, after, task)
        report.source, report.step, report.distances = path, step, distances
        report.buffers = {n for n, _ in target.named_buffers(remove_duplicate=False)}
        current = target.state_dict()
        with torch.no_grad():
            for name, value in values.items():
                current[name].copy_(value)
        if trainer.ema is not None:
            trainer.ema.stale = True  # batch-norm statistics of the loaded average
    named = trainer.model.named_parameters(remove_duplicate=False)
    report.frozen = [n for n, p in named if not p.requires_grad]
    return report


def describe_start(
    config: ExperimentConfig, model: nn.Module, data: TaskSet, source: Run | None
) -> str:
    """`mtgan describe`'s lines for model.freeze and train.init_from ("" when neither is set)."""
    lines = []
    if config.model.freeze:
        lines.append(describe_frozen(model, config.model.freeze))
    if source is not None:
        task, distances = source_task(config, data, source)
        state, before, path, step = _source_state(source)
        after = Networks.of(model, data.num_tasks)
        target = nn.ModuleDict({"model": model})
        _, report = plan(target.state_dict(), state, before, after, task)
        report.distances = distances
        report.buffers = {n for n, _ in target.named_buffers(remove_duplicate=False)}
        lines.append(f"init from {path} (step {step}): {report.counts()}")
    return "".join("\n" + line for line in lines)
