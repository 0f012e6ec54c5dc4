"""What a term may read of the training step: the interface the objectives are written against.

The trainer's `training.context.StepContext` provides it (computing each thing once per step);
a test, a benchmark or another loop may hand the terms anything else that does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor, nn


class Discriminating(Protocol):
    """The networks as the terms call them."""

    discriminator_tasks: list[int]  # the task each discriminator judges (ND,)

    def discriminate(self, x: Tensor) -> Tensor:
        """(ND, n, *shape) → adversarial logits (ND, n)."""
        ...

    def discriminate_all(self, x: Tensor) -> dict[str, Tensor]:
        """(ND, n, *shape) → every head's outputs, "adv" included: {name: (ND, n, ...)}."""
        ...


@runtime_checkable
class TermContext(Protocol):
    """One step's samples and discriminator outputs, shapes per discriminator (ND, n, ...)."""

    model: Discriminating | nn.Module
    real_d: Tensor  # real samples routed to each discriminator (ND, n, *shape)
    real_labels_d: Tensor | None  # their classes (ND, n), None for unlabelled data

    @property
    def fake_d(self) -> Tensor:
        """The fakes each discriminator judges (ND, n, *shape), differentiable w.r.t. G."""
        ...

    @property
    def fake_labels_d(self) -> Tensor:
        """The class each fake was generated for (ND, n) (conditional models)."""
        ...

    @property
    def fake_owner(self) -> Tensor:
        """Which generator made each fake (ND, n) int64."""
        ...

    def uniform(self, shape: tuple[int, ...]) -> Tensor:
        """U[0, 1) draws, the same on one process as split over several."""
        ...

    def augmented(self, x: Tensor, fakes: bool = False) -> Tensor:
        """x (ND, n, *shape) as the discriminators see it (loss.augment; x itself without):
        every image a term hands a discriminator goes through here. x's columns lie as
        real_d's, or with `fakes` as fake_d's; fresh draws at each call."""
        ...

    def outputs(self, which: str) -> dict[str, Tensor]:
        """Every head on "real", "fake_detached" (fakes as constants) or "fake", augmented."""
        ...

    def disc_real(self) -> Tensor: ...

    def disc_fake_detached(self) -> Tensor: ...

    def disc_fake(self) -> Tensor: ...
