"""A user's own labelled images, made up here: data and fixtures for the metrics tests (not a
conftest.py: tests elsewhere import the root conftest by name, and a second one would shadow it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

COLOURS = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.3, 0.9]])


def make_shapes(per_class: int, size: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Images (3·per_class, 3, size, size) in [0, 1] of three easily told apart classes: a red
    disc, a green square, a blue diamond, each of random position and size on dark noise;
    labels (N,) 0, 1, 2."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, labels = [], []
    for c in range(3):
        for _ in range(per_class):
            x = torch.rand(3, size, size, generator=gen) * 0.15
            cy, cx = torch.randint(size // 3, size - size // 3, (2,), generator=gen).tolist()
            r = int(torch.randint(size // 6, size // 4 + 1, (1,), generator=gen))
            dy, dx = (yy - cy).abs(), (xx - cx).abs()
            mask = [dy**2 + dx**2 <= r * r, (dy <= r) & (dx <= r), dy + dx <= r][c]
            shade = 0.8 + 0.2 * torch.rand(1, generator=gen)
            x[:, mask] = (COLOURS[c] * shade)[:, None]
            images.append(x)
            labels.append(c)
    return torch.stack(images), torch.tensor(labels)


def write_npz(path: Path, x: Tensor, y: Tensor | None) -> Path:
    """The images as a data.path .npz: uint8 x (N, H, W, C), and labels y if given."""
    arrays = {"x": (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()}
    if y is not None:
        arrays["y"] = y.numpy()
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def shapes() -> tuple[Tensor, Tensor]:
    """3 classes × 40 images, 3×16×16."""
    return make_shapes(40)


@pytest.fixture
def shapes_npz(tmp_path, shapes) -> Path:
    return write_npz(tmp_path / "shapes.npz", *shapes)
