"""Shared fixtures: tiny real configs that train in well under a second."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mtgan.config import load_config
from mtgan.training import Trainer

pytest_plugins = ["own_images"]  # the `shapes` fixtures: a user's own labelled images

TINY = [
    "data.tasks=[[0],[1],[7]]",
    "data.limit=40",
    "model.z_dim=8",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
    "model.share.generator=trunk",
    "model.share.discriminator=trunk",
    "train.batch_size=8",
    "train.steps=6",
    "train.log_every=2",
    "train.sample_every=3",
    "train.checkpoint_every=3",
    "train.samples_per_task=4",
    "train.loggers=[jsonl]",
    "train.progress=false",
    "train.device=cpu",
    "train.precision=fp32",  # bit-exact comparisons; bf16 has its own tests
    # No race of throw-away trainers before a run (tuner.py, tested in test_tuner.py): on a
    # busy machine its verdicts are not cached, and its steps would run a test's stateful terms
    "train.keep_heap=false",
]


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that turn the pertask preset into a 3-task model small enough for unit tests."""
    return list(TINY)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/mtgan: one cache per test session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MTGAN_CACHE", str(tmp_path_factory.mktemp("mtgan-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _single_thread():
    # Bit-exact comparisons between runs need the same thread count in both.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
