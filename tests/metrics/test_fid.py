import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from mtgan.metrics.fid import feature_stats, fid, fid_from_stats, kid


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_feature_stats_match_numpy_mean_and_unbiased_cov():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    mu, sigma = feature_stats(x)
    ref = x.double().numpy()
    assert mu.dtype == np.float64 and sigma.shape == (5, 5)
    np.testing.assert_allclose(mu, ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(ref, rowvar=False), rtol=1e-12)


def test_fid_of_diagonal_gaussians_equals_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert expected == pytest.approx(5.0 + 4.0 + 1.0)
    got = fid_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_fid_of_non_commuting_covariances_matches_eigendecomposition():
    # Tr (S1 S2)^1/2 = Tr (S1^1/2 S2 S1^1/2)^1/2, computed here without scipy.linalg.sqrtm.
    rng = np.random.default_rng(1)
    s1, s2 = _random_cov(rng, 6), _random_cov(rng, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    root1 = _psd_sqrt(s1)
    tr_covmean = np.sqrt(np.linalg.eigvalsh(root1 @ s2 @ root1)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_handles_one_dimensional_stats_given_as_scalars():
    # (0 - 1)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 2
    assert fid_from_stats(0.0, 1.0, 1.0, 4.0) == pytest.approx(2.0)


def test_fid_of_2d_gaussian_samples_approaches_closed_form():
    gen = torch.Generator().manual_seed(2)
    real = torch.randn(50_000, 2, generator=gen, dtype=torch.float64)
    fake = torch.randn(50_000, 2, generator=gen, dtype=torch.float64) * torch.tensor([2.0, 1.0])
    fake = fake + torch.tensor([1.0, 0.0])
    # |mu diff|^2 = 1, (sqrt 1 - sqrt 4)^2 = 1, (1 - 1)^2 = 0. Over seeds the estimate has a
    # std of ~0.035 at this N: allow ~4 std (a variance/std mix-up would give 9 or more).
    assert fid(real, fake) == pytest.approx(2.0, abs=0.15)


def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(2000, 64, generator=torch.Generator().manual_seed(3)) @ torch.randn(64, 64)
    _, sigma = feature_stats(x)
    assert abs(fid(x, x)) < 1e-6 * np.trace(sigma)


def test_fid_with_singular_covariance_stays_finite():
    # N < D: the covariance (and the product) is singular.
    x = torch.randn(20, 50, generator=torch.Generator().manual_seed(4))
    value = fid(x, x)
    _, sigma = feature_stats(x)
    assert np.isfinite(value) and abs(value) < 1e-3 * np.trace(sigma)


def _fid_by_sqrtm(mu1, s1, mu2, s2, eps=1e-6):
    """pytorch-fid's formula: scipy's general matrix square root of the product, eps·I added
    when it is not finite, the real part kept."""
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)


@pytest.mark.parametrize(
    "n1, n2, d",
    [(1000, 800, 64), (50, 50, 128), (50, 400, 128), (400, 30, 128)],
    ids=["well-conditioned", "both-rank-deficient", "first-rank-deficient", "second-deficient"],
)
def test_fid_by_eigendecomposition_equals_the_sqrtm_formula(n1, n2, d):
    rng = np.random.default_rng(n1 + n2)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    a = rng.standard_normal((n1, d)) @ mix
    b = rng.standard_normal((n2, d)) @ (mix + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d))
    (mu1, s1), (mu2, s2) = feature_stats(torch.from_numpy(a)), feature_stats(torch.from_numpy(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that a singular product is ill-conditioned
        expected = _fid_by_sqrtm(mu1, s1, mu2, s2)
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_fid_raises_on_large_imaginary_component():
    # Not a covariance: sqrt of diag(-1, 1) is diag(i, 1).
    with pytest.raises(ValueError, match="imaginary"):
        fid_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def test_kid_full_set_equals_unbiased_mmd2_by_explicit_sums():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(7, 3, generator=gen, dtype=torch.float64) + 0.3
    m, d = x.shape

    def k(a, b):
        return (float(a @ b) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (xx + yy) / (m * (m - 1)) - 2 * xy / m**2
    # A subset of every row is a permutation, which leaves the estimate unchanged.
    mean, std = kid(x, y, subsets=3, subset_size=100, generator=gen)
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_near_zero_for_two_draws_of_one_distribution_and_positive_when_shifted():
    gen = torch.Generator().manual_seed(6)
    a = torch.randn(2000, 16, generator=gen)
    b = torch.randn(2000, 16, generator=gen)
    mean, std = kid(a, b, subsets=50, subset_size=500, generator=gen)
    assert std > 0 and abs(mean) < 3 * std
    shifted = b + 0.5
    mean_s, std_s = kid(a, shifted, subsets=50, subset_size=500, generator=gen)
    assert mean_s > 10 * std_s and mean_s > 100 * abs(mean)


def test_kid_is_reproducible_with_a_seeded_generator():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(7))
    y = x + 0.1
    runs = [kid(x, y, 10, 100, torch.Generator().manual_seed(8)) for _ in range(2)]
    assert runs[0] == runs[1]
