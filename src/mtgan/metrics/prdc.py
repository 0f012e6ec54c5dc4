"""Precision, recall, density and coverage (Naeem et al. 2020) of fake against real features.

Same definitions and strict ``<`` comparisons as the reference ``prdc`` package (clovaai), which
is not used because it pulls in scikit-learn and computes full numpy distance matrices; this is
batched torch that runs on the features' device and keeps memory at chunk × N distances, so
10,000 × 10,000 fits easily.

With r_i the distance from real i to its k-th nearest other real, s_j likewise within fakes,
and d(i, j) the distance from real i to fake j:
- precision = fraction of fakes j with d(i, j) < r_i for some real i;
- recall    = fraction of reals i with d(i, j) < s_j for some fake j;
- density   = (1 / (k M)) Σ_j Σ_i 1[d(i, j) < r_i] (can exceed 1);
- coverage  = fraction of reals i with min_j d(i, j) < r_i.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _kth_neighbour_radii(x: Tensor, k: int, chunk: int) -> Tensor:
    """Distance (N,) from each row of x (N, D) to its k-th nearest other row.

    The row itself sits at distance 0 and is the 1st smallest, so this is the (k+1)-th smallest
    entry of its distance row, as in prdc's ``compute_nearest_neighbour_distances``.
    """
    # topk of a few smallest is several times faster than kthvalue on long rows.
    radii = [
        torch.cdist(part, x).topk(k + 1, dim=1, largest=False).values[:, k]
        for part in x.split(chunk)
    ]
    return torch.cat(radii)


def prdc(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 2048) -> dict[str, float]:
    """Precision, recall, density, coverage of fake (M, D) against real (N, D), k-NN balls.

    Distances are Euclidean in float64. Returns {"precision", "recall", "density",
    "coverage"} as Python floats.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake must be (N, D) and (M, D), got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    n, m = real.shape[0], fake.shape[0]
    if not 1 <= k < min(n, m):
        raise ValueError(f"k must be in [1, min(N, M) - 1] = [1, {min(n, m) - 1}], got {k}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    x = real.detach().to(torch.float64)
    y = fake.detach().to(torch.float64)
    real_radii = _kth_neighbour_radii(x, k, chunk)  # (N,)
    fake_radii = _kth_neighbour_radii(y, k, chunk)  # (M,)

    # One pass over chunks of fakes; per-real quantities are reduced across chunks.
    fake_in_real_ball = []  # per fake: inside some real ball (precision)
    real_balls_hit = []  # per fake: number of real balls containing it (density)
    real_in_fake_ball = torch.zeros(n, dtype=torch.bool, device=x.device)  # recall
    nearest_fake = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)
    for part, part_radii in zip(y.split(chunk), fake_radii.split(chunk)):
        dist = torch.cdist(part, x)  # (c, N)
        inside_real = dist < real_radii[None, :]
        fake_in_real_ball.append(inside_real.any(dim=1))
        real_balls_hit.append(inside_real.sum(dim=1))
        real_in_fake_ball |= (dist < part_radii[:, None]).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, dist.min(dim=0).values)

    return {
        "precision": torch.cat(fake_in_real_ball).double().mean().item(),
        "recall": real_in_fake_ball.double().mean().item(),
        "density": torch.cat(real_balls_hit).double().sum().item() / (k * m),
        "coverage": (nearest_fake < real_radii).double().mean().item(),
    }
