"""Phases: one parameter update each (the D phase, the G phase), with its interval, terms,
balancer and one optimizer over a de-duplicated parameter set.

A layer shared by several networks of a phase appears once in that phase's optimizer, so it is
stepped once per phase; a layer shared across phases (a G–D shared layer) is stepped by each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtgan.balance import Balancer, build_balancer
from mtgan.balance.sources import DisjointJacobian, GradientSource, jacobian_at
from mtgan.balance.tape import ActivationTape, discriminator_owners, generator_owners
from mtgan.config import ExperimentConfig
from mtgan.nets import MultiGAN
from mtgan.objectives.terms import Term
from mtgan.training.context import StepContext


@dataclass
class Phase:
    name: str
    every: int
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    terms: list[Term]
    balancer: Balancer
    lr: float
    shared: list[nn.Parameter]  # the parameters the phase's networks share (gradient balancers)
    tape: ActivationTape | None = None  # records the step's activations, if it is the source
    source: GradientSource | None = None  # per-objective gradients, for gradient balancers

    def begin_step(self) -> None:
        if self.tape is not None:
            self.tape.start()

    def end_step(self) -> None:
        if self.tape is not None:
            self.tape.stop()  # drop the recorded activations: they would outlive the step

    def set_lr_scale(self, scale: float) -> None:
        """Learning rate = configured rate × scale (lowered after a rollback)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * scale

    def due(self, step: int) -> bool:
        # With n_critic = 5 the G phase runs after every fifth D update.
        return (step + 1) % self.every == 0

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        """Per-task losses (K,) of every term due at this step."""
        return {t.name: t.fn(ctx) for t in self.terms if t.due(ctx.step)}

    def loss(self, losses: dict[str, Tensor]) -> Tensor:
        weights = {t.name: t.weight for t in self.terms}
        return self.balancer.combine(losses, weights, self.source)

    def gradients(self, loss: Tensor) -> list[Tensor]:
        """∂loss/∂params for this phase's parameters only (nothing accumulates elsewhere).
        A parameter no term of the phase reaches (MAD-GAN's unused adversarial logit) gets zeros,
        so that every rank reduces the same list of tensors."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]

    def apply(self, grads: list[Tensor]) -> None:
        for p, g in zip(self.params, grads):
            p.grad = g
        self.optimizer.step()
        for p in self.params:  # free them now: held until the next step they double the peak
            p.grad = None


def unique_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters, each once even if several submodules hold it."""
    return list({id(p): p for p in module.parameters() if p.requires_grad}.values())


def _splits(param: nn.Parameter, copies: int) -> bool:
    return param.dim() > 0 and param.shape[0] % copies == 0


def shared_parameters(family: nn.Module, params: list[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters of the layers a family's networks share; with a single network (or
    nothing shared) every parameter of the phase, since all its objectives then meet there."""
    shared = {id(p) for block in family.blocks if block.shared for p in block.parameters()}
    chosen = [p for p in params if id(p) in shared]
    return chosen if family.copies > 1 and chosen else params


def make_optimizer(params: list[nn.Parameter], lr: float, betas: tuple[float, float]):
    """Adam; the fused kernel where this torch build has it for the device (one kernel for all
    parameters instead of a Python loop), foreach otherwise."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def build_phases(config: ExperimentConfig, model: MultiGAN, terms: list[Term]) -> list[Phase]:
    """The D phase, then the G phase (order matters for the alternating schedule)."""
    train = config.train
    specs = [
        (
            "d",
            1,
            model.discriminator_and_heads,
            train.lr_d,
            config.balance.d,
            config.balance.d_options,
        ),
        (
            "g",
            train.n_critic,
            model.generator,
            train.lr_g,
            config.balance.g,
            config.balance.g_options,
        ),
    ]
    phases = []
    for name, every, net, lr, balancer_name, options in specs:
        params = unique_parameters(net)
        family = model.discriminator if name == "d" else model.generator
        balancer = build_balancer(balancer_name, options, f"balance.{name}")
        tape, source = None, None
        shared = shared_parameters(family, params)
        own_terms = [t for t in terms if t.phase == name]
        # The tape's outer products miss a weight's part in a penalty's inner gradient.
        first_order = not any(t.second_order for t in own_terms)
        if balancer.needs_gradients and balancer.at == "shared" and first_order:
            owners = discriminator_owners(model) if name == "d" else generator_owners(model)
            # The generator's output is all that the G phase's losses read of it, unless one of
            # its layers is tied into the discriminator: gradients can be split there.
            other = {id(p) for p in model.discriminator_and_heads.parameters()}
            prefix_ok = name == "g" and not any(id(p) in other for p in params)
            tape = ActivationTape(family, owners, model.num_discriminators, prefix_ok)
            tape = tape if tape.covers else None
            nothing_shared = family.copies > 1 and not any(b.shared for b in family.blocks)
            if tape is None and nothing_shared and all(_splits(p, family.copies) for p in params):
                source = DisjointJacobian(params, family.copies)
            source = tape or source
        if balancer.needs_gradients:
            source = source or jacobian_at(shared if balancer.at == "shared" else params)
            source.complete = {id(p) for p in source.params} == {id(p) for p in params}
        phases.append(
            Phase(
                name=name,
                every=every,
                params=params,
                optimizer=make_optimizer(params, lr, tuple(train.betas)),
                terms=own_terms,
                balancer=balancer,
                lr=lr,
                shared=shared,
                tape=tape,
                source=source,
            )
        )
    return phases
