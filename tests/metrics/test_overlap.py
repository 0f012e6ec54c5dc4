"""`overlap`: the share of a task's high-quality samples in the modes it shares with another task,
over those modes' share of its data (1: filled as in the data, < 1: under-filled)."""

from __future__ import annotations

import math

import pytest
import torch

from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.data.toy2d import mixture_modes, mixture_sigma
from mtgan.errors import ConfigError
from mtgan.metrics.catalog.overlap import overlap_values, shared_modes
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.metrics.registry import check_fits, direction

RING = mixture_modes("ring8")
SIGMA = mixture_sigma("ring8")
TASKS = "data.tasks=[[0,1,2,3],[2,3,4,5]]"


def _at(modes: list[int], jitter: float = 0.0, seed: int = 0) -> torch.Tensor:
    """One point at each listed mode (repeats allowed), moved by jitter·σ·N(0, I)."""
    noise = torch.randn(len(modes), 2, generator=torch.Generator().manual_seed(seed))
    return RING[modes] + jitter * SIGMA * noise


def _labels(modes: list[int], n: int = 100) -> torch.Tensor:
    return torch.tensor(modes).repeat(n)


def test_shared_modes_are_the_ones_another_task_has_too():
    assert shared_modes([{0, 1, 2, 3}, {2, 3, 4, 5}]) == [{2, 3}, {2, 3}]
    assert shared_modes([{0, 1}, {1, 2}, {2, 3}]) == [{1}, {1, 2}, {2}]
    assert shared_modes([{0, 1}, {2}]) == [set(), set()]


def test_hand_placed_samples_score_their_direct_ratio():
    labels = [_labels([0, 1, 2, 3]), _labels([2, 3, 4, 5])]
    never = _at([0, 1] * 50, jitter=0.5)  # task 0's generator never visits modes 2 and 3
    # task 1's generator on modes 0..3 instead of its 2..5: half in the overlap still, as in the
    # data; the metric measures the overlap only (`modes` sees the rest)
    elsewhere = _at([0, 1, 2, 3] * 25, jitter=0.5, seed=1)
    values = overlap_values([never, _at([2, 3, 4, 5] * 25)], labels, RING, SIGMA)
    assert values == [0.0, 1.0]
    # 3 of 10 high-quality samples in the shared modes, 2 far from every mode (not counted);
    # the data holds them at 2/4, so the ratio is (3/10) / (2/4)
    mixed = torch.cat([_at([2, 2, 3] + [0] * 4 + [1] * 3), torch.full((2, 2), 9.0)])
    got = overlap_values([mixed, elsewhere], labels, RING, SIGMA)
    assert got[0] == pytest.approx((3 / 10) / (2 / 4))
    assert got[1] == pytest.approx((50 / 100) / (2 / 4))


def test_the_data_share_is_read_from_the_labels_not_assumed_uniform():
    # task 0's data: mode 2 holds 1 row in 4 (0, 0, 1, 2); samples at mode 2 one in 4 → 1
    labels = [torch.tensor([0, 0, 1, 2] * 10), torch.tensor([2, 3] * 10)]
    values = overlap_values([_at([0, 1, 2, 0] * 5), _at([2, 2, 3] * 5)], labels, RING, SIGMA)
    assert values[0] == pytest.approx(1.0)
    assert values[1] == pytest.approx((2 / 3) / (1 / 2))  # over-filled


def test_no_high_quality_sample_gives_nan():
    labels = [_labels([0, 1]), _labels([1, 2])]
    values = overlap_values([torch.full((5, 2), 9.0), _at([1, 2])], labels, RING, SIGMA)
    assert math.isnan(values[0]) and values[1] == 1.0


def _config(*extra: str):
    return load_config(
        "gan-2d", ["data.name=ring8", "data.n_points=2000", "eval.metrics=[overlap]", *extra]
    )


def test_a_sampler_of_the_true_task_mixtures_scores_one_through_the_registry():
    config = _config(TASKS, "eval.n=4000")
    data = build_tasks(config.data, 0)
    check_fits(config, data)

    def generate(z: torch.Tensor) -> torch.Tensor:  # each task's real rows, drawn with z's seed
        picks = [data.sample_task(k, z.shape[1], torch.Generator().manual_seed(k)) for k in (0, 1)]
        return torch.stack(picks)

    ctx = EvalContext(data, config.eval, generate, 2, [0, 1], mixture="ring8")
    out = evaluate(ctx, ["overlap"])
    assert set(out) == {
        *("overlap", "overlap/task0", "overlap/task1"),
        *("overlap_gap", "overlap_gap/task0", "overlap_gap/task1"),
    }
    for k in (0, 1):  # binomial noise of a 4,000-sample share around 1/2: std ≈ 0.016 of 1
        assert out[f"overlap/task{k}"] == pytest.approx(1.0, abs=0.08)
        assert out[f"overlap_gap/task{k}"] == pytest.approx(abs(out[f"overlap/task{k}"] - 1))
    assert out["overlap"] == pytest.approx((out["overlap/task0"] + out["overlap/task1"]) / 2)
    assert direction("overlap/task0") is None and direction("overlap_gap") == "min"


@pytest.mark.parametrize(
    "extra, says",
    [
        (["data.tasks=classes"], "has data.tasks=classes, not explicit label lists"),
        (["data.tasks=[[0,1],[2,3],[3,4]]"], r"has task\(s\) \[0\] of data.tasks"),
        (["data.name=mnist", TASKS], "is not a bundled 2D mixture"),
    ],
)
def test_data_without_an_overlap_is_refused_with_the_reason(extra, says):
    config = _config(*extra)
    data = build_tasks(config.data.model_copy(update={"limit": 50}), 0)
    with pytest.raises(ConfigError, match=rf"`overlap` needs a bundled 2D mixture .*{says}"):
        check_fits(config, data)
