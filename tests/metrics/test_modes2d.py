import math

import pytest
import torch

from mtgan.data.toy2d import mixture_modes, mixture_sigma, sample_mixture
from mtgan.metrics.modes2d import mode_stats, mode_stats_for

HQ_CEILING = 100 * (1 - math.exp(-4.5))  # P(|N(0, s^2 I_2)| < 3 s) = 98.89 %
SEEDS = 10


@pytest.mark.parametrize(("name", "published"), [("ring8", 0.0015), ("grid25", 0.0048)])
def test_samples_from_the_true_mixture_hit_the_protocol_ceilings(name, published):
    n, n_modes = 2500, len(mixture_modes(name))
    rkls = []
    for seed in range(SEEDS):
        points, _ = sample_mixture(name, n, torch.Generator().manual_seed(seed))
        stats = mode_stats_for(name, points)
        assert stats["modes"] == n_modes
        # One run's HQ has a binomial std of 0.21 points: +-1 point is ~5 std.
        assert stats["hq"] == pytest.approx(HQ_CEILING, abs=1.0)
        assert stats["n"] == n and stats["sigma"] == mixture_sigma(name)
        rkls.append(stats["rkl"])
    # 2 N KL(p_hat || uniform) is ~ chi-square with M - 1 dof: mean (M - 1) / (2 N), std
    # sqrt(2 (M - 1)) / (2 N) per run; allow 4 standard errors of the mean over the seeds.
    n_hq = n * HQ_CEILING / 100
    expected = (n_modes - 1) / (2 * n_hq)
    tol = 4 * math.sqrt(2 * (n_modes - 1)) / (2 * n_hq) / math.sqrt(SEEDS)
    mean_rkl = sum(rkls) / SEEDS
    assert all(r > 0 for r in rkls)
    assert mean_rkl == pytest.approx(expected, abs=tol)
    assert mean_rkl == pytest.approx(published, abs=tol)


def test_samples_from_one_mode_capture_one_mode_with_rkl_log_m():
    modes = mixture_modes("grid25")
    sigma = mixture_sigma("grid25")
    points = modes[7] + sigma * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    stats = mode_stats(points, modes, sigma)
    assert stats["modes"] == 1
    assert stats["rkl"] == pytest.approx(math.log(25))


def test_points_far_from_every_mode_are_not_high_quality():
    points = torch.full((100, 2), 50.0)
    stats = mode_stats_for("ring8", points)
    assert stats["hq"] == 0.0 and stats["modes"] == 0 and stats["rkl"] == math.inf
    assert stats["threshold"] == pytest.approx(0.03)


def test_histogram_counts_only_high_quality_samples():
    # modes (0, 0) and (10, 0), sigma 1 -> threshold 3. Samples: 0.5 and 2.9 HQ at mode 0,
    # 3.1 nearest mode 0 but not HQ, (10, 1) HQ at mode 1.
    # hq = 3/4; histogram over HQ samples (2/3, 1/3), not over all samples (3/4, 1/4).
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    points = torch.tensor([[0.5, 0.0], [2.9, 0.0], [3.1, 0.0], [10.0, 1.0]])
    stats = mode_stats(points, modes, sigma=1.0)
    expected = 2 / 3 * math.log(2 * 2 / 3) + 1 / 3 * math.log(2 * 1 / 3)
    assert stats["hq"] == pytest.approx(75.0)
    assert stats["modes"] == 2
    assert stats["rkl"] == pytest.approx(expected)
