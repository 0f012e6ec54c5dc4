"""The trainer: builds data, networks, terms and phases from a config and runs the phase loop.

`train_step` is the algorithm: draw each task's real batch and one noise batch per generator,
generate the fakes once, then for each phase due at this step evaluate its terms, let its
balancer combine them, differentiate w.r.t. the phase's own parameters and step. With
`train.accumulate=N` the batch is run as N micro-batches and each phase's gradients are their
mean, applied once (accumulate.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import local
from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet, build_tasks
from mtgan.errors import RunError
from mtgan.metrics.evaluate import EvalContext, mixture_name
from mtgan.nets import MultiGAN, TaskBatchNorm
from mtgan.nets.routing import share_per_generator
from mtgan.objectives.terms import build_terms, declared_heads
from mtgan.rundir import RunDir
from mtgan.training.accumulate import MicroBatches, micro_shards
from mtgan.training.allocator import apply_heap
from mtgan.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    upgrade_state,
)
from mtgan.training.context import StepContext
from mtgan.training.device import DeviceCount, on_device, pick_device
from mtgan.training.distributed import (
    SINGLE,
    Dist,
    all_reduce_mean_of,
    all_reduce_sum_autograd,
    device_for,
)
from mtgan.training.ema import EMA
from mtgan.training.engine import Engine
from mtgan.training.layout import set_channels_last
from mtgan.training.loop import fit
from mtgan.training.lr_schedule import LrSchedule
from mtgan.training.phases import Phase, build_phases
from mtgan.training.precision import autocast
from mtgan.training.tuner import Verdicts, tune
from mtgan.training.until import Until


class Trainer:
    """Everything one run trains, with its state; `fit` runs the loop (training/loop.py)."""

    skipped = DeviceCount()  # steps skipped for non-finite losses or gradients, in all
    bad_streak = DeviceCount()  # consecutive skipped steps up to now

    def __init__(
        self,
        config: ExperimentConfig,
        data: TaskSet | None = None,
        dist: Dist = SINGLE,
        verdicts: Verdicts | None = None,
    ):
        self.config = config
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        self.dist = dist
        self.device = device_for(dist, pick_device(train.device))
        self.data = (data or build_tasks(config.data, config.seed)).to(self.device)
        torch.manual_seed(config.seed)  # network initialisation
        self.model = MultiGAN(
            config.model,
            self.data.shape,
            self.data.num_tasks,
            self.data.num_classes,
            heads=declared_heads(config),
        ).to(self.device)
        self.terms = build_terms(config)
        # EMA first: the phases hook shared layers for gradient balancers; the copy needs none
        self.ema = EMA(self.model.generator, train.ema, train.ema_rampup) if train.ema else None
        if train.sync_bn and dist.active:  # after the EMA copy: rank 0 alone runs its norms
            for norm in self.model.modules():
                if isinstance(norm, TaskBatchNorm):
                    norm.sync = partial(all_reduce_sum_autograd, dist)
        # Under data parallelism the balancers decide from the global batch: what they read is
        # averaged over ranks first (one small collective per phase).
        reduce = partial(all_reduce_mean_of, dist) if dist.active else local
        self.phases: list[Phase] = build_phases(config, self.model, self.terms, reduce)
        self.data_rng = torch.Generator(self.device).manual_seed(config.seed + 1)
        self.noise_rng = torch.Generator(self.device).manual_seed(config.seed + 2)
        # One noise batch per generator, or one for all of them (model.shared_noise).
        self.noise_batches = 1 if config.model.shared_noise else self.model.num_generators
        # The generators of one task split its batch (MGAN: 10 generators × 10 = the 100 fakes
        # that D weighs against 100 reals), so the discriminator sees as many fakes as reals.
        self.per_generator = share_per_generator(train.batch_size, self.model.generator_tasks)
        # train.accumulate: the shard as micro-batches, one after the other (accumulate.py)
        self.shard, self.z_shard = micro_shards(
            dist, self.model, self.terms, train.batch_size, self.per_generator, train.accumulate
        )
        self.micro = MicroBatches(config, dist, self.model, self.phases, self.noise_rng)
        self.shard, self.z_shard = (
            on_device(self.shard, self.device),
            on_device(self.z_shard, self.device),
        )
        # The speed switches: as tuned by the entry point, else their cached verdicts (tuner.py)
        self.verdicts = verdicts if verdicts is not None else tune(config, self.data, dist)
        self.precision = self.verdicts["precision"].value
        # how each step runs: autocast, micro-batches, fp16's loss scale, ranks (engine.py)
        self.engine = Engine(
            self.phases,
            self.micro,
            dist,
            autocast(self.device, self.precision),
            self.precision,
            train.schedule,
        )
        nets = [self.model, *([self.ema.net] if self.ema is not None else [])]
        set_channels_last(nets, self.verdicts["channels_last"].value)
        if train.compile:  # in place: parameter names and checkpoints stay the same
            self.model.generator.compile()
            self.model.discriminator.compile()
        fixed = torch.Generator().manual_seed(config.seed + 3)
        shape = (self.noise_batches, train.samples_per_task, self.model.z_dim)
        self.fixed_z = torch.randn(shape, generator=fixed).to(self.device)
        self.fixed_z = self.fixed_z.expand(self.model.num_generators, -1, -1)
        # 2D plots show the real data underneath the samples; images need no such backdrop.
        self.backdrop: Tensor | None = None
        if self.data.kind == "points":
            self.backdrop = self.data.sample(1000, fixed.manual_seed(config.seed + 4))
        self.step = 0
        self.skipped = 0
        self.bad_streak = 0
        self.rollbacks = 0
        self.lr_scale = 1.0  # lowered by rollbacks; times train.lr_schedule's factor at a step
        self.lr_schedule = LrSchedule(train)
        # Seconds spent in training steps (not sampling, evaluation or checkpoints), kept
        # across resumes: what "time to reach a metric value" is measured in.
        self.train_seconds = 0.0
        self.until = Until(train.until)
        self.stopped: dict[str, Any] | None = None  # why and when the run stopped (loop.py)

    # ------------------------------------------------------------------ the algorithm

    def train_step(self, record: bool = False) -> dict[str, float] | None:
        """One step of the phase loop; returns the logged values when `record` is set.

        A phase whose loss or gradients are not finite is not applied and the step counts as
        skipped (the alternating schedule stops there; the simultaneous one applies nothing);
        under fp16 an overflow of the scaled gradients is a backoff of that phase alone.
        """
        step = self.engine.start(self.draw_batch(), record)
        for phase in (p for p in self.phases if p.due(self.step)):
            phase.set_lr_scale(self.lr_scale * self.lr_schedule(self.step))  # a host float
            # of the batch, or the mean over its micro-batches, reduced over ranks and checked
            step.apply(phase, step.gradients(phase))
        ok = step.finish()  # on the device: no host sync on an unlogged step
        if self.ema is not None:
            self.ema.update(self.model.generator, where=ok, step=self.step)
        self._skipped += ~ok
        self._bad_streak = (self._bad_streak + 1) * ~ok
        self.step += 1
        if not record:
            return None
        return {**step.values(), "skipped": self.skipped}

    def draw_batch(self) -> list[StepContext]:
        """This step's batch: every rank draws the same global batch and keeps its shard (the
        run equals one process with that batch), as one context per micro-batch."""
        batch = self.config.train.batch_size
        real, real_labels = self.data.sample_labelled(batch, self.data_rng, self.shard)
        z, fake_labels = self.draw_noise(self.noise_rng, self.z_shard)
        return self.micro.contexts(real, z, self.step, self.noise_rng, real_labels, fake_labels)

    def rollback(self, run: RunDir) -> dict[str, Any]:
        """After `train.nan_patience` skipped steps in a row: back to the last checkpoint, with
        the learning rates lowered by `train.nan_lr_factor`; a RunError after too many."""
        cfg = self.config.train
        if self.rollbacks >= cfg.max_rollbacks:
            raise RunError(
                f"training diverged: {self.bad_streak} consecutive steps with non-finite losses or "
                f"gradients at step {self.step}, after {self.rollbacks} rollback(s) "
                f"(train.max_rollbacks={cfg.max_rollbacks}); lower train.lr_g / train.lr_d, "
                "add a penalty (loss.gp, loss.r1) or check the data"
            )
        path = latest_checkpoint(run.checkpoints)
        if path is None:
            raise RunError(f"cannot roll back: {run.checkpoints} holds no checkpoint")
        at, skipped, rollbacks, scale = self.step, self.skipped, self.rollbacks, self.lr_scale
        spent = self.train_seconds  # the steps rolled back cost time too
        self.load_state_dict(load_checkpoint(path, self.weights(), self.device))
        self.skipped, self.rollbacks, self.train_seconds = skipped, rollbacks + 1, spent
        self.lr_scale = scale * cfg.nan_lr_factor  # the next steps' rates (train_step)
        self.bad_streak = 0
        return {
            "step": self.step,
            "event": "rollback",
            "from_step": at,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "skipped": self.skipped,
        }

    def draw_noise(
        self, gen: torch.Generator, shard: slice | Tensor = slice(None)
    ) -> tuple[Tensor, Tensor | None]:
        """One training-shaped draw: z (NG, n, z_dim), one noise batch per generator (or one for
        all, model.shared_noise), and for a conditional model a uniform class per z (NG, n)."""
        shape, ng = (self.noise_batches, self.per_generator), self.model.num_generators
        z = torch.randn((*shape, self.model.z_dim), generator=gen, device=self.device)
        z = z[:, shard].expand(ng, -1, -1)
        if not self.model.num_classes:
            return z, None
        labels = torch.randint(self.model.num_classes, shape, generator=gen, device=self.device)
        return z, labels[:, shard].expand(ng, -1)

    # ------------------------------------------------------------------ sampling

    def generate(self, z: Tensor, use_ema: bool = True, labels: Tensor | None = None) -> Tensor:
        """Samples (NG, N, *shape) from noise (NG, N, z_dim), in the data's display range;
        a conditional model makes the classes `labels` (NG, N) (default: 0, 1, …, C−1, 0, …)."""
        net = self.ema_net() if (use_ema and self.ema is not None) else self.model.generator
        if labels is not None:
            labels = labels.to(self.device)
        return self.data.to_display(self.model.sample_with(net, z.to(self.device), labels))

    def ema_net(self, batches: int = 16) -> torch.nn.Module:
        """The EMA generators, with batch-norm statistics of their own weights: recomputed
        when the average has moved, from `batches` training-shaped noise batches (seeded, so
        a resumed run computes the same)."""
        assert self.ema is not None
        if self.ema.stale:
            gen = torch.Generator(self.device).manual_seed(self.config.seed + 5)
            inputs = (self.model.condition(*self.draw_noise(gen)) for _ in range(batches))
            self.ema.recompute_statistics(inputs)
        return self.ema.net

    # ------------------------------------------------------------------ state

    def weights(self) -> torch.nn.Module:
        """The module whose tensors are saved as weights (model and, if any, EMA)."""
        modules = {"model": self.model}
        if self.ema is not None:
            self.ema_net()  # checkpoints hold the statistics that go with the averaged weights
            modules["ema"] = self.ema
        return torch.nn.ModuleDict(modules)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {
                p.name: p.optimizer.state_dict() for p in self.phases if p.owns_optimizer
            },
            "balancers": {p.name: p.balancer_state() for p in self.phases},
            "rng": {
                "data": self.data_rng.get_state(),
                "noise": self.noise_rng.get_state(),
                "torch": torch.get_rng_state(),
            },
            "fixed_z": self.fixed_z.cpu(),
            "health": {
                "skipped": self.skipped,
                "rollbacks": self.rollbacks,
                "lr_scale": self.lr_scale,
            },
            "loss_scales": self.engine.state_dict(),
            "train_seconds": self.train_seconds,
            "until": self.until.state_dict(),
            "stopped": self.stopped,
            "augment": None if self.micro.augment is None else self.micro.augment.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = upgrade_state(state, self.phases)  # a checkpoint of an older version
        self.step = int(state["step"])
        for phase in self.phases:
            if phase.owns_optimizer:
                phase.optimizer.load_state_dict(state["optimizers"][phase.name])
            phase.load_balancer_state(state["balancers"][phase.name])
        self.engine.load_state_dict(state["loss_scales"])
        self.data_rng.set_state(state["rng"]["data"])
        self.noise_rng.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        self.fixed_z = state["fixed_z"].to(self.device)
        health = state["health"]
        self.skipped, self.rollbacks = int(health["skipped"]), int(health["rollbacks"])
        self.lr_scale = float(health["lr_scale"])
        self.bad_streak = 0
        self.train_seconds = float(state["train_seconds"])
        self.until.load_state_dict(state["until"])
        self.stopped = state["stopped"]
        if self.micro.augment is not None and state["augment"] is not None:
            self.micro.augment.load_state_dict(state["augment"])

    def save(self, run: RunDir) -> Path:
        return save_checkpoint(
            run.checkpoints,
            self.step,
            self.weights(),
            self.state_dict(),
            self.config.train.keep_checkpoints,
        )

    def restore(self, run: RunDir) -> bool:
        """Load the latest checkpoint of `run`; False if it has none yet."""
        path = latest_checkpoint(run.checkpoints)
        if path is None:
            return False
        self.load_state_dict(load_checkpoint(path, self.weights(), self.device))
        return True

    # ------------------------------------------------------------------ the loop

    def fit(self, run: RunDir, quiet: bool = False, callbacks: Iterable[object] = ()) -> None:
        """Train until `train.steps`, or until `train.until` says the run has converged;
        logging, sampling, evaluating and checkpointing into `run` (training/loop.py), telling
        `callbacks` (training/callbacks.py)."""
        fit(self, run, quiet, callbacks)

    def eval_context(self, records: list[dict[str, Any]] | None = None) -> EvalContext:
        """Evaluation of the current generators (the EMA ones when enabled) against the real
        set `eval.reference` names: the training rows, the held-out ones, or both."""
        return EvalContext(
            self.data,
            self.config.eval,
            self.generate,
            self.model.z_dim,
            self.model.generator_tasks,
            mixture=mixture_name(self.config),
            num_classes=self.model.num_classes,
            records=records,
            seed=self.config.seed,
            device=self.device,
        )


def build_tuned(
    config: ExperimentConfig, data: TaskSet | None = None, dist: Dist = SINGLE
) -> Trainer:
    """What `mtgan train` builds: the speed switches tuned (raced on throw-away trainers where
    `auto` has no cached verdict, tuner.py), the heap's verdict put in place for this process,
    and the trainer built with them. A library user's `Trainer(config)` takes cached verdicts
    only and never touches the process's heap."""
    data = data if data is not None else build_tasks(config.data, config.seed)
    verdicts = tune(config, data, dist, build=lambda c: Trainer(c, data, dist))
    apply_heap(verdicts["keep_heap"])
    return Trainer(config, data, dist, verdicts)
