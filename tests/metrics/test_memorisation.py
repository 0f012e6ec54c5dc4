"""`memorisation`: nearer a training row than a held-out one, balanced for the set sizes."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from mtgan.config import EvalConfig
from mtgan.data import TaskSet
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.metrics.features import RawFeatures
from mtgan.metrics.memorisation import balanced, memorisation, wilson_lower
from mtgan.metrics.registry import direction

DIM = 8


def brute_force(
    fake: list[list[int]], train: list[list[int]], held: list[list[int]]
) -> tuple[float, int, int]:
    """(balanced share of training rows among the rows nearest to some sample, how many rows,
    how many of them training rows) by nested loops over integer points (exact distances)."""
    real = train + held
    hit: set[int] = set()
    for s in fake:
        dist = [sum((a - b) ** 2 for a, b in zip(s, r)) for r in real]
        hit |= {i for i, d in enumerate(dist) if d == min(dist)}
    hits = sum(1 for i in hit if i < len(train))
    f, p0 = hits / len(hit), len(train) / len(real)
    return f * (1 - p0) / (f * (1 - p0) + (1 - f) * p0), len(hit), hits


@pytest.mark.parametrize("sizes", [(5, 5), (9, 4), (3, 7)])
def test_the_value_equals_a_nested_loop_computation_ties_included(sizes):
    gen = torch.Generator().manual_seed(sum(sizes))
    # small integer coordinates: many samples equally near a training and a held-out row
    train, held = (torch.randint(0, 4, (n, 3), generator=gen) for n in sizes)
    fake = torch.randint(-1, 5, (8, 3), generator=gen)
    value, rows, hits = brute_force(fake.tolist(), train.tolist(), held.tolist())
    got = memorisation(fake.double(), train.double(), held.double())
    assert got["memorisation"] == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert got["memorisation_rows"] == rows < sum(sizes)
    low = balanced(wilson_lower(hits, rows), *sizes)
    assert got["memorisation_excess"] == max(0.0, 2 * (low - 0.5))
    if sizes[0] == sizes[1]:  # equal sets: the plain share, exactly
        assert got["memorisation"] == hits / rows


def test_balancing_maps_the_training_share_to_one_half_and_copies_to_one():
    assert balanced(0.8, 8, 2) == pytest.approx(0.5)
    assert balanced(0.5, 5, 5) == 0.5
    assert balanced(1.0, 8, 2) == 1.0 and balanced(0.0, 8, 2) == 0.0


def test_the_excess_reads_the_lower_end_of_a_wilson_interval():
    z2 = 1.96**2
    assert wilson_lower(10, 10) == pytest.approx(10 / (10 + z2))  # all hits: n / (n + z²)
    assert wilson_lower(0, 10) == 0
    assert wilson_lower(30, 60) == pytest.approx(0.3774, abs=1e-4)  # textbook value
    one_row = memorisation(torch.zeros(5, 2), torch.zeros(1, 2), torch.ones(1, 2))
    assert one_row["memorisation"] == 1.0 and one_row["memorisation_excess"] == 0


def test_only_the_excess_has_a_better_side():
    assert direction("memorisation") is None and direction("memorisation/task1") is None
    assert direction("memorisation_rows") is None
    assert direction("memorisation_excess") == direction("memorisation_excess/task0") == "min"


def points(train: int, held: int, tasks: int = 2, seed: int = 0) -> TaskSet:
    """Gaussian points (DIM-d), one cloud per task, with `train` and `held` rows of each."""
    gen = torch.Generator().manual_seed(seed)

    def taskset(n: int) -> TaskSet:
        x = torch.cat([torch.randn(n, DIM, generator=gen) + 4 * k for k in range(tasks)])
        return TaskSet(
            x=x,
            offsets=torch.arange(tasks) * n,
            counts=torch.full((tasks,), n),
            names=[f"task{k}" for k in range(tasks)],
            kind="points",
            labels=torch.arange(tasks).repeat_interleave(n),
            domains=["identity"] * tasks,
        )

    data = taskset(train)
    data.heldout = taskset(held)
    return data


def context(data: TaskSet, generate, n: int = 2000) -> EvalContext:
    tasks = list(range(data.num_tasks))
    config = EvalConfig(n=n, features="raw")
    return EvalContext(data, config, generate, DIM, tasks, extractor=RawFeatures())


def copier(data: TaskSet):
    """A generator whose samples are its task's training rows, in turn."""

    def generate(z: Tensor, labels: Tensor | None = None) -> Tensor:
        n = z.shape[1]
        return torch.stack([data.task(k)[torch.arange(n) % len(data.task(k))] for k in range(2)])

    return generate


def fresh(z: Tensor, labels: Tensor | None = None) -> Tensor:
    """A generator of the data's distribution that never saw its rows: new draws of each cloud."""
    return z + 4 * torch.arange(z.shape[0]).view(-1, 1, 1)


@pytest.mark.parametrize("held", [200, 50])  # equal sets, and a training set 4× the held-out one
def test_a_copier_scores_one_and_a_fresh_generator_one_half(held):
    data = points(train=200, held=held)
    copied = evaluate(context(data, copier(data)), ["memorisation"])
    assert copied["memorisation"] == 1.0 and copied["memorisation_rows"] == 200
    assert copied["memorisation_excess"] > 0.8  # 200 rows: 0.96 at equal sets, 0.86 at 4:1
    assert {copied[f"memorisation/task{k}"] for k in range(2)} == {1.0}
    unseen = evaluate(context(data, fresh), ["memorisation"])
    for k in range(2):
        assert unseen[f"memorisation/task{k}"] == pytest.approx(0.5, abs=0.06)
        assert unseen[f"memorisation_rows/task{k}"] > 0.9 * (200 + held)
    assert unseen["memorisation_excess"] == 0


def test_the_context_value_is_the_direct_computation_on_all_rows():
    data = points(train=120, held=30)
    ctx = context(data, fresh, n=300)
    result = evaluate(ctx, ["memorisation"])
    for k in range(2):
        train, held = data.task(k).double(), data.heldout.task(k).double()
        for key, value in memorisation(ctx.samples(k).double(), train, held).items():
            assert result[f"{key}/task{k}"] == value


def test_a_collapsed_generator_far_from_the_data_shows_no_excess():
    """All its samples share one nearest real row: a training row with probability 0.8 here,
    which reads as memorisation 1 on one row's evidence; the excess does not count it."""
    data = points(train=200, held=50)

    def far(z: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.full_like(z, 3.0) + 4 * torch.arange(z.shape[0]).view(-1, 1, 1)

    result = evaluate(context(data, far), ["memorisation"])
    assert result["memorisation_rows"] == 1
    assert result["memorisation/task0"] in (0.0, 1.0) and result["memorisation_excess"] == 0
