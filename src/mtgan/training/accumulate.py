"""Gradient accumulation, `train.accumulate=N`: each process's shard of the global batch is run
as N micro-batches, one after the other, so that a batch that does not fit in memory still
trains, with the same result.

Micro-batch m of rank r holds what rank r·N + m of W·N processes would (`distributed.shards`),
so a phase's gradients, summed over the micro-batches and divided by N, are its gradients of
the process's whole shard; they are then reduced over ranks, checked and applied once, and EMA
and the step counter move once, as without accumulation. Every term is a mean over samples, so
this is exact up to float summation order, under conditions that are checked at build time or
made to hold here:

- the balancer's weights read neither the step's losses nor its gradients
  (`Balancer.weights_from_state`; the others are refused), so the engine combines every
  micro-batch after the first with the weights the balancer chose on the first;
- every micro-batch of a phase starts from the same noise generator and model buffers
  (`Replay`): each takes its columns of the same global draw of GP's interpolation weights, and
  spectral norm's power iteration runs as often as without accumulation;
- a term that pairs real with fake rows (GP) is refused where a task's fakes pool several
  generators (a micro-batch would pair other rows), as is pooling several generators over
  several discriminators of one task (no split keeps each discriminator's share).

Memory: after each micro-batch its fakes and discriminator outputs are dropped
(`StepContext.release`) and the next phase generates them again from the same z, so one
micro-batch's graph is alive at a time. Where an earlier phase of the step steps generator
weights (a G–D shared layer under the alternating schedule) the fakes are kept instead, as
without accumulation. Batch-norm statistics are per micro-batch (as they are per process under
DDP without SyncBatchNorm): with `model.g_norm=batch` the run is close to, not equal to, one
without accumulation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtgan.balance import BALANCERS
from mtgan.config import ExperimentConfig
from mtgan.errors import ConfigError
from mtgan.nets import MultiGAN
from mtgan.objectives.augment import build_augment
from mtgan.objectives.terms import Term
from mtgan.training.context import StepContext
from mtgan.training.distributed import Dist, all_reduce_sum_autograd, shards
from mtgan.training.phases import Phase


def micro_shards(
    dist: Dist, model: MultiGAN, terms: list[Term], batch: int, per_generator: int, n: int
) -> tuple[slice | Tensor, slice | Tensor]:
    """This rank's real and noise shards, micro-batch after micro-batch: micro-batch m is the
    m-th of n equal consecutive parts of each. n = 1: `distributed.shards` itself."""
    check_splittable(dist, model, terms, batch, per_generator, n)
    if n == 1:
        return shards(dist, model, batch, per_generator)
    virtual = [Dist(dist.rank * n + m, dist.world * n, dist.local_rank) for m in range(n)]
    parts = [shards(v, model, batch, per_generator) for v in virtual]
    real = torch.cat([torch.arange(batch)[s] for s, _ in parts])
    z = torch.cat([torch.arange(per_generator)[s] for _, s in parts])
    return real, z


def check_splittable(
    dist: Dist, model: MultiGAN, terms: list[Term], batch: int, per_generator: int, n: int
) -> None:
    """A ConfigError unless n micro-batches per process, on every process, give exactly the
    step of one process with the whole batch (the same rules hold for processes: --nproc)."""
    if n == 1 and not dist.active:
        return
    splits = model.num_discriminators if len(set(model.discriminator_tasks)) == 1 else 1
    tasks = model.generator_tasks
    pooled = max(tasks.count(t) for t in set(tasks))  # generators whose fakes one task pools
    head = f"train.accumulate={n}" if n > 1 else f"--nproc {dist.world}"
    undo = "train.accumulate=1" if n > 1 else "one process"
    part = "a micro-batch" if n > 1 else "a process's shard"
    paired = [t.name for t in terms if t.pairs_rows]
    if paired and pooled > 1:
        raise ConfigError(
            f"{head}: {', '.join(paired)} pairs real with fake samples row by row, and with "
            f"{pooled} generators pooled on one task {part} pairs other rows than the "
            f"whole batch does (a different objective); use {undo} or drop "
            f"{', '.join(paired)}"
        )
    if n == 1:  # processes alone: distributed.shards checks the rest
        return
    if splits > 1 and model.num_generators > 1:
        raise ConfigError(
            f"{head}: model.generators={model.num_generators} pooled over "
            f"model.discriminators={model.num_discriminators} on one task cannot be split into "
            "micro-batches that keep each discriminator's share; use train.accumulate=1"
        )
    unit = dist.world * n * splits
    if batch % unit or per_generator % unit:
        procs = f" × the processes ({dist.world})" if dist.world > 1 else ""
        parts = f" × the discriminators that split it ({splits})" if splits > 1 else ""
        each = (
            f"; each of a task's {pooled} generators makes {per_generator} of its samples, "
            "which must divide as well"
            if pooled > 1
            else ""
        )
        raise ConfigError(
            f"train.batch_size={batch} must be divisible by train.accumulate={n}{procs}{parts} "
            f"(= {unit}) so that every micro-batch is an equal part of the batch{each}"
        )


def check_balancers(phases: list[Phase], n: int) -> None:
    """Refuse, at build time, a balancer that cannot be combined micro-batch by micro-batch:
    its weights read the whole step's losses or gradients."""
    if n == 1:
        return
    able = sorted(name for name, cls in BALANCERS.items() if cls.weights_from_state)
    for phase in phases:
        if not phase.balancer.weights_from_state:
            raise ConfigError(
                f"train.accumulate={n}: balance.{phase.family}={phase.balancer.name} decides "
                "its weights from the step's losses or gradients of the whole batch, which "
                "micro-batches only give one part at a time; with train.accumulate choose a "
                f"balancer that accumulates ({', '.join(able)}) or set train.accumulate=1"
            )


class Replay:
    """What a micro-batch's pass changes besides gradients, restored for the next one: the
    noise generator (GP's interpolation weights, drawn for the global batch) and the model's
    buffers (spectral norm's power iteration)."""

    def __init__(self, noise: torch.Generator, model: nn.Module):
        self.noise, self.model = noise, model

    def save(self) -> None:
        self.state = self.noise.get_state()
        self.buffers = [b.clone() for b in self.model.buffers()]

    def restore(self) -> None:
        self.noise.set_state(self.state)
        for buffer, saved in zip(self.model.buffers(), self.buffers):
            buffer.copy_(saved)


class MicroBatches:
    """The step's contexts, one per micro-batch (train.accumulate), each with the run's
    loss.augment (the engine takes a phase's gradients over them), and what a micro-batch's
    pass changes that the next must find as it was."""

    def __init__(
        self,
        config: ExperimentConfig,
        dist: Dist,
        model: MultiGAN,
        phases: list[Phase],
        noise: torch.Generator,
    ):
        n, schedule = config.train.accumulate, config.train.schedule
        check_balancers(phases, n)
        self.n, self.dist, self.model = n, dist, model
        loss = config.loss
        self.augment = build_augment(  # images only
            loss.augment,
            model.data_shape,
            loss.augment_p if loss.augment_p is not None else float(loss.augment_target is None),
            loss.augment_target,
            loss.augment_ramp,
        )
        if self.augment is not None:
            self.augment.to(next(model.parameters()).device)
        self.replay = Replay(noise, model)
        # Fakes generated again in a later phase equal the first ones unless an earlier phase
        # of the step has stepped generator weights (a G–D shared layer, alternating)
        g = {id(p) for p in model.generator.parameters()}
        stepped = {id(p) for ph in phases if ph.family != "g" for p in ph.params}
        self.regenerate = schedule == "simultaneous" or not g & stepped

    def end_step(self, step: int) -> None:
        """After step `step`: ADA's p adjusted from every rank's D(real) signs (augment.py)."""
        if self.augment is not None:
            dist = self.dist
            self.augment.adjust(
                step, lambda t: all_reduce_sum_autograd(dist, t) if dist.active else t
            )

    def contexts(
        self,
        real: Tensor,
        z: Tensor,
        step: int,
        noise: torch.Generator,
        real_labels: Tensor | None,
        fake_labels: Tensor | None,
    ) -> list[StepContext]:
        """real (K, B, ...), z (NG, n, z_dim) and their labels split into the n micro-batches'
        contexts (consecutive columns, as `micro_shards` laid them out)."""
        n, rank, world, aug = self.n, self.dist.rank, self.dist.world, self.augment
        batches = (real, z, real_labels, fake_labels)
        if n == 1:
            return [
                StepContext(self.model, *batches[:2], step, noise, *batches[2:], rank, world, aug)
            ]
        cut = [[None] * n if x is None else x.chunk(n, 1) for x in batches]
        return [
            StepContext(self.model, r, zm, step, noise, rl, fl, rank * n + m, world * n, aug)
            for m, (r, zm, rl, fl) in enumerate(zip(*cut))
        ]
