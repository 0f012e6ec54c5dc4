"""The run loop around the algorithm: train steps until `train.steps` or until the tracked
metric has converged (`train.until`), logging, sample grids, checkpoints (`latest`, `best`),
evaluations, and rollback after non-finite streaks. Files are written by rank 0 only."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mtgan.errors import MtganError, RunError
from mtgan.metrics.evaluate import evaluate
from mtgan.report import save_task_grids
from mtgan.rundir import RunDir
from mtgan.training import faults
from mtgan.training.callbacks import Callbacks
from mtgan.training.checkpoint import latest_checkpoint, mark_best, remove_stale
from mtgan.training.distributed import barrier, broadcast_object
from mtgan.training.loggers import Loggers, open_loggers
from mtgan.training.lr_schedule import learning_rates
from mtgan.training.progress import progress
from mtgan.training.until import STEPS

if TYPE_CHECKING:
    from pathlib import Path

    from mtgan.training.trainer import Trainer

_SHOWN = ("d/loss", "g/loss")


def stop_key(trainer: Trainer) -> dict[str, Any]:
    """What a stopped run was asked for: a resume continues only if this changed."""
    until = trainer.config.train.until
    return {"steps": trainer.config.train.steps, "until": until and until.model_dump()}


class Loop:
    def __init__(
        self, trainer: Trainer, run: RunDir, quiet: bool, callbacks: Iterable[object] = ()
    ):
        self.trainer, self.run, self.quiet = trainer, run, quiet
        self.cfg = trainer.config.train
        self.main = trainer.dist.main
        # metric sinks and the user's callbacks: rank 0's alone
        self.loggers = open_loggers(run, trainer.config, trainer.step) if self.main else Loggers({})
        self.callbacks = Callbacks(callbacks if self.main else (), run)
        self.last_eval: dict[str, Any] | None = None  # rank 0's latest result, with its step

    def say(self, text: str) -> None:
        if self.main and not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def fit(self) -> None:
        t, cfg, run, main = self.trainer, self.cfg, self.run, self.main
        if t.stopped is not None and t.stopped.get("asked") == stop_key(t):
            self.say(
                f"this run already stopped: {t.stopped['message']}. Nothing to do; change "
                "train.steps or train.until to continue it"
            )
            try:
                if self.main:  # a process stopped before eval.json was written: write it now
                    self.final_eval(t.stopped.get("record"))
            finally:
                self.loggers.close()
            return
        t.stopped = None
        if main:
            remove_stale(run.checkpoints)
            if latest_checkpoint(run.checkpoints) is None:
                self.save()  # a point to roll back to before the first interval
            run.write_tuning({name: v.record() for name, v in t.verdicts.items()})
        start, t0 = t.step, time.perf_counter()
        bar = progress(cfg.steps, t.step, not self.quiet and cfg.progress and main)
        ok = False  # the run stopped as asked, not on an error
        try:
            reason = None
            while t.step < cfg.steps and reason is None:
                log = (t.step + 1) % cfg.log_every == 0 or t.step + 1 == cfg.steps
                faults.step_reached(t.dist.rank, t.step)  # the crash tests' hook, outside the step
                tick = time.perf_counter()
                record = t.train_step(record=log)
                t.train_seconds += time.perf_counter() - tick
                bar.update(1)
                if record is not None and main:
                    elapsed = time.perf_counter() - t0
                    record = {"step": t.step, **record, **learning_rates(t.phases)}
                    record["time"] = elapsed
                    record["train_seconds"] = t.train_seconds
                    record["sec_per_step"] = elapsed / max(t.step - start, 1)
                    self.loggers.scalars(record)
                    self.callbacks.fire("on_log", record)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in _SHOWN})
                if main and (t.step % cfg.sample_every == 0 or t.step == cfg.steps):
                    self.write_samples()
                if self.eval_due():
                    reason = self.evaluate()
                if reason is None and t.step == cfg.steps:
                    reason = STEPS
                # No interval checkpoint inside a non-finite streak: a rollback must land on
                # weights from before the trouble started.
                due = t.step % cfg.checkpoint_every == 0 and t.bad_streak == 0
                if main and due and reason is None:  # a stopping run saves in `finish`
                    self.save()
                # read at log steps: an unlogged step keeps its skip counters on the device
                if log and t.bad_streak >= cfg.nan_patience:
                    self.roll_back(bar)
            if reason is None:  # resumed at the end: a process stopped before its evaluation
                reason = STEPS
            self.finish(reason)
            self.callbacks.fire("on_stop", reason, t.step)
            ok = True
        except OSError as e:  # metrics, samples: a full or vanished disk is the user's to fix
            raise RunError(
                f"cannot write to the run directory {run.path}: {e.strerror or e}; the last "
                "complete checkpoint is intact. Free some space and continue with --resume"
            ) from None
        finally:
            bar.close()
            self.loggers.close(ok)

    # ------------------------------------------------------------------ evaluation

    def eval_due(self) -> bool:
        ev, step = self.trainer.config.eval, self.trainer.step
        if not ev.metrics:
            return False
        return step == self.cfg.steps or bool(ev.every and step % ev.every == 0)

    def evaluate(self) -> str | None:
        """Evaluate (rank 0), keep the best checkpoint, and say whether the run should stop;
        every rank gets rank 0's verdict and its memory of the best value, which the stop
        message reads (a collective: call it on every rank)."""
        until = self.trainer.until
        reason, state = broadcast_object(
            self.trainer.dist, (self.evaluate_here(), until.state_dict())
        )
        until.load_state_dict(state)
        return reason

    def evaluate_here(self, track: bool = True) -> str | None:
        """The evaluation itself, on rank 0 alone (None elsewhere)."""
        t, run = self.trainer, self.run
        reason = None
        if self.main:
            ctx = t.eval_context(run.read_metrics())
            try:
                result = evaluate(ctx, t.config.eval.metrics)
            except Exception as e:
                # Keep the steps trained so far: a stopping run saved before its final
                # evaluation; mid-run, save now unless inside a non-finite streak (a rollback
                # must land on weights from before it).
                saved = not track or t.bad_streak == 0
                if track and saved:
                    self.save()
                if isinstance(e, MtganError):
                    raise RunError(self.failed(e, saved)) from None
                self.say(self.failed(e, saved))
                raise
            record = {"step": t.step, "train_seconds": t.train_seconds}
            record.update({f"eval/{k}": v for k, v in result.items()})
            self.loggers.scalars(record)
            self.callbacks.fire("on_eval", t.step, dict(result))
            best, reason = t.until.observe(t.step, result) if track else (False, None)
            if best:
                mark_best(run.checkpoints, self.save())
            self.last_eval = {"step": t.step, "ema": t.ema is not None}
            self.last_eval |= {"features": ctx.features_name, "n": ctx.config.n, **result}
            self.last_eval["protocol"] = ctx.protocol()  # eval.json's record of the comparison
        return reason

    def finish(self, reason: str) -> None:
        """The stop record (runs with train.until): in metrics.jsonl, the checkpoint's state,
        eval.json and the log."""
        t, run = self.trainer, self.run
        message = t.until.describe(reason, t.step)
        stop: dict[str, Any] | None = None
        if t.until.config is not None:  # without train.until a run stops at train.steps
            stop = {"reason": reason, "step": t.step, "train_seconds": t.train_seconds}
            stop |= {"metric": t.until.config.metric, "best_step": t.until.best_step}
            stop["best_value"] = t.until.best
        t.stopped = {"reason": reason, "step": t.step, "message": message, "asked": stop_key(t)}
        t.stopped["record"] = stop
        if not self.main:
            return
        if stop is not None:
            run.append_metrics({"step": t.step, "event": "stop", **stop})
        # The checkpoint first: an evaluation that fails leaves the training complete. A run
        # resumed after such a failure finds the stop record and only writes eval.json.
        self.save()  # the stop record travels with the last checkpoint
        self.final_eval(stop)
        if reason != STEPS:  # a run whose metric was never finite has no best checkpoint
            best = f"; the best checkpoint is {run.checkpoints / 'best'}"
            self.say(message + (best if t.until.best is not None else ""))

    def final_eval(self, stop: dict[str, Any] | None) -> None:
        """eval.json at the step the run stopped, unless it is there already (rank 0). Called
        after the last checkpoint is saved: a failure says so and how to evaluate again."""
        t, run = self.trainer, self.run
        if not t.config.eval.metrics or run.eval_step() == t.step:
            return
        if self.last_eval is None or self.last_eval["step"] != t.step:
            self.evaluate_here(track=False)  # this step was tracked already, if at all
        assert self.last_eval is not None
        run.write_eval({**self.last_eval, **({"stop": stop} if stop else {})})

    def failed(self, error: Exception, saved: bool) -> str:
        """What is safe after a failed evaluation, and the commands that go on from there."""
        t, path = self.trainer, self.run.path
        metrics = ",".join(t.config.eval.metrics)
        where = f"step {t.step} is saved" if saved else "the last checkpoint is intact"
        again = f"`mtgan eval {path} --metrics {metrics}`"
        more = "" if t.step == self.cfg.steps else f", continue with `mtgan train --resume {path}`"
        return f"the evaluation at step {t.step} failed: {error}. The run up to {where}; " + (
            f"evaluate it again with {again}{more}"
        )

    # ------------------------------------------------------------------ the rest

    def save(self) -> Path:
        """A checkpoint of the current step (rank 0), then the callbacks told of it."""
        path = self.trainer.save(self.run)
        self.callbacks.fire("on_checkpoint", self.trainer.step, path)
        return path

    def roll_back(self, bar: Any) -> None:
        t, cfg = self.trainer, self.cfg
        barrier(t.dist)  # every rank rolls back to the same checkpoint
        event = t.rollback(self.run)
        bar.n = t.step
        if self.main:
            self.run.append_metrics(event)
            print(
                f"non-finite values for {cfg.nan_patience} steps: rolled back to step "
                f"{event['step']}, learning rates × {event['lr_scale']:g}",
                file=sys.stderr,
            )

    def write_samples(self) -> None:
        t = self.trainer
        samples = t.generate(t.fixed_z)
        names = t.data.names
        tasks = t.model.generator_tasks
        backdrop = t.backdrop
        if len(tasks) != len(names):  # several generators per task: one grid per generator
            names = [f"{names[g]} · G{i}" for i, g in enumerate(tasks)]
            backdrop = None if backdrop is None else backdrop[tasks]
        real = None if backdrop is None else backdrop.cpu()
        save_task_grids(samples.cpu(), self.run.samples, t.step, names, t.data.kind, real=real)


def fit(
    trainer: Trainer, run: RunDir, quiet: bool = False, callbacks: Iterable[object] = ()
) -> None:
    """Train `trainer` into `run` until it stops (train.steps, or train.until), telling
    `callbacks` (training/callbacks.py) as it goes."""
    Loop(trainer, run, quiet, callbacks).fit()
