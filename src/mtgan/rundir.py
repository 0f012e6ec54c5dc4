"""The run directory's layout, written down once: every reader and writer goes through RunDir.

RUN/config.yaml          the resolved config (what --resume continues)
RUN/tasks.json           task names, kinds and training rows, for sampling without the data
RUN/metrics.jsonl        one record per logged step, evaluation and event
RUN/eval.json            the last final evaluation (eval-best.json: `mtgan eval --checkpoint best`)
RUN/eval-live.json       the same of the generators as trained, not their EMA (`mtgan eval --live`)
RUN/tuning.json          what train.precision, channels_last and keep_heap resolved to, and why
RUN/init.json            what train.init_from loaded, copied or left fresh; what model.freeze fixed
RUN/samples/step-0001000-task03.png, step-0001000-all.png
RUN/checkpoints/         owned by mtgan.training.checkpoint (step-N/, latest, best)
RUN/tb/                  TensorBoard events        (train.loggers: tensorboard)
RUN/metrics.csv          metrics.jsonl as a table  (train.loggers: csv)
RUN/wandb/               offline wandb runs        (train.loggers: wandb)
RUN/mlruns/              an MLflow file store      (train.loggers: mlflow)
RUN/report.html          `mtgan report`
RUN/bench-wall.json      `mtgan bench`: wall seconds over all attempts
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from mtgan.atomic import write_text_atomic
from mtgan.config import ExperimentConfig, load_config, save_config
from mtgan.errors import RunError

CONFIG = "config.yaml"
TASKS = "tasks.json"
METRICS = "metrics.jsonl"
EVAL = "eval.json"
TUNING = "tuning.json"
REPORT = "report.html"
INIT = "init.json"
_OVERVIEW = re.compile(r"^step-(\d+)-all\.png$")


def grid_name(step: int, task: int | None = None) -> str:
    """The file name of a sample grid: one task's, or the all-tasks overview (task None)."""
    return f"step-{step:07d}-" + ("all" if task is None else f"task{task:02d}") + ".png"


def default_run_dir(preset: str) -> Path:
    return Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """Paths and writers of one run. Only this class knows the directory layout."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def tasks_path(self) -> Path:
        return self.path / TASKS

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def wandb(self) -> Path:
        """Where wandb writes when given the run directory as its `dir`."""
        return self.path / "wandb"

    @property
    def mlflow(self) -> Path:
        return self.path / "mlruns"

    @property
    def bench_wall(self) -> Path:
        """Written by `mtgan bench`: seconds the run's training processes took, all attempts."""
        return self.path / "bench-wall.json"

    def is_run(self) -> bool:
        return self.config_path.exists()

    def sample_overviews(self) -> list[tuple[int, Path]]:
        """(step, path) of every all-tasks sample overview the run wrote, by step."""
        found = [(int(m.group(1)), p) for p in self.samples.glob("step-*-all.png")
                 if (m := _OVERVIEW.match(p.name))]  # fmt: skip
        return sorted(found)

    def create(self, config: ExperimentConfig) -> None:
        """Make the directory and save the resolved config; fail early if it is not writable."""
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
            save_config(config, self.config_path)
        except OSError as e:
            raise RunError(f"cannot write the run directory {self.path}: {e.strerror}") from None

    def load_config(self, overrides: list[str] | None = None) -> ExperimentConfig:
        if not self.config_path.exists():
            raise RunError(f"{self.path} is not a run directory (no {CONFIG})")
        return load_config(self.config_path, overrides)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a crash mid-write: not a record
                continue
        return records

    def write_eval(
        self, result: dict[str, Any], checkpoint: str | int | None = None, live: bool = False
    ) -> Path:
        """eval.json: the last evaluation of this run (written whole, then renamed), keeping
        the stop record training left for that step; another checkpoint's evaluation (`best`,
        a step) goes to eval-<checkpoint>.json beside it, and one of the live generators
        instead of their EMA to eval-live[-<checkpoint>].json. Returns the file written."""
        latest = checkpoint in (None, "latest")
        if live:
            path = self.path / ("eval-live.json" if latest else f"eval-live-{checkpoint}.json")
        elif not latest:
            path = self.path / f"eval-{checkpoint}.json"
        else:
            path, earlier = self.eval_path, self.read_eval()
            if "stop" in earlier and earlier.get("step") == result.get("step"):
                result = {**result, "stop": earlier["stop"]}
        write_text_atomic(path, json.dumps(result, indent=1))
        return path

    def read_eval(self) -> dict[str, Any]:
        """The last final evaluation, {} when there is none."""
        return json.loads(self.eval_path.read_text()) if self.eval_path.exists() else {}

    def write_tasks(self, info: dict[str, Any]) -> None:
        write_text_atomic(self.tasks_path, json.dumps(info, indent=1))

    def read_tasks(self) -> dict[str, Any] | None:
        return json.loads(self.tasks_path.read_text()) if self.tasks_path.exists() else None

    def write_tuning(self, record: dict[str, Any]) -> None:
        """tuning.json: what each speed switch (`train.precision`, `train.channels_last`,
        `train.keep_heap`) resolved to on this machine, and why (training/tuner.py)."""
        write_text_atomic(self.path / TUNING, json.dumps(record, indent=1))

    def read_tuning(self) -> dict[str, Any]:
        return json.loads((self.path / TUNING).read_text())

    def write_init(self, record: dict[str, Any]) -> None:
        """init.json: the tensors train.init_from loaded, copied from a task or left fresh
        (with why), and the parameters model.freeze keeps fixed."""
        write_text_atomic(self.path / INIT, json.dumps(record, indent=1))

    def read_init(self) -> dict[str, Any] | None:
        path = self.path / INIT
        return json.loads(path.read_text()) if path.exists() else None

    def eval_step(self) -> int | None:
        """The step of the last final evaluation (eval.json), None if there is none."""
        try:
            return int(json.loads(self.eval_path.read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past `after_step` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        # A crash while rewriting must not lose the history.
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))


class BenchDir:
    """The layout of a bench directory (`mtgan bench --out DIR`):

    DIR/bench.json                     the protocol every run shares (mtgan.bench.plan)
    DIR/runs/<name>/seed<S>/           ordinary run directories; <name> is the preset's label,
                                       or label@KEY=VALUE in a sweep (mtgan.bench.plan)
    DIR/logs/<name>-seed<S>.log        each run's output
    DIR/summary.md, summary.csv, runs.csv, report.html, figures/
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def protocol(self) -> Path:
        return self.path / "bench.json"

    def is_bench(self) -> bool:
        return self.protocol.exists()

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def run(self, name: str, seed: int) -> Path:
        return self.runs / name / f"seed{seed}"

    def labels(self) -> list[str]:
        return sorted(p.name for p in self.runs.glob("*") if p.is_dir())

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def summary_md(self) -> Path:
        return self.path / "summary.md"

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def runs_csv(self) -> Path:
        return self.path / "runs.csv"

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def figures(self) -> Path:
        return self.path / "figures"
