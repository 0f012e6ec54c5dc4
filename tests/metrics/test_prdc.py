import numpy as np
import pytest
import torch

from mtgan.metrics.prdc import prdc


def _prdc_reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The clovaai prdc formulas on full numpy distance matrices."""

    def radii(x):
        dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(dist, axis=1)[:, k]  # column 0 is the point itself

    r, s = radii(real), radii(fake)
    d = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # (N, M)
    return {
        "precision": (d < r[:, None]).any(axis=0).mean(),
        "recall": (d < s[None, :]).any(axis=1).mean(),
        "density": (1 / k) * (d < r[:, None]).sum(axis=0).mean(),
        "coverage": (d.min(axis=1) < r).mean(),
    }


def test_fakes_exactly_on_the_reals_have_full_precision_recall_coverage():
    real = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    out = prdc(real, real.clone(), k=5)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0


def test_fakes_far_from_every_real_score_zero():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(200, 8, generator=gen)
    fake = torch.randn(150, 8, generator=gen) + 100.0
    out = prdc(real, fake, k=5)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_fakes_on_a_subset_of_reals_cover_exactly_that_fraction():
    # Two far-apart clusters of reals; the fakes copy the 30 reals of the first cluster, so the
    # 70 reals of the second have radii ~1 and no fake within ~140 of them.
    gen = torch.Generator().manual_seed(2)
    near = torch.rand(30, 2, generator=gen)
    far = torch.rand(70, 2, generator=gen) + 100.0
    real = torch.cat([near, far])
    out = prdc(real, near.clone(), k=5)
    assert out["coverage"] == pytest.approx(0.3, abs=1e-12)
    assert out["recall"] == pytest.approx(0.3, abs=1e-12)
    assert out["precision"] == 1.0


def test_hand_computed_one_dimensional_example_with_k1():
    # reals 0, 1, 3, 6 -> radii (nearest other real) 1, 1, 2, 3
    # fakes 0.5, 2.9, 10, 10.4 -> radii (nearest other fake) 2.4, 2.4, 0.4, 0.4
    # fake 0.5 is inside the balls of reals 0 and 1 (0.5 < 1); fake 2.9 inside real 3's
    # (0.1 < 2); fakes 10 and 10.4 inside none (4 > 3 from real 6).
    #   precision = 2/4 = 0.5, density = (2 + 1 + 0 + 0) / (1 * 4) = 0.75
    # reals 0, 1 are within 0.5 < 2.4 of fake 0.5; real 3 within 0.1 < 2.4 of fake 2.9;
    # real 6 is 3.1 > 2.4 from fake 2.9 and 4 > 0.4 from fake 10.
    #   recall = 3/4 = 0.75
    # nearest fake: real 0 -> 0.5 < 1, real 1 -> 0.5 < 1, real 3 -> 0.1 < 2, real 6 -> 3.1 > 3.
    #   coverage = 3/4 = 0.75
    real = torch.tensor([[0.0], [1.0], [3.0], [6.0]], dtype=torch.float64)
    fake = torch.tensor([[0.5], [2.9], [10.0], [10.4]], dtype=torch.float64)
    out = prdc(real, fake, k=1)
    assert out == pytest.approx(
        {"precision": 0.5, "recall": 0.75, "density": 0.75, "coverage": 0.75}
    )


def test_a_fake_on_a_ball_boundary_is_outside_like_the_prdc_package():
    # reals 0, 2 have radius 2 (k=1); fake 4 is exactly 2 from real 2, fake 10 is far.
    real = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    fake = torch.tensor([[4.0], [10.0]], dtype=torch.float64)
    out = prdc(real, fake, k=1)
    assert out["precision"] == 0.0 and out["density"] == 0.0 and out["coverage"] == 0.0


def test_chunked_result_matches_the_reference_formulas():
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(150, 4, generator=gen, dtype=torch.float64)
    fake = torch.randn(120, 4, generator=gen, dtype=torch.float64) * 1.3 + 0.2
    expected = _prdc_reference(real.numpy(), fake.numpy(), k=3)
    for chunk in (7, 50, 4096):
        assert prdc(real, fake, k=3, chunk=chunk) == pytest.approx(expected, abs=1e-12)


def test_k_must_leave_a_neighbour_in_each_set():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="k must be"):
        prdc(x, x, k=5)
