"""Adversarial losses: textbook values, finiteness at extreme logits, saturation, registry."""

import pytest
import torch

from mtgan.objectives import ADVERSARIAL, get_adversarial

NAMES = ["minimax", "nonsaturating", "hinge", "wasserstein", "lsgan"]


def _naive(name: str, r: torch.Tensor, f: torch.Tensor):
    """Textbook forms with D = sigmoid(logit), written directly (unstable, fine in float64)."""
    d_r, d_f = torch.sigmoid(r), torch.sigmoid(f)
    if name == "minimax":
        return -torch.log(d_r), -torch.log(1 - d_f), torch.log(1 - d_f)
    if name == "nonsaturating":
        return -torch.log(d_r), -torch.log(1 - d_f), -torch.log(d_f)
    if name == "hinge":
        return torch.clamp(1 - r, min=0), torch.clamp(1 + f, min=0), -f
    if name == "wasserstein":
        return -r, f, -f
    if name == "lsgan":
        return 0.5 * (r - 1) ** 2, 0.5 * f**2, 0.5 * (f - 1) ** 2
    raise AssertionError(name)


@pytest.mark.parametrize("name", NAMES)
def test_matches_textbook_formula(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(4, 64, generator=gen, dtype=torch.float64) * 3
    f = torch.randn(4, 64, generator=gen, dtype=torch.float64) * 3
    loss = get_adversarial(name)
    want = _naive(name, r, f)
    got = (loss.d_real(r), loss.d_fake(f), loss.g(f))
    for g_, w_ in zip(got, want, strict=True):
        assert g_.shape == r.shape  # elementwise: the caller averages
        torch.testing.assert_close(g_, w_, rtol=0, atol=1e-6)


# lsgan is quadratic: ½(1e30)² is not representable in float32 at all, so that is overflow of
# the true value, not instability; it is checked on the smaller extremes only.
EXTREME = [1e4, -1e4, 88.0, -88.0, 1e30, -1e30, 0.0]
EXTREME_QUADRATIC = [1e4, -1e4, 88.0, -88.0, 0.0]


@pytest.mark.parametrize("name", NAMES)
def test_finite_loss_and_grad_at_extreme_logits(name: str) -> None:
    values = EXTREME_QUADRATIC if name == "lsgan" else EXTREME
    loss = get_adversarial(name)
    for method in (loss.d_real, loss.d_fake, loss.g):
        x = torch.tensor(values, dtype=torch.float32, requires_grad=True)
        out = method(x)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(out).all(), (method.__name__, out)
        assert torch.isfinite(grad).all(), (method.__name__, grad)


def test_nonsaturating_keeps_gradient_where_minimax_vanishes() -> None:
    # D confidently rejects the fakes: D(G(z)) = sigmoid(-20) ≈ 2e-9.
    f = torch.full((8,), -20.0, requires_grad=True)
    (g_ns,) = torch.autograd.grad(get_adversarial("nonsaturating").g(f).sum(), f)
    (g_mm,) = torch.autograd.grad(get_adversarial("minimax").g(f).sum(), f)
    assert (g_ns.abs() > 0.99).all()  # -sigmoid(-f) ≈ -1
    assert (g_mm.abs() < 1e-8).all()  # -sigmoid(f) ≈ 0
    # Both push f upwards (gradient descent on G increases the fake logit).
    assert (g_ns < 0).all() and (g_mm < 0).all()


def test_registry_lists_all_five() -> None:
    assert sorted(ADVERSARIAL) == sorted(NAMES)
    for name, loss in ADVERSARIAL.items():
        assert loss.name == name
        assert get_adversarial(name) is loss


def test_unknown_name_raises_with_options() -> None:
    with pytest.raises(KeyError) as info:
        get_adversarial("wgan")
    message = str(info.value)
    assert "'wgan'" in message
    for name in NAMES:
        assert name in message
