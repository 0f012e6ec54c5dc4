"""Terms: the pieces of objective a run optimises, and the registry that builds them from a config.

A term belongs to one family's phases ("d" or "g"), has a weight and an interval, and maps the
step's context to one loss per discriminator, shape (ND,). A term asked for every N > 1 steps
(lazy regularisers) is given a phase of its own with that interval (training/phases.py), so a
phase's objectives never change from step to step. The trainer never branches on what a term
is: a new auxiliary task is a new builder registered here, and the discriminator head it
reads is declared with it (`register_terms(..., head=...)`): the networks build that head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from mtgan.errors import ConfigError
from mtgan.objectives.adversarial import get_adversarial
from mtgan.objectives.context import TermContext
from mtgan.objectives.penalties import gradient_penalty, r1_penalty

if TYPE_CHECKING:
    from mtgan.config import ExperimentConfig


@dataclass(frozen=True)
class Term:
    """One piece of objective: `fn(ctx)` gives one loss per discriminator (ND,)."""

    name: str
    phase: str  # the family whose phases minimise it: "d" or "g"
    fn: Callable[[TermContext], Tensor]
    weight: float = 1.0
    every: int = 1  # > 1: a lazy regulariser, in a phase of its own with this interval
    # differentiates through a gradient (GP, R1): weights act on it along the backward pass too
    second_order: bool = False
    head: str | None = None  # the discriminator head it reads, if any (declared by its builder)
    # reads real row i with fake row i (GP's interpolates): a part of the batch (a process's
    # shard, a micro-batch) pairs other rows where a task's fakes pool several generators
    pairs_rows: bool = False


# A head's number of outputs from the model's counts: (generators, classes) -> outputs.
HeadSize = Callable[[int, int], int]


TermBuilder = Callable[["ExperimentConfig"], list[Term]]
TERM_BUILDERS: dict[str, TermBuilder] = {}
HEADS: dict[str, tuple[str, HeadSize]] = {}  # builder name → (head name, its size)


def register_terms(
    name: str, head: tuple[str, HeadSize] | None = None
) -> Callable[[TermBuilder], TermBuilder]:
    """Decorator: `builder(config) -> [Term, ...]` contributes terms to every run it applies to;
    `head=(name, size)`: a discriminator head on D's trunk that its terms read."""

    def wrap(builder: TermBuilder) -> TermBuilder:
        TERM_BUILDERS[name] = builder
        if head is not None:
            HEADS[name] = head
        return builder

    return wrap


def declared_heads(config: ExperimentConfig) -> dict[str, HeadSize]:
    """The heads the config's terms read, for `MultiGAN(..., heads=...)` to build."""
    return {
        HEADS[name][0]: HEADS[name][1]
        for name, builder in TERM_BUILDERS.items()
        if name in HEADS and builder(config)
    }


def build_terms(config: ExperimentConfig) -> list[Term]:
    """Every term the config asks for, in registry order."""
    terms = [term for builder in TERM_BUILDERS.values() for term in builder(config)]
    names = [(t.phase, t.name) for t in terms]
    if len(set(names)) != len(names):
        raise ConfigError(f"two terms share a name within a phase: {names}")
    return terms


@register_terms("adversarial")
def adversarial_terms(config: ExperimentConfig) -> list[Term]:
    """Each discriminator tells its task's real samples from the fakes routed to it (its
    task's generators); the generators try to fool it. Per-discriminator losses (ND,)."""
    if config.loss.adversarial == "none":
        return []
    loss = get_adversarial(config.loss.adversarial)

    def d_term(ctx: TermContext) -> Tensor:
        real, fake = ctx.disc_real(), ctx.disc_fake_detached()
        return loss.d_real(real).mean(1) + loss.d_fake(fake).mean(1)

    def g_term(ctx: TermContext) -> Tensor:
        return loss.g(ctx.disc_fake()).mean(1)

    return [Term("adversarial", "d", d_term), Term("adversarial", "g", g_term)]


def _critic(ctx: TermContext) -> Callable[[Tensor], Tensor]:
    """The adversarial logits as the penalties differentiate them: (ND, n, *shape) laid out as
    real_d → (ND, n), through loss.augment's transforms (drawn at the call), as D is trained."""
    return lambda x: ctx.model.discriminate(ctx.augmented(x))


@register_terms("gradient_penalty")
def gradient_penalty_terms(config: ExperimentConfig) -> list[Term]:
    """WGAN-GP (Gulrajani et al. 2017): λ · (‖∇D(x̂)‖ − 1)² on real/fake interpolates; lazily
    every N steps (loss.gp_every) with the weight scaled by N, as lazy R1. With loss.augment
    the critic is D ∘ augment (what D is trained as), differentiated w.r.t. x̂."""
    if config.loss.gp <= 0:
        return []
    every = config.loss.gp_every

    def gp(ctx: TermContext) -> Tensor:
        real = ctx.real_d
        fake = ctx.fake_d.detach()[:, : real.shape[1]]  # pairs for the interpolation
        eps = ctx.uniform(real.shape[:2] + (1,) * (real.dim() - 2)).to(real.dtype)
        return gradient_penalty(_critic(ctx), real, fake, eps=eps)

    weight = config.loss.gp * every
    return [Term("gp", "d", gp, weight, every=every, second_order=True, pairs_rows=True)]


@register_terms("r1")
def r1_terms(config: ExperimentConfig) -> list[Term]:
    """R1 (Mescheder et al. 2018): γ/2 · ‖∇D(x)‖² on real data, lazily every N steps with the
    weight scaled by N so the average strength is unchanged (StyleGAN2's lazy regularisation).
    With loss.augment, on augmented reals as StyleGAN2-ADA and DiffAugment: ‖∇ₓD(augment(x))‖²,
    the gradient w.r.t. the real image through the transform."""
    if config.loss.r1 <= 0:
        return []
    every = config.loss.r1_every

    def r1(ctx: TermContext) -> Tensor:
        return r1_penalty(_critic(ctx), ctx.real_d)

    return [Term("r1", "d", r1, weight=config.loss.r1 / 2 * every, every=every, second_order=True)]


@register_terms("generator_id", head=("generator", lambda generators, classes: generators))
def generator_id_terms(config: ExperimentConfig) -> list[Term]:
    """MGAN (Hoang et al. 2018): a classifier head on D's trunk learns which generator made each
    fake (D phase); every generator is pushed to be recognisable as itself, weight β (G phase).
    This is what spreads the generators over different modes."""
    beta = config.loss.generator_id
    if beta <= 0:
        return []

    def identify(outputs: dict[str, Tensor], owner: Tensor) -> Tensor:
        logits = outputs["generator"]  # (ND, n, NG)
        ce = F.cross_entropy(logits.flatten(0, 1), owner.flatten(), reduction="none")
        return ce.reshape(owner.shape).mean(1)

    def d_term(ctx: TermContext) -> Tensor:
        return identify(ctx.outputs("fake_detached"), ctx.fake_owner)

    def g_term(ctx: TermContext) -> Tensor:
        return identify(ctx.outputs("fake"), ctx.fake_owner)

    return [
        Term("generator_id", "d", d_term, head="generator"),
        Term("generator_id", "g", g_term, weight=beta, head="generator"),
    ]


def _cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Per-network mean cross-entropy of logits (N, n, C) against targets (N, n): (N,)."""
    ce = F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), reduction="none")
    return ce.reshape(target.shape).mean(1)


@register_terms("classes", head=("class", lambda generators, classes: classes))
def class_terms(config: ExperimentConfig) -> list[Term]:
    """AC-GAN (Odena et al. 2017): a class head on D's trunk predicts the class of real samples
    (their labels) and of fakes (the class they were generated for); D minimises both
    cross-entropies, G the one on its fakes, so that each sample looks like its class."""
    weight = config.loss.classes
    if weight <= 0:
        return []
    if not config.model.conditional:
        raise ConfigError(
            "loss.classes needs a conditional model (its class head predicts the class each "
            "sample was made for): model.conditional=true"
        )

    def d_term(ctx: TermContext) -> Tensor:
        real = _cross_entropy(ctx.outputs("real")["class"], ctx.real_labels_d)
        fake = _cross_entropy(ctx.outputs("fake_detached")["class"], ctx.fake_labels_d)
        return real + fake

    def g_term(ctx: TermContext) -> Tensor:
        return _cross_entropy(ctx.outputs("fake")["class"], ctx.fake_labels_d)

    return [
        Term("classes", "d", d_term, weight=weight, head="class"),
        Term("classes", "g", g_term, weight, head="class"),
    ]


def _known_tasks(config: ExperimentConfig) -> int | None:
    """How many tasks the config's data has, where the config alone says (label groups ×
    domains); None for data.tasks=classes, where the data's classes decide."""
    tasks = config.data.tasks
    if tasks == "classes":
        return None
    return (1 if tasks == "single" else len(tasks)) * len(config.data.domains)


# The task head has one output per task. With two tasks or more, `nets.routing.route` makes
# the generators one per task, so their count is the task count wherever the term runs; the
# term refuses fewer than two tasks and checks the head's width against the tasks it sees.
@register_terms("task_id", head=("task", lambda generators, classes: generators))
def task_id_terms(config: ExperimentConfig) -> list[Term]:
    """AC-GAN's auxiliary classifier with the task as the class (the setting of TAC-GAN, Gong
    et al. 2019): a task head on D's trunk predicts the task of the real samples and the fakes
    each discriminator judges (those of its task, `model.discriminator_tasks`); D minimises
    both cross-entropies, G the one on its fakes. It tells tasks apart where the head is shared
    (model.share.discriminator=all); a task-own head sees a single task and learns nothing."""
    weight = config.loss.task_id
    if weight <= 0:
        return []
    known = _known_tasks(config)
    if known is not None and known < 2:
        raise ConfigError(
            f"loss.task_id={weight} needs at least two tasks (its head tells them apart), but "
            f"data.tasks={config.data.tasks} gives {known}: list two label groups or more "
            "(data.tasks=[[0,1,2,3],[2,3,4,5]]), use data.tasks=classes, or set loss.task_id=0"
        )

    def task_of(ctx: TermContext, logits: Tensor) -> Tensor:
        """The task of each row judged by each discriminator: (ND, n), from logits (ND, n, T)."""
        tasks = list(ctx.model.discriminator_tasks)
        count = len(set(tasks))
        if count < 2 or logits.shape[-1] != count:
            raise ConfigError(
                f"loss.task_id needs at least two tasks and a task head with one output per "
                f"task; this run has {count} task(s) and a head of {logits.shape[-1]}"
            )
        target = torch.tensor(tasks, dtype=torch.long, device=logits.device)
        return target[:, None].expand(logits.shape[:2])

    def identify(ctx: TermContext, which: str) -> Tensor:
        logits = ctx.outputs(which)["task"]
        return _cross_entropy(logits, task_of(ctx, logits))

    def d_term(ctx: TermContext) -> Tensor:
        return identify(ctx, "real") + identify(ctx, "fake_detached")

    def g_term(ctx: TermContext) -> Tensor:
        return identify(ctx, "fake")

    return [
        Term("task_id", "d", d_term, weight=weight, head="task"),
        Term("task_id", "g", g_term, weight, head="task"),
    ]


@register_terms("source", head=("source", lambda generators, classes: generators + 1))
def source_terms(config: ExperimentConfig) -> list[Term]:
    """MAD-GAN (Ghosh et al. 2018): D classifies every sample K + 1 ways, real (class K) or
    made by generator k (class k); each generator wants its fakes taken for real. Together with
    `loss.adversarial=none` this replaces the real/fake game; the generators, differing only
    in their last layer, are pushed apart because D must tell them from one another."""
    weight = config.loss.source
    if weight <= 0:
        return []
    count = config.model.generators or 0
    if count < 2:
        raise ConfigError(
            "loss.source needs several generators on one task (its head has one output per "
            "generator plus one for real): model.generators=K"
        )

    def real_class(x: Tensor) -> Tensor:
        """Target "real" (class K) for every sample of x (N, n, ...)."""
        return torch.full(x.shape[:2], count, dtype=torch.long, device=x.device)

    def d_term(ctx: TermContext) -> Tensor:
        real = _cross_entropy(ctx.outputs("real")["source"], real_class(ctx.real_d))
        return real + _cross_entropy(ctx.outputs("fake_detached")["source"], ctx.fake_owner)

    def g_term(ctx: TermContext) -> Tensor:
        return _cross_entropy(ctx.outputs("fake")["source"], real_class(ctx.fake_d))

    return [
        Term("source", "d", d_term, weight=weight, head="source"),
        Term("source", "g", g_term, weight, head="source"),
    ]


def rotations(x: Tensor) -> tuple[Tensor, Tensor]:
    """Every image of x (ND, n, C, H, W) turned by 0, 90, 180 and 270 degrees: (ND, 4n, C, H, W)
    and the rotation labels (ND, 4n)."""
    turned = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)], dim=1)
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[1])
    return turned, labels.expand(x.shape[0], -1)


@register_terms("rotation", head=("rotation", lambda generators, classes: 4))
def rotation_terms(config: ExperimentConfig) -> list[Term]:
    """SS-GAN (Chen et al. 2019): a rotation head on D's trunk predicts how real images were
    turned (D phase, weight `loss.rotation_d`, 1.0 in the paper); G is rewarded when its fakes'
    rotations are recognisable too (G phase, `loss.rotation_g`, 0.2). With loss.augment the
    images are augmented, then turned: the label stays the turn D is asked about, and the
    four turns of a sample share its draws."""
    w_d, w_g = config.loss.rotation_d, config.loss.rotation_g
    if w_d <= 0 and w_g <= 0:
        return []

    def predict(ctx: TermContext, images: Tensor, fakes: bool) -> Tensor:
        if images.dim() != 5 or images.shape[-1] != images.shape[-2]:
            raise ConfigError("the rotation task needs square images, not 2D points")
        turned, labels = rotations(ctx.augmented(images, fakes=fakes))
        logits = ctx.model.discriminate_all(turned)["rotation"]  # (ND, 4n, 4)
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        return ce.reshape(labels.shape).mean(1)

    terms = []
    if w_d > 0:
        real = Term("rotation", "d", lambda c: predict(c, c.real_d, False), w_d, head="rotation")
        terms.append(real)
    if w_g > 0:
        fake = Term("rotation", "g", lambda c: predict(c, c.fake_d, True), w_g, head="rotation")
        terms.append(fake)
    return terms
