"""Derived image domains: fixed, vectorised transforms of a whole batch of images in [0, 1].

Each maps (N, C, H, W) -> (N, C, H, W) (rotations by 90/270 degrees swap H and W, so they only
keep the shape for square images). Outputs stay in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtgan.errors import DataError


def identity(img: Tensor) -> Tensor:
    """The images unchanged."""
    return img


def edges(img: Tensor) -> Tensor:
    """Outer edges: 3x3 dilation (max-pool, stride 1, padding 1) minus the image, in [0, 1]."""
    return F.max_pool2d(img, kernel_size=3, stride=1, padding=1) - img


def negative(img: Tensor) -> Tensor:
    """Photographic negative, 1 - img."""
    return 1.0 - img


def rot90(img: Tensor) -> Tensor:
    """Rotate 90 degrees counter-clockwise in the (H, W) plane."""
    return torch.rot90(img, 1, dims=(-2, -1))


def rot180(img: Tensor) -> Tensor:
    """Rotate 180 degrees in the (H, W) plane."""
    return torch.rot90(img, 2, dims=(-2, -1))


def rot270(img: Tensor) -> Tensor:
    """Rotate 270 degrees counter-clockwise in the (H, W) plane."""
    return torch.rot90(img, 3, dims=(-2, -1))


DOMAINS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": identity,
    "edges": edges,
    "negative": negative,
    "rot90": rot90,
    "rot180": rot180,
    "rot270": rot270,
}


def apply_domain(name: str, x: Tensor, kind: str = "image") -> Tensor:
    """Apply the named domain to x; for points (kind "points") only identity is defined."""
    if name not in DOMAINS:
        raise DataError(f"unknown domain {name!r}; expected one of {sorted(DOMAINS)}")
    if kind == "points":
        if name != "identity":
            raise DataError(f"domain {name!r} needs images; 2D point data only allows 'identity'")
        return x
    return DOMAINS[name](x)
