"""2D Gaussian mixtures by the PacGAN protocol (Lin et al., 2018).

ring8: 8 modes evenly spaced on the unit circle, sigma 0.01.
grid25: 25 modes at {-4, -2, 0, 2, 4}^2, sigma 0.05.
Each sample picks its mode uniformly at random.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mtgan.errors import DataError

MIXTURES: tuple[str, ...] = ("ring8", "grid25")
_SIGMA = {"ring8": 0.01, "grid25": 0.05}


def _check(name: str) -> None:
    if name not in _SIGMA:
        raise DataError(f"unknown 2D mixture {name!r}; expected one of {list(MIXTURES)}")


def mixture_modes(name: str) -> Tensor:
    """Mode centres of a mixture, float32 (M, 2): ring8 M=8, grid25 M=25 (row-major in x, y)."""
    _check(name)
    if name == "ring8":
        # 2*pi*k/8 for k = 0..7; linspace(0, 2*pi, 8) would repeat the first mode.
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], dim=1).float()
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def mixture_sigma(name: str) -> float:
    """Standard deviation of every (isotropic) mixture component."""
    _check(name)
    return _SIGMA[name]


def sample_mixture(
    name: str, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Draw n points: (points (n, 2) float32, labels (n,) int64 = index of the mode used)."""
    modes = mixture_modes(name)
    labels = torch.randint(len(modes), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * mixture_sigma(name)
    return modes[labels] + noise, labels
