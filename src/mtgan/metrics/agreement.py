"""Pixel agreement ratio between paired images of two domains (CoGAN, Liu & Tuzel 2016).

For the same latent z, the first generator's image is mapped into the second domain with the
known transform (e.g. edges or negative), both images are binarised and the fraction of equal
pixels is averaged over all pairs. A jointly trained pair that learnt the correspondence scores
near 1; unrelated binary images score about 0.5 (less for sparse images).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtgan.data.domains import DOMAINS


def pixel_agreement(first: Tensor, second: Tensor, transform: str, threshold: float = 0.5) -> float:
    """Mean fraction of equal binarised pixels of transform(first) and second, both (N, C, H, W).

    Images are in [0, 1]; a pixel is "on" when its value is > threshold. transform is a name in
    mtgan.data.domains.DOMAINS. Every image has the same pixel count, so the mean over pairs of
    per-pair ratios is the mean over all pixels.
    """
    if transform not in DOMAINS:
        raise ValueError(f"unknown transform {transform!r}; expected one of {sorted(DOMAINS)}")
    if first.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(first.shape)}")
    mapped = DOMAINS[transform](first.detach())
    if mapped.shape != second.shape:
        raise ValueError(
            f"transformed first {tuple(mapped.shape)} and second {tuple(second.shape)} differ"
        )
    if mapped.numel() == 0:
        raise ValueError("pixel_agreement needs at least one pixel")
    equal = (mapped > threshold) == (second.detach() > threshold)
    return equal.to(torch.float64).mean().item()
