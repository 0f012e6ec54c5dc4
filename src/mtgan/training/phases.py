"""Phases: one parameter update each, as data. A phase names the family of networks it updates,
its interval, its terms, its balancer and learning rate, and the optimizer it steps.

The list is D, its lazy regularisers, then G (the order of the alternating schedule). A term
asked for every N > 1 steps (lazy R1, lazy GP) is not part of the D phase on some steps and
missing on others: it gets a phase of its own, `d_reg`, with that interval and the term's
interval-scaled weight (StyleGAN2's `Dreg`), so that every phase has the same objectives for
the whole run. The regulariser phase steps its main phase's optimizer (as StyleGAN2-ADA does):
an Adam of its own would normalise the penalty's gradient alone, and its step size would no
longer depend on the penalty's weight.

A layer shared by several networks of a phase appears once in that phase's optimizer, so it is
stepped once per phase; a layer shared across families (a G–D shared layer) is stepped by each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from mtgan.balance import Balancer, build_balancer
from mtgan.balance.base import Objectives, Reduce, local
from mtgan.balance.sources import DisjointJacobian, GradientSource, jacobian_at
from mtgan.balance.tape import ActivationTape, discriminator_owners, generator_owners
from mtgan.config import ExperimentConfig
from mtgan.errors import ConfigError, RunError
from mtgan.nets import MultiGAN, StackedNet
from mtgan.objectives.terms import Term
from mtgan.training.context import StepContext
from mtgan.training.freeze import freeze


@dataclass(frozen=True)
class Family:
    """The networks a phase updates: what `MultiGAN` calls them, and what their losses read."""

    trainable: str  # MultiGAN attribute: the module whose parameters the phase steps
    stacked: str  # MultiGAN attribute: the StackedNet whose blocks say what is shared
    owners: Any  # model → row ids of one call → rows per objective (gradient balancers)
    output_only: bool  # the phase's losses read only the family's output, not its inner layers


FAMILIES = {
    "d": Family("discriminator_and_heads", "discriminator", discriminator_owners, False),
    "g": Family("generator", "generator", generator_owners, True),
}


@dataclass(frozen=True)
class PhaseSpec:
    """One phase, as the config describes it."""

    name: str
    family: str  # a key of FAMILIES
    every: int  # runs on steps where (step + 1) % every == 0
    terms: tuple[Term, ...]
    balancer: str
    options: dict[str, Any]
    lr: float
    optimizer: str  # the phase whose optimizer it steps: its own name or its main phase's


def plan_phases(config: ExperimentConfig, terms: list[Term]) -> list[PhaseSpec]:
    """The phases a config asks for, in schedule order: D, D's lazy regularisers, G."""
    train, balance = config.train, config.balance
    main_every = {"d": 1, "g": train.n_critic}
    specs = []
    for family, every in main_every.items():
        own = [t for t in terms if t.phase == family]
        common = {
            "family": family,
            "balancer": getattr(balance, family),
            "options": getattr(balance, f"{family}_options"),
            "lr": getattr(train, f"lr_{family}"),
            "optimizer": family,
        }
        specs.append(PhaseSpec(family, every=every, terms=_due(own, 1), **common))
        lazy = sorted({t.every for t in own if t.every > 1})
        for interval in lazy:
            name = f"{family}_reg" if len(lazy) == 1 else f"{family}_reg{interval}"
            specs.append(PhaseSpec(name, every=interval, terms=_due(own, interval), **common))
    return [s for s in specs if s.terms]


def _due(terms: list[Term], every: int) -> tuple[Term, ...]:
    return tuple(t for t in terms if t.every == every)


def objective_names(model: MultiGAN, terms: tuple[Term, ...]) -> list[str]:
    """Every objective of a phase, by name: a term's loss per discriminator, named after the
    task it judges (`adversarial/task3`) or, with several discriminators on one task, after the
    discriminator (`adversarial/d2`); a term with one loss is its own name."""
    n = model.num_discriminators
    one_per_task = list(model.discriminator_tasks) == list(range(n))
    labels = [f"task{k}" if one_per_task else f"d{k}" for k in range(n)]
    return [t.name if n == 1 else f"{t.name}/{label}" for t in terms for label in labels]


@dataclass
class Phase:
    name: str
    family: str
    every: int
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    terms: list[Term]
    balancer: Balancer
    lr: float
    names: list[str]  # the phase's objectives, for the balancer's state and the logs
    shared: list[nn.Parameter]  # the parameters the phase's networks share (gradient balancers)
    owns_optimizer: bool = True  # False: steps an earlier phase's optimizer (regularisers)
    tape: ActivationTape | None = None  # records the step's activations, if it is the source
    source: GradientSource | None = None  # per-objective gradients, for gradient balancers
    reduce: Reduce = local  # the mean over data-parallel ranks
    weights: dict[str, float] = field(init=False)  # term → its configured weight
    nonfinite: Tensor = field(init=False)  # times its loss or gradients were not finite
    # The fused Adam can skip its update on the device (`found_inf`); the foreach one cannot,
    # and then the skip is decided on the host.
    skips_on_device: bool = field(init=False)

    def __post_init__(self) -> None:
        self.weights = {t.name: t.weight for t in self.terms}
        device = self.params[0].device if self.params else torch.device("cpu")
        self.nonfinite = torch.zeros((), dtype=torch.long, device=device)
        self.skips_on_device = bool(self.optimizer.param_groups[0].get("fused"))

    def begin_step(self) -> None:
        if self.tape is not None:
            self.tape.start()

    def end_step(self) -> None:
        if self.tape is not None:
            self.tape.stop()  # drop the recorded activations: they would outlive the step

    def set_lr_scale(self, scale: float) -> None:
        """Learning rate = configured rate × scale (the rollback factor × the schedule's)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * scale

    def due(self, step: int) -> bool:
        # The one convention: with n_critic = 5 the G phase runs after every fifth D update,
        # lazy R1 every 16 steps on the 16th.
        return (step + 1) % self.every == 0

    def objectives(self, ctx: StepContext) -> Objectives:
        """Every term's losses at this step, one per discriminator, named."""
        losses = {t.name: t.fn(ctx) for t in self.terms}
        return Objectives(losses, self.weights, self.names, self.reduce)

    def loss(self, objectives: Objectives, source: GradientSource | None = None) -> Tensor:
        """The scalar the phase differentiates: its balancer's combination of the objectives,
        a gradient balancer reading `source` (default: the phase's own; fp16 scales it)."""
        return self.balancer.combine(objectives, source or self.source)

    def record(self, loss: Tensor, objectives: Objectives, grad_norm: Tensor) -> dict[str, Tensor]:
        """Detached scalars to log: total, each term (mean and per objective), the balancer's
        weight per objective (ones for fixed weights), grad norm. No device sync: the trainer
        stacks them at the log step."""
        name = self.name
        out = {f"{name}/loss": loss.detach(), f"{name}/grad_norm": grad_norm.detach()}
        for (term, values), group in zip(objectives.losses.items(), objectives.groups()):
            values = values.detach().reshape(-1)
            out[f"{name}/{term}"] = values.mean()
            if values.numel() > 1:
                out.update({f"{name}/{n}": v for n, v in zip(objectives.names[group], values)})
        alpha = self.balancer.last_alpha
        alpha = torch.ones(len(self.names)) if alpha is None else alpha.detach()
        out.update(
            {f"{name}/weight/{n}": a for n, a in zip(objectives.names, alpha.to(loss.device))}
        )
        return out

    def gradients(self, loss: Tensor) -> list[Tensor]:
        """∂loss/∂params for this phase's parameters only (nothing accumulates elsewhere).
        A parameter no term of the phase reaches (MAD-GAN's unused adversarial logit) gets zeros,
        so that every rank reduces the same list of tensors."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]

    def apply(self, grads: list[Tensor], skip: Tensor | None = None) -> None:
        """Step the optimizer with these gradients; not where `skip` (a device boolean) is
        true, decided without a host sync where the optimizer is fused."""
        if skip is not None and not self.skips_on_device and bool(skip):
            return
        for p, g in zip(self.params, grads):
            # The fused CPU Adam reads a gradient as if laid out like its parameter (torch
            # 2.13: a transposed gradient, as a penalty's double backward returns for a
            # stacked weight, is stepped as garbage; tests/training/test_trainer.py), so
            # every gradient takes its parameter's layout first.
            p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)
        if self.skips_on_device:
            skip = self.nonfinite.new_zeros((), dtype=torch.bool) if skip is None else skip
            self.optimizer.found_inf = skip.to(torch.float32)  # type: ignore[attr-defined]
        self.optimizer.step()
        for p in self.params:  # free them now: held until the next step they double the peak
            p.grad = None

    # ------------------------------------------------------------------ state

    def balancer_state(self) -> dict[str, Any]:
        return {"objectives": list(self.names), "state": self.balancer.state_dict()}

    def load_balancer_state(self, saved: dict[str, Any]) -> None:
        """Restore the balancer's state, which must be for this phase's objectives by name
        (older formats: checkpoint.upgrade_state)."""
        if list(saved["objectives"]) != self.names:
            have, want = list(saved["objectives"]), self.names
            missing = [n for n in want if n not in have]
            extra = [n for n in have if n not in want]
            raise RunError(
                f"phase {self.name!r}: the checkpoint's balancer state is for the objectives "
                f"{have}, this run's are {want} (missing: {missing or 'none'}, no longer "
                f"there: {extra or 'none'}); resume with the config the run was started with"
            )
        self.balancer.load_state_dict(saved["state"])


def unique_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters, each once even if several submodules hold it."""
    return list({id(p): p for p in module.parameters() if p.requires_grad}.values())


def _splits(param: nn.Parameter, copies: int) -> bool:
    return param.dim() > 0 and param.shape[0] % copies == 0


def shared_parameters(family: nn.Module, params: list[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters of the layers a family's networks share; with a single network (or
    nothing shared) every parameter of the phase, since all its objectives then meet there."""
    shared = {id(p) for p in family.shared_parameters()}
    chosen = [p for p in params if id(p) in shared]
    return chosen if family.copies > 1 and chosen else params


def make_optimizer(params: list[nn.Parameter], lr: float, betas: tuple[float, float]):
    """Adam; the fused kernel where this torch build has it for the device (one kernel for all
    parameters instead of a Python loop), foreach otherwise."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def gradient_source(
    spec: PhaseSpec, balancer: Balancer, model: MultiGAN, params: list[nn.Parameter]
) -> tuple[ActivationTape | None, GradientSource | None]:
    """Where a gradient balancer's per-objective gradients come from: the cheapest exact
    source (sources.py, tape.py) for this phase."""
    if not balancer.needs_gradients:
        return None, None
    family = FAMILIES[spec.family]
    net = getattr(model, family.stacked)
    tape, source = None, None
    shared = shared_parameters(net, params)
    # The tape's outer products miss a weight's part in a penalty's inner gradient.
    first_order = not any(t.second_order for t in spec.terms)
    # The tape reads every layer's weights; a frozen one (model.freeze) is not the phase's.
    frozen = any(not p.requires_grad for p in net.parameters())
    if balancer.at == "shared" and first_order and not frozen:
        # The family's output is all that its losses read of it, unless one of its layers is
        # tied into the other family: gradients can be split there.
        others = [getattr(model, f.trainable) for k, f in FAMILIES.items() if k != spec.family]
        other = {id(p) for module in others for p in module.parameters()}
        prefix_ok = family.output_only and not any(id(p) in other for p in params)
        # The tape knows the built-in layers (tape.py); other networks take the exact
        # Jacobians below.
        if isinstance(net, StackedNet):
            tape = ActivationTape(net, family.owners(model), model.num_discriminators, prefix_ok)
            tape = tape if tape.covers else None
        nothing_shared = net.copies > 1 and not list(net.shared_parameters())
        if tape is None and nothing_shared and all(_splits(p, net.copies) for p in params):
            source = DisjointJacobian(params, net.copies)
        source = tape or source
    source = source or jacobian_at(shared if balancer.at == "shared" else params)
    source.complete = {id(p) for p in source.params} == {id(p) for p in params}
    return tape, source


def build_phases(
    config: ExperimentConfig, model: MultiGAN, terms: list[Term], reduce: Reduce = local
) -> list[Phase]:
    """The phases of `plan_phases`, each with its parameters, optimizer, balancer and, for a
    gradient balancer, the source of its per-objective gradients. The parameters
    `model.freeze` names are frozen first: no phase holds them."""
    freeze(model, config.model.freeze)
    phases: list[Phase] = []
    optimizers: dict[str, torch.optim.Optimizer] = {}
    for spec in plan_phases(config, terms):
        family = FAMILIES[spec.family]
        params = unique_parameters(getattr(model, family.trainable))
        if not params:
            raise ConfigError(
                f"model.freeze={config.model.freeze} freezes every parameter that phase "
                f"{spec.name!r} updates ({family.trainable}); leave some of its layers trainable"
            )
        field_name = f"balance.{spec.family}"
        balancer = build_balancer(spec.balancer, spec.options, field_name)
        names = objective_names(model, spec.terms)
        balancer.check({t.name: model.num_discriminators for t in spec.terms}, field_name)
        tape, source = gradient_source(spec, balancer, model, params)
        if source is not None and reduce is not local:
            source.reduce = reduce
        owns = spec.optimizer not in optimizers
        if owns:
            optimizers[spec.optimizer] = make_optimizer(params, spec.lr, tuple(config.train.betas))
        phases.append(
            Phase(
                name=spec.name,
                family=spec.family,
                every=spec.every,
                params=params,
                optimizer=optimizers[spec.optimizer],
                terms=list(spec.terms),
                balancer=balancer,
                lr=spec.lr,
                names=names,
                shared=shared_parameters(getattr(model, family.stacked), params),
                owns_optimizer=owns,
                tape=tape,
                source=source,
                reduce=reduce,
            )
        )
    return phases


def describe_phases(phases: list[Phase]) -> str:
    """One line per phase: name, interval, terms and their weights, balancer."""
    lines = []
    for p in phases:
        when = "every step" if p.every == 1 else f"every {p.every} steps"
        terms = ", ".join(f"{t.name} ×{t.weight:g}" for t in p.terms)
        shared = "" if p.owns_optimizer else " (steps the optimizer of its main phase)"
        lines.append(
            f"  phase {p.name}: {when}; {terms}; balancer {p.balancer.name}, "
            f"{len(p.names)} objective(s){shared}"
        )
    return "phases:\n" + "\n".join(lines)
