"""The bundled 5,000-digit MNIST subset (see assets/README.md for provenance and licence)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch import Tensor

ASSET = "mnist5k.npz"


def load_mnist5k() -> tuple[Tensor, Tensor]:
    """Return (images (5000, 1, 28, 28) float32 in [0, 1], labels (5000,) int64 digits 0..9)."""
    ref = resources.files("mtgan.data") / "assets" / ASSET
    with ref.open("rb") as fh, np.load(fh) as archive:
        x = archive["x"]
        y = archive["y"]
    images = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return images, torch.from_numpy(y.astype(np.int64))
