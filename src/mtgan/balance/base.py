"""The balancer interface and its registry, with the default: fixed weights.

A balancer sees, for one phase, each term's per-task losses (name → tensor of shape (n,)) and
the term's configured weight, and returns the scalar to differentiate. Balancers with state
(learned weights, loss histories) expose it through `state_dict` so that resume is exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtgan.errors import ConfigError


class Balancer:
    """Base class: subclasses implement `combine`."""

    name = "base"
    summary = ""  # one line for `mtgan presets --balancers`
    needs_gradients = False  # True: `combine` gets `jacobian`, per-objective gradients
    at = "shared"  # where a gradient balancer takes them: the shared parameters, or "all"
    # objective → the weight chosen at the last combine, for the logs (replaced, never mutated)
    last_weights: dict[str, float] = {}  # noqa: RUF012

    def __init__(self, **options: Any):
        if options:
            raise ConfigError(
                f"balancer {self.name!r} takes no options, got {', '.join(sorted(options))}"
            )

    def combine(
        self, losses: dict[str, Tensor], weights: dict[str, float], jacobian: Any = None
    ) -> Tensor:
        """losses: term → per-task losses (n,); weights: term → weight. Returns a scalar.
        `jacobian`, a GradientSource (sources.py: the objectives' Gram matrix or Jacobian), is
        given to balancers that need gradients."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class SeededDraws:
    """Mixin: a seeded generator for a balancer's random draws, kept in the checkpoint so that
    a resumed run draws what the uninterrupted one would have."""

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

    def combine(
        self, losses: dict[str, Tensor], weights: dict[str, float], jacobian: Any = None
    ) -> Tensor:
        return sum(weights[name] * loss.sum() for name, loss in losses.items())


def build_balancer(name: str, options: dict[str, Any], field: str) -> Balancer:
    """The balancer called `name`, or a ConfigError naming the field and the choices."""
    if name not in BALANCERS:
        raise ConfigError(f"{field}: unknown balancer {name!r}; choose one of {sorted(BALANCERS)}")
    try:
        return BALANCERS[name](**options)
    except (TypeError, ConfigError) as e:
        raise ConfigError(f"{field}_options: {e}") from None
