"""The balancer interface and its registry, with the default: fixed weights.

A balancer sees the objectives of one phase step (each term's losses, one per network, named
`adversarial/task3`, `adversarial/d2` or just `gp`) and chooses a weight α_i for each; the phase
then differentiates Σ α_i · w_i · L_i with the configured term weight w_i. α is decided from the
global batch (`Objectives.values` is averaged over data-parallel ranks before anyone reads it,
and gradient sources reduce their Jacobians the same way), so every rank decides the same α as a
single process would. Balancers with state (learned weights, loss histories) expose it through
`state_dict`; the phase stores it with the names of the objectives it belongs to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from mtgan.errors import ConfigError, RunError

Reduce = Callable[[list[Tensor]], list[Tensor]]


def local(tensors: list[Tensor]) -> list[Tensor]:
    return tensors


def default_names(losses: dict[str, Tensor]) -> list[str]:
    """`term/task{k}` per loss, or `term` for a term with a single loss."""
    names = []
    for term, values in losses.items():
        n = values.numel()
        names += [term] if n == 1 else [f"{term}/task{k}" for k in range(n)]
    return names


class Objectives:
    """The m objectives of one phase step: each term's losses (one per network), their term
    weights and their names.

    `per_term` and `weighted` (m,) are w_i·L_i on this process's shard, differentiable;
    `values` (m,) are the detached L_i of the global batch (the mean over ranks, computed once
    when first read): what a balancer decides from."""

    def __init__(
        self,
        losses: dict[str, Tensor],
        weights: dict[str, float],
        names: list[str] | None = None,
        reduce: Reduce = local,
    ):
        self.losses, self.weights = losses, weights
        self.names = names if names is not None else default_names(losses)
        self.reduce = reduce
        if sum(v.numel() for v in losses.values()) != len(self.names):
            sizes = {k: v.numel() for k, v in losses.items()}
            raise RuntimeError(f"{len(self.names)} objective names for losses of sizes {sizes}")

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def per_term(self) -> list[Tensor]:
        return [self.weights[k] * v.reshape(-1).float() for k, v in self.losses.items()]

    @cached_property
    def weighted(self) -> Tensor:
        return torch.cat(self.per_term)

    @cached_property
    def values(self) -> Tensor:
        flat = torch.cat([v.detach().reshape(-1).float() for v in self.losses.values()])
        return self.reduce([flat])[0]

    @cached_property
    def base(self) -> Tensor:
        """The term weight of every objective (m,)."""
        return torch.cat(
            [torch.full((v.numel(),), self.weights[k]) for k, v in self.losses.items()]
        ).to(self.weighted.device)

    def combined(self, alpha: Tensor | None = None) -> Tensor:
        """Σ α_i · w_i · L_i, differentiable; α None: every α_i = 1 (Σ w·L term by term)."""
        if alpha is None:
            return sum(self.weights[name] * loss.sum() for name, loss in self.losses.items())
        return (alpha * self.weighted).sum()

    def groups(self) -> list[slice]:
        """Each term's objectives, as slices of the m."""
        out, start = [], 0
        for values in self.losses.values():
            out.append(slice(start, start + values.numel()))
            start += values.numel()
        return out


class Balancer:
    """Base class: subclasses implement `weights` (or `combine`, for fixed weights)."""

    name = "base"
    summary = ""  # one line for `mtgan presets --balancers`
    needs_gradients = False  # True: `weights` gets a GradientSource, per-objective gradients
    at = "shared"  # where a gradient balancer takes them: the shared parameters, or "all"
    stateful = True  # False: its weights depend on this step's losses and gradients alone
    # True: its weights for a step read neither that step's losses nor its gradients, only its
    # own state (fixed, a seeded draw)
    weights_from_state = False
    last_alpha: Tensor | None = None  # α of the last combine, for the logs (never synced)
    last_names: list[str] = []  # noqa: RUF012 (replaced, never mutated)

    def __init__(self, **options: Any):
        if options:
            raise ConfigError(
                f"balancer {self.name!r} takes no options, got {', '.join(sorted(options))}"
            )

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        """α (m,), detached, on the objectives' device. `source`, a GradientSource
        (sources.py: the objectives' Gram matrix or Jacobian), is given to balancers that need
        gradients."""
        raise NotImplementedError

    def combine(self, objectives: Objectives, source: Any = None) -> Tensor:
        """The scalar the phase differentiates: Σ α_i · w_i · L_i."""
        alpha = self.weights(objectives, source)
        self.last_alpha, self.last_names = alpha, objectives.names
        return objectives.combined(alpha)

    @property
    def last_weights(self) -> dict[str, float]:
        """Objective name → α of the last combine (reads the device: for tests and tools)."""
        if self.last_alpha is None:
            return dict.fromkeys(self.last_names, 1.0)
        return dict(zip(self.last_names, self.last_alpha.tolist()))

    def check(self, sizes: dict[str, int], field: str) -> None:
        """Refuse, at build time, a phase this balancer cannot weigh (sizes: term → number of
        objectives). Every balancer can weigh anything unless it says otherwise."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def expect_objectives(m: int, have: int, what: str) -> None:
    """A balancer's per-objective state must fit the phase: never silently reset it."""
    if have != m:
        raise RunError(
            f"the balancer's {what} covers {have} objectives but the phase has {m}: the state "
            "was written for other terms or networks (a changed config on resume?)"
        )


class SeededDraws:
    """Mixin: a seeded generator for a balancer's random draws, kept in the checkpoint so that
    a resumed run draws what the uninterrupted one would have. Every rank seeds it alike and
    draws as often, so data-parallel ranks draw the same."""

    def seed_draws(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(int(seed))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


BALANCERS: dict[str, type[Balancer]] = {}


def register(cls: type[Balancer]) -> type[Balancer]:
    """Class decorator: make a balancer selectable by its `name` in the config."""
    BALANCERS[cls.name] = cls
    return cls


@register
class FixedWeights(Balancer):
    """Σ_terms weight · Σ_tasks loss: each task keeps its own loss scale, so a task-own layer
    gets exactly the gradient it would get if its task were trained alone, and a shared layer
    the sum of its tasks' gradients."""

    name = "fixed"
    summary = "Σ weight·loss, every task at its own scale (default)"
    stateful = False
    weights_from_state = True

    def weights(self, objectives: Objectives, source: Any = None) -> Tensor:
        return torch.ones_like(objectives.weighted.detach())

    def combine(self, objectives: Objectives, source: Any = None) -> Tensor:
        # α = 1: no flattening on the hot path; the logs read ones (`last_weights`)
        self.last_names = objectives.names
        return objectives.combined()


def options_of(cls: type[Balancer]) -> list[str]:
    """The options a balancer's constructor takes."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]


def options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A phase's options for balancer `name`: `{name: {...}, other: {...}}` keeps each
    balancer's options under its own name (a preset's options for its balancer do not follow
    the user to another one); a mapping without balancer names is the chosen balancer's own."""
    keyed = bool(options) and all(
        k in BALANCERS and isinstance(v, dict) for k, v in options.items()
    )
    if keyed:
        return dict(options.get(name, {}))
    return dict(options)


def build_balancer(name: str, options: dict[str, Any], field: str) -> Balancer:
    """The balancer called `name`, or a ConfigError naming the field and the choices."""
    if name not in BALANCERS:
        raise ConfigError(f"{field}: unknown balancer {name!r}; choose one of {sorted(BALANCERS)}")
    cls = BALANCERS[name]
    options = options_for(name, options)
    valid = options_of(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        takes = f"its options are {', '.join(valid)}" if valid else "it takes no options"
        raise ConfigError(
            f"{field}_options: balancer {name!r} has no option {', '.join(unknown)}; {takes} "
            f"(options for other balancers go under their names: {field}_options.NAME.OPTION)"
        )
    try:
        return cls(**options)
    except (TypeError, ConfigError) as e:
        raise ConfigError(f"{field}_options: balancer {name!r}: {e}") from None
