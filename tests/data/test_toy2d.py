import math

import pytest
import torch

from mtgan.data.toy2d import mixture_modes, mixture_sigma, sample_mixture
from mtgan.errors import DataError


def test_ring8_has_8_distinct_modes_on_the_unit_circle():
    modes = mixture_modes("ring8")
    assert modes.shape == (8, 2)
    assert torch.allclose(modes.norm(dim=1), torch.ones(8), atol=1e-6)
    # Pairwise distances between distinct modes are at least the chord 2 sin(pi/8).
    dist = torch.cdist(modes, modes) + torch.eye(8) * 10
    assert dist.min() > 2 * math.sin(math.pi / 8) - 1e-5
    assert torch.allclose(modes[2], torch.tensor([0.0, 1.0]), atol=1e-6)
    assert mixture_sigma("ring8") == 0.01


def test_grid25_has_25_modes_on_the_even_integer_grid():
    modes = mixture_modes("grid25")
    assert modes.shape == (25, 2)
    assert len({tuple(m.tolist()) for m in modes}) == 25
    assert set(modes.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert mixture_sigma("grid25") == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_lie_within_5_sigma_of_their_labelled_mode(name):
    gen = torch.Generator().manual_seed(0)
    points, labels = sample_mixture(name, 20_000, gen)
    assert points.shape == (20_000, 2) and points.dtype == torch.float32
    assert labels.dtype == torch.int64
    modes = mixture_modes(name)
    err = (points - modes[labels]).norm(dim=1)
    assert err.max() < 5 * mixture_sigma(name) * 1.5  # radius of a 2D Gaussian: allow sqrt(2)
    # Every mode is used and roughly uniformly.
    counts = torch.bincount(labels, minlength=len(modes)).float()
    assert counts.min() > 0.8 * counts.mean()


def test_same_generator_seed_gives_same_points():
    a = sample_mixture("ring8", 100, torch.Generator().manual_seed(3))
    b = sample_mixture("ring8", 100, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_unknown_mixture_raises_data_error():
    with pytest.raises(DataError, match="ring8"):
        mixture_modes("spiral")
