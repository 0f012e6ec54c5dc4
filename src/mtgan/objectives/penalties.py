"""Gradient penalties on the discriminator (critic), computed per task.

``critic`` maps a batch of shape (K, B, *shape) to logits (K, B): K tasks, B samples each.
Both penalties differentiate the summed logits w.r.t. the inputs, which yields every sample's
own input gradient only if the critic treats samples independently (no batch norm, no
minibatch statistics), as WGAN-GP and R1 already require. The gradient is built with
create_graph=True so the returned penalty can be backpropagated into the critic's parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Critic = Callable[[Tensor], Tensor]


def _input_grad(critic: Critic, x: Tensor) -> Tensor:
    """d critic(x) / dx per sample, flattened: x (K, B, *shape) -> (K, B, D)."""
    logits = critic(x)
    if logits.shape != x.shape[:2]:
        raise ValueError(
            f"critic must return logits of shape {tuple(x.shape[:2])}, got {tuple(logits.shape)}"
        )
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.flatten(start_dim=2)


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    eps: Tensor | None = None,
) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017), one value per task: (K, B, *shape) -> (K,).

    x̂ = ε·real + (1 - ε)·fake with ε ~ U[0, 1] per sample (drawn from ``generator``, or
    given as ``eps`` of shape (K, B, 1, ...));
    returns mean over B of (‖∇x̂ critic(x̂)‖₂ - 1)². The caller multiplies by λ (usually 10).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    # Detach so the penalty never reaches G or the caller's graph; x_hat is a fresh leaf.
    real, fake = real.detach(), fake.detach()
    if eps is None:
        eps_shape = real.shape[:2] + (1,) * (real.dim() - 2)
        eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
    # vector_norm's backward is defined as 0 at a zero gradient, where sqrt(sum sq) gives NaN.
    norm = torch.linalg.vector_norm(_input_grad(critic, x_hat), dim=2)
    return (norm - 1.0).square().mean(dim=1)


def r1_penalty(critic: Critic, real: Tensor) -> Tensor:
    """R1 penalty (Mescheder et al. 2018) on real data, per task: (K, B, *shape) -> (K,).

    Returns mean over B of ‖∇x critic(x)‖₂²; the caller multiplies by γ/2.
    """
    x = real.detach().requires_grad_(True)  # a new leaf: the caller's tensor is untouched
    return _input_grad(critic, x).square().sum(dim=2).mean(dim=1)
