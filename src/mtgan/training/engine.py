"""How a training step runs, apart from what it computes: autocast, micro-batches
(`train.accumulate`), the fp16 loss scale, the mean over data-parallel ranks, and the finite
check that decides whether a phase's update is applied. The trainer's `train_step` says what
happens (draw the batch; for each phase due, take its gradients and apply them; update EMA);
this module says how, in one place.

A step never waits for the device: whether a phase was finite stays a device boolean that the
fused optimizer reads (`Phase.apply`), and the logged values are read once, at a log step.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mtgan.balance.base import Objectives
from mtgan.training.accumulate import MicroBatches
from mtgan.training.context import StepContext
from mtgan.training.distributed import Dist, all_reduce_mean
from mtgan.training.loss_scale import LossScale, ScaledSource
from mtgan.training.phases import Phase


@dataclass
class Gradients:
    """A phase's gradients at this step, reduced over ranks, and whether to skip applying
    them for the phase's own sake (an fp16 overflow: a backoff, not a bad step)."""

    grads: list[Tensor]
    skip_own: Tensor | None


class Engine:
    """The execution of a run's phases: built once by the trainer, `start`ed every step."""

    def __init__(
        self,
        phases: list[Phase],
        micro: MicroBatches,
        dist: Dist,
        autocast: AbstractContextManager,
        precision: str,
        schedule: str,
    ):
        self.phases, self.micro, self.dist, self.autocast = phases, micro, dist, autocast
        self.schedule = schedule
        device = phases[0].nonfinite.device
        # fp16: a dynamic loss scale per phase (loss_scale.py); a gradient balancer's own
        # backward passes are scaled too
        fp16 = precision == "fp16"
        self.scales = {p.name: LossScale(device) for p in phases} if fp16 else {}
        self.sources = {
            p.name: ScaledSource(p.source, self.scales[p.name]) if fp16 else p.source
            for p in phases
            if p.source is not None
        }

    def start(self, contexts: list[StepContext], record: bool) -> Step:
        """One step over `contexts` (one per micro-batch)."""
        return Step(self, contexts, record)

    # ------------------------------------------------------------------ one phase

    def gradients(
        self, phase: Phase, contexts: list[StepContext]
    ) -> tuple[Tensor, list[Tensor], Objectives]:
        """The phase's loss, gradients and objectives at this step on this process: of its one
        batch, or the mean over its micro-batches, each combined with the weights the balancer
        chose on the first (it never sees micro-batches)."""
        several = len(contexts) > 1
        if several:
            self.micro.replay.save()
        total: list[Tensor] = []
        losses, seen = [], []
        for m, ctx in enumerate(contexts):
            if m:
                self.micro.replay.restore()
            with self.autocast:
                objectives = phase.objectives(ctx)
                if m:
                    loss = objectives.combined(phase.balancer.last_alpha)
                else:
                    loss = phase.loss(objectives, self.sources.get(phase.name))
            grads = self.differentiate(phase, loss)  # frees this micro-batch's graph
            if not several:
                return loss, grads, objectives
            if m:
                torch._foreach_add_(total, grads)
            else:
                total = grads
            losses.append(loss.detach())
            seen.append({k: v.detach() for k, v in objectives.losses.items()})
            if self.micro.regenerate:
                ctx.release()
        torch._foreach_div_(total, len(contexts))
        mean = {k: torch.stack([s[k] for s in seen]).mean(0) for k in seen[0]}
        merged = Objectives(mean, objectives.weights, objectives.names, objectives.reduce)
        return torch.stack(losses).mean(), total, merged

    def differentiate(self, phase: Phase, loss: Tensor) -> list[Tensor]:
        """∂loss/∂(the phase's parameters); under fp16 of the loss × its scale, unscaled."""
        scale = self.scales.get(phase.name)
        if scale is None:
            return phase.gradients(loss)
        return scale.unscale(phase.gradients(scale.scaled(loss)))

    def forward_finite(self, phase: Phase, loss_finite: Tensor, objectives: Objectives) -> Tensor:
        """Whether the phase's forward pass was finite. Scaled per-objective gradients that
        overflow make a gradient balancer's weights, and so its loss, non-finite: its
        objectives say it instead (read by the balancer already: no further collective)."""
        if phase.source is None:
            return loss_finite
        return torch.isfinite(objectives.values).all()

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {name: scale.state_dict() for name, scale in self.scales.items()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """None saved for a phase (not an fp16 run, or from before fp16): its initial scale."""
        for name, scale in self.scales.items():
            scale.load_state_dict((state or {}).get(name))


class Step:
    """One training step in progress: the phases' gradients, whether every phase so far was
    finite (`ok`, on the device), the updates the simultaneous schedule holds back, and what
    a log step records."""

    def __init__(self, engine: Engine, contexts: list[StepContext], record: bool):
        self.engine, self.contexts, self.record = engine, contexts, record
        device = engine.phases[0].nonfinite.device
        self.ok = torch.ones((), dtype=torch.bool, device=device)
        self.pending: list[tuple[Phase, Gradients]] = []
        self.logged: dict[str, Tensor] = {}
        self.loss: Tensor | None = None  # the last phase's, as the logged values' reference
        for phase in engine.phases:
            phase.begin_step()

    def gradients(self, phase: Phase) -> Gradients:
        """The phase's gradients of the global batch (one collective), checked: a non-finite
        loss or gradient marks the step bad; under fp16 an overflow backs the scale off."""
        engine = self.engine
        loss, grads, objectives = engine.gradients(phase, self.contexts)
        # One collective per phase: gradients and the loss, averaged over ranks.
        *grads, loss = all_reduce_mean(engine.dist, [*grads, loss.detach()], [*phase.params, loss])
        self.loss = loss
        norm = torch.stack(torch._foreach_norm(grads)).norm() if grads else loss.new_zeros(())
        loss_finite = torch.isfinite(loss)
        finite = loss_finite & torch.isfinite(norm)
        skip_own = None
        scale = engine.scales.get(phase.name)
        if scale is not None:
            skip_own = scale.update(engine.forward_finite(phase, loss_finite, objectives), finite)
            finite = finite | skip_own
        phase.nonfinite += ~finite
        self.ok = self.ok & finite  # on the device: no host sync on an unlogged step
        if self.record:
            self.logged.update(phase.record(loss, objectives, norm))
        return Gradients(grads, skip_own)

    def skip(self, g: Gradients) -> Tensor:
        return ~self.ok if g.skip_own is None else ~self.ok | g.skip_own

    def apply(self, phase: Phase, g: Gradients) -> None:
        """Alternating: step now (after a bad phase, later ones are not applied), and the next
        phase sees the new weights. Simultaneous: every phase's gradients at the same weights,
        applied by `finish`."""
        if self.engine.schedule != "alternating":
            self.pending.append((phase, g))
            return
        phase.apply(g.grads, skip=self.skip(g))
        for ctx in self.contexts:
            ctx.invalidate()

    def finish(self) -> Tensor:
        """The held-back updates applied and ADA's p adjusted (every 4 steps); returns whether
        every phase was finite (device)."""
        for phase in self.engine.phases:
            phase.end_step()
        for phase, g in self.pending:
            phase.apply(g.grads, skip=self.skip(g))
        self.engine.micro.end_step(self.contexts[0].step)
        return self.ok

    def values(self) -> dict[str, float]:
        """What a log step records, averaged over ranks in one collective: one device sync."""
        engine, logged, reference = self.engine, self.logged, self.loss
        assert reference is not None, "a step that ran no phase records nothing"
        augment = engine.micro.augment
        if augment is not None and augment.adaptive:
            logged["augment/p"], logged["augment/rt"] = augment.p, augment.rt
        for phase in engine.phases:
            logged[f"{phase.name}/nonfinite"] = phase.nonfinite.to(reference.dtype)
            if phase.name in engine.scales:
                logged.update(engine.scales[phase.name].record(phase.name))
        (stacked,) = all_reduce_mean(engine.dist, [torch.stack(list(logged.values()))], [reference])
        return dict(zip(logged, stacked.tolist()))
