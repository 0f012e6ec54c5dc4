"""Shared helpers for the balancer tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mtgan.config import load_config
from mtgan.training import Trainer


def _interrupted(overrides: list[str], before: int, after: int) -> tuple[dict, dict]:
    """The last record of an uninterrupted run of before + after steps, and of a run stopped
    after `before` steps, restored into a fresh trainer (weights and state) and continued."""
    straight = Trainer(load_config("pertask", overrides))
    for _ in range(before + after):
        last = straight.train_step(record=True)
    first = Trainer(load_config("pertask", overrides))
    for _ in range(before):
        first.train_step()
    resumed = Trainer(load_config("pertask", overrides))
    resumed.weights().load_state_dict(first.weights().state_dict())
    resumed.load_state_dict(first.state_dict())
    for _ in range(after):
        again = resumed.train_step(record=True)
    return last, again


@pytest.fixture
def interrupted() -> Callable[[list[str], int, int], tuple[dict, dict]]:
    return _interrupted
