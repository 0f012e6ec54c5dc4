"""`train.lr_schedule`: the learning rate as a pure function of the global step.

A phase due at step s (the number of updates done before it) steps with
lr = configured lr × rollback scale (`Trainer.lr_scale`) × factor(s). Nothing else is kept, so
a resumed run sees exactly the rates an uninterrupted one did, and a rollback (which rewinds
the step) rewinds the schedule with it. `train.lr_warmup` W ramps the factor linearly up to 1
over the first W steps; the schedule then runs over the remaining train.steps − W.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mtgan.config import TrainConfig
    from mtgan.training.phases import Phase

# progress p ∈ [0, 1) through the schedule → factor
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda p: 1.0,
    "linear": lambda p: 1.0 - p,  # SNGAN: to 0 at train.steps
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),  # to 0 at train.steps
}


class LrSchedule:
    """The factor the configured learning rates are multiplied by at a step."""

    def __init__(self, train: TrainConfig):
        self.decay = SCHEDULES[train.lr_schedule]
        self.steps, self.warmup = train.steps, train.lr_warmup

    def __call__(self, step: int) -> float:
        """The factor for the update made at `step` (0 for the first update)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(self.steps - self.warmup, 1)
        return self.decay(min(max((step - self.warmup) / span, 0.0), 1.0))


def learning_rates(phases: list[Phase]) -> dict[str, float]:
    """`lr/<phase>`: the rate each optimizer last stepped with (a regulariser phase steps its
    main phase's optimizer, which is logged once, under the main phase's name)."""
    return {f"lr/{p.name}": p.optimizer.param_groups[0]["lr"] for p in phases if p.owns_optimizer}
