import pytest
import torch

from mtgan.data.domains import DOMAINS, apply_domain
from mtgan.errors import DataError


def _img() -> torch.Tensor:
    """One 1x4x4 image with a single lit pixel at (1, 1), and value 0.5 at (3, 0)."""
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    x[0, 0, 3, 0] = 0.5
    return x


def test_registry_names():
    assert set(DOMAINS) == {"identity", "edges", "negative", "rot90", "rot180", "rot270"}


def test_identity_returns_input():
    x = _img()
    assert torch.equal(DOMAINS["identity"](x), x)


def test_edges_is_3x3_dilation_minus_image():
    out = DOMAINS["edges"](_img())[0, 0]
    expected = torch.tensor(
        [
            [1.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 1.0, 0.0],
            [1.0, 1.0, 1.0, 0.0],
            [0.0, 0.5, 0.0, 0.0],
        ]
    )
    # (2, 0) and (2, 1) see both the 1.0 pixel and the 0.5 pixel: the max wins.
    # (3, 0) is itself 0.5, so dilation 0.5 minus 0.5 is 0.
    assert torch.equal(out, expected)


def test_negative_is_one_minus_image():
    x = _img()
    assert torch.equal(DOMAINS["negative"](x), 1.0 - x)


def test_rotations_move_the_lit_pixel_counter_clockwise():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 2] = 1.0  # top right
    lit = {k: DOMAINS[k](x)[0, 0].nonzero().tolist() for k in ("rot90", "rot180", "rot270")}
    assert lit == {"rot90": [[0, 0]], "rot180": [[2, 0]], "rot270": [[2, 2]]}
    assert torch.equal(DOMAINS["rot90"](DOMAINS["rot270"](x)), x)


def test_domains_are_vectorised_over_batch_and_channels():
    x = torch.rand(5, 3, 6, 6)
    for name, fn in DOMAINS.items():
        out = fn(x)
        assert out.shape == x.shape, name
        assert out.min() >= 0 and out.max() <= 1, name
        assert torch.equal(out[2], fn(x[2:3])[0]), name


def test_points_allow_only_identity():
    pts = torch.randn(10, 2)
    assert torch.equal(apply_domain("identity", pts, "points"), pts)
    with pytest.raises(DataError, match="identity"):
        apply_domain("edges", pts, "points")
