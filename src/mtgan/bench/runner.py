"""Run a bench's trainings as separate `mtgan train` processes, `jobs` at a time.

Separate processes, not threads: each training sets its own thread count and seeds, a crash
of one does not take the others down, and an interrupted bench resumes each run from its own
checkpoint. A run is finished when its `eval.json` is for its last step; a run with a
checkpoint continues with `--resume`; a run directory without one starts over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from mtgan.atomic import write_text_atomic
from mtgan.bench.plan import BenchRun, Protocol, run_overrides
from mtgan.errors import MtganError
from mtgan.rundir import BenchDir, RunDir
from mtgan.training.checkpoint import has_checkpoint as has_pointer

# How often a running training's wall seconds are written down.
WALL_EVERY_S = 30.0


@dataclass
class Outcome:
    run: BenchRun
    status: str  # "done" (finished now), "skipped" (finished before), "failed"
    wall_s: float
    log: Path | None = None


def finished(run: BenchRun) -> bool:
    """True when the run's final evaluation was written (eval.json at train.steps, or where
    train.until stopped it)."""
    run_dir = RunDir(run.path)
    step = run_dir.eval_step()
    if step is None:
        return False
    if run_dir.read_eval().get("stop", {}).get("reason", "steps") != "steps":
        return True  # converged or diverged: finished before train.steps
    try:
        return step == run_dir.load_config().train.steps
    except MtganError:  # a missing or broken config: not a finished run
        return False


def has_checkpoint(run: BenchRun) -> bool:
    # The pointer alone: whether the checkpoint it names is sound is for --resume to check
    # (and to explain in the run's log), not for the bench to crash over.
    return has_pointer(RunDir(run.path).checkpoints)


def train_command(run: BenchRun, protocol: Protocol, threads: int | None) -> list[str]:
    base = [sys.executable, "-m", "mtgan", "train"]
    if has_checkpoint(run):
        # The run's own config.yaml already holds the protocol; --resume reads it.
        return [*base, "--resume", str(run.path), "--quiet"]
    return [*base, run.target, *run_overrides(protocol, run, threads), "--out",
            str(run.path), "--quiet"]  # fmt: skip


def wall_seconds(run: BenchRun) -> float:
    try:
        return float(json.loads(RunDir(run.path).bench_wall.read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _execute(run: BenchRun, protocol: Protocol, threads: int | None, logs: Path) -> Outcome:
    if finished(run):
        return Outcome(run, "skipped", wall_seconds(run))
    if run.path.exists() and not has_checkpoint(run):
        shutil.rmtree(run.path)  # started but never checkpointed: nothing to keep
    cmd = train_command(run, protocol, threads)
    log = logs / f"{run.name}-seed{run.seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = wall_seconds(run)

    def record(seconds: float) -> None:
        if run.path.exists():  # the training makes it; before that there is nothing to keep
            write_text_atomic(RunDir(run.path).bench_wall, json.dumps({"wall_s": before + seconds}))

    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        code, seconds = call_timed(cmd, f, record)
    ok = code == 0 and finished(run)
    return Outcome(run, "done" if ok else "failed", before + seconds, log)


def call_timed(
    cmd: list[str], log: IO[str], record: Callable[[float], None], every: float = WALL_EVERY_S
) -> tuple[int, float]:
    """Run `cmd` with its output to `log`; `record(seconds so far)` every `every` seconds and at
    the end. Returns the exit code and the seconds it ran. The periodic record is what a bench
    that is itself killed (a session's end) leaves behind: its runs' time up to the last write."""
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT) as proc:
        try:
            while True:
                try:
                    code = proc.wait(timeout=every)
                    break
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):  # bookkeeping: never stops a training
                        record(time.perf_counter() - t0)
        except BaseException:  # Ctrl-C or an error here: the training must not outlive us
            proc.kill()
            raise
    seconds = time.perf_counter() - t0
    record(seconds)
    return code, seconds


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def execute(
    runs: list[BenchRun], protocol: Protocol, out: Path, jobs: int, quiet: bool = False
) -> list[Outcome]:
    """Train every unfinished run, `jobs` at a time, each with cpu_count // jobs threads unless
    the overrides set train.threads. Returns one outcome per run, in the order given."""
    threads = default_threads(jobs)
    outcomes: dict[BenchRun, Outcome] = {}
    bar = tqdm(total=len(runs), desc="bench", disable=quiet, dynamic_ncols=True)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(_execute, r, protocol, threads, BenchDir(out).logs): r for r in runs}
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.run] = outcome
            bar.update(1)
            if not quiet:
                r = outcome.run
                bar.write(f"{outcome.status:7s} {r.name} seed {r.seed} ({outcome.wall_s:.0f} s)")
    bar.close()
    return [outcomes[r] for r in runs]
