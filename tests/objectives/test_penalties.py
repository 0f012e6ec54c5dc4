"""Gradient penalties: exact values on linear critics, gradients into the critic, per task."""

import torch

from mtgan.objectives import gradient_penalty, r1_penalty

K, B, SHAPE = 3, 5, (2, 4, 4)


def _weights(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # Different scale per task so per-task results must differ: norms well below and above 1.
    scale = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64).view(K, 1, 1, 1)
    w = torch.randn(K, *SHAPE, generator=gen, dtype=torch.float64)
    return (w / w.flatten(1).norm(dim=1).view(K, 1, 1, 1) * scale).requires_grad_(True)


def _linear_critic(w: torch.Tensor):
    """critic(x)[k, b] = <x[k, b], w[k]>, so ∇x critic = w[k] for every sample of task k."""
    return lambda x: (x * w.unsqueeze(1)).flatten(2).sum(dim=2)


def _data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(K, B, *SHAPE, generator=gen, dtype=torch.float64)
    fake = torch.randn(K, B, *SHAPE, generator=gen, dtype=torch.float64)
    return real, fake


def test_r1_linear_critic_exact_and_grad() -> None:
    w = _weights()
    real, _ = _data()
    r1 = r1_penalty(_linear_critic(w), real)
    sq = w.detach().flatten(1).square().sum(dim=1)
    assert r1.shape == (K,)
    assert not real.requires_grad  # the caller's tensor is left as it was
    torch.testing.assert_close(r1, sq, rtol=1e-12, atol=1e-12)
    r1.sum().backward()  # needs create_graph=True inside r1_penalty
    torch.testing.assert_close(w.grad, 2 * w.detach(), rtol=1e-12, atol=1e-12)


def test_gp_linear_critic_exact_and_grad() -> None:
    w = _weights()
    real, fake = _data()
    gp = gradient_penalty(_linear_critic(w), real, fake, generator=torch.Generator().manual_seed(2))
    norm = w.detach().flatten(1).norm(dim=1)
    assert gp.shape == (K,)
    torch.testing.assert_close(gp, (norm - 1) ** 2, rtol=1e-12, atol=1e-12)
    assert gp[1] < 1e-12 < gp[0] and gp[0] != gp[2]  # tasks kept separate
    gp.sum().backward()
    want = 2 * (norm - 1).view(K, 1, 1, 1) * w.detach() / norm.view(K, 1, 1, 1)
    torch.testing.assert_close(w.grad, want, rtol=1e-10, atol=1e-12)


def test_gp_interpolates_with_given_generator() -> None:
    # Quadratic critic: ∇x = 2 x w, so the value depends on where x̂ lies between real and fake.
    w = _weights().detach()
    real, fake = _data()

    def critic(x: torch.Tensor) -> torch.Tensor:
        return (x.square() * w.unsqueeze(1)).flatten(2).sum(dim=2)

    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    eps = torch.rand(K, B, 1, 1, 1, generator=torch.Generator().manual_seed(3), dtype=real.dtype)
    x_hat = eps * real + (1 - eps) * fake
    norm = (2 * x_hat * w.unsqueeze(1)).flatten(2).norm(dim=2)
    torch.testing.assert_close(gp, ((norm - 1) ** 2).mean(dim=1), rtol=1e-12, atol=1e-12)
    other = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(gp, other)


def test_inputs_not_mutated_and_no_grad_to_inputs() -> None:
    w = _weights()
    real, fake = _data()
    real.requires_grad_(True)  # e.g. fake came from a generator graph
    fake_in = fake.clone().requires_grad_(True)
    fake_graph = fake_in * 1.0
    gp = gradient_penalty(_linear_critic(w), real, fake_graph)
    r1 = r1_penalty(_linear_critic(w), real)
    (gp.sum() + r1.sum()).backward()
    assert real.grad is None and fake_in.grad is None  # penalties never reach G or the data
    assert w.grad is not None


def test_gp_zero_gradient_is_finite() -> None:
    w = torch.zeros(K, *SHAPE, dtype=torch.float64, requires_grad=True)
    real, fake = _data()
    gp = gradient_penalty(_linear_critic(w), real, fake)
    gp.sum().backward()
    torch.testing.assert_close(gp, torch.ones(K, dtype=torch.float64))
    assert torch.isfinite(w.grad).all()
