"""`train.until`: when a tracked metric has stopped improving (or has run away from its best),
the run has converged (or diverged) and stops; its direction comes from the metric registry."""

from __future__ import annotations

import math
from typing import Any

from mtgan.config import UntilConfig
from mtgan.errors import RunError
from mtgan.metrics.registry import direction

CONVERGED, DIVERGED, STEPS = "converged", "diverged", "steps"


class Until:
    """The stop rule's memory: the best value so far, its step, evaluations since then."""

    def __init__(self, config: UntilConfig | None):
        self.config = config
        self.lower = config is not None and direction(config.metric) == "min"
        self.best: float | None = None
        self.best_step: int | None = None
        self.since_best = 0

    def observe(self, step: int, result: dict[str, float]) -> tuple[bool, str | None]:
        """(whether this evaluation is the best so far, the reason to stop or None)."""
        cfg = self.config
        if cfg is None:
            return False, None
        if cfg.metric not in result:
            keys = ", ".join(k for k in result if "/" not in k)
            raise RunError(f"train.until.metric={cfg.metric} was not evaluated; have: {keys}")
        value = float(result[cfg.metric])
        sign = 1.0 if self.lower else -1.0  # compare as "smaller is better"
        improved = math.isfinite(value) and (
            self.best is None or sign * value < sign * self.best - self._least_gain()
        )
        if improved:
            self.best, self.best_step, self.since_best = value, step, 0
            return True, None
        self.since_best += 1
        if cfg.diverge is not None and self.best is not None and self._worse(value, cfg.diverge):
            return False, DIVERGED
        if self.since_best >= cfg.patience:
            # a metric never finite in `patience` evaluations has not converged: the run broke
            return False, CONVERGED if self.best is not None else DIVERGED
        return False, None

    def _least_gain(self) -> float:
        """How much better than the best a value must be to count as a gain."""
        assert self.config is not None and self.best is not None
        return max(self.config.min_delta, self.config.min_rel_delta * abs(self.best))

    def _worse(self, value: float, factor: float) -> bool:
        if not math.isfinite(value):
            return True
        assert self.best is not None
        if self.lower:
            return value > self.best * factor
        return value < self.best / factor

    def describe(self, reason: str, step: int) -> str:
        cfg = self.config
        if reason == STEPS or cfg is None:
            return f"stopped at train.steps ({step})"
        if self.best is None:
            return (
                f"diverged at step {step}: {cfg.metric} was not finite in any of its "
                f"{self.since_best} evaluations"
            )
        best = f"best {cfg.metric} {self.best:.4g} at step {self.best_step}"
        if reason == CONVERGED:
            return (
                f"converged at step {step}: {cfg.metric} did not improve by more than "
                f"{self._least_gain():.4g} for {cfg.patience} evaluations ({best})"
            )
        return f"diverged at step {step}: {cfg.metric} fell {cfg.diverge:g}× behind its {best}"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        state = state or {}
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.since_best = int(state.get("since_best", 0))
