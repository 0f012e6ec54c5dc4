"""Mode coverage of 2D samples by the PacGAN protocol (Lin et al. 2018, code fjxmlzn/PacGAN).

Each sample is assigned to its nearest mode (Euclidean; the modes are isotropic with one σ).
- hq: percentage of samples within 3σ of their nearest mode ("high-quality").
- modes: number of modes that are nearest to at least one high-quality sample.
- rkl: KL(p̂ ‖ uniform over the M modes) = Σ_m p̂_m log(M p̂_m), zero bins contributing 0.

Which samples enter p̂: only the high-quality ones. PacGAN's ``MetricLogger``
(synthetic_data_experiments/PacGAN/pacgan/extensions.py) builds one histogram,
``detail_of_coverage``, incrementing the nearest mode only when the σ-scaled distance is below
``dis_thre = 3``; mode coverage, the HQ percentage and the logged "entropy of coverage" all come
from it, and KL to uniform is log M minus that entropy. A perfect sampler with 2,500 samples
scores ≈ (M − 1) / (2 · 2,500 · 0.989): 0.0014 (ring) and 0.0049 (grid). With no high-quality
sample p̂ is undefined; rkl is then reported as +inf (nothing lands on any mode).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mtgan.data.toy2d import mixture_modes, mixture_sigma


def mode_stats(samples: Tensor, modes: Tensor, sigma: float) -> dict:
    """PacGAN statistics of samples (N, 2) against mode centres (M, 2) of common std sigma.

    Returns {"modes": int, "hq": percent 0..100, "rkl": float, "n": N, "sigma": sigma,
    "threshold": 3 sigma}.
    """
    if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(
            f"samples and modes must be (N, 2) and (M, 2), got "
            f"{tuple(samples.shape)} and {tuple(modes.shape)}"
        )
    if samples.shape[0] == 0:
        raise ValueError("mode_stats needs at least one sample")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    x = samples.detach().to(torch.float64)
    centres = modes.detach().to(device=x.device, dtype=torch.float64)
    threshold = 3.0 * sigma
    n_modes = centres.shape[0]

    nearest, hq = assign_modes(x, centres, sigma)
    counts = torch.bincount(nearest[hq], minlength=n_modes).to(torch.float64)  # (M,)
    n_hq = counts.sum()
    if n_hq > 0:
        p = counts / n_hq
        # xlogy gives 0 for empty bins, the 0 log 0 = 0 convention.
        rkl = torch.special.xlogy(p, p * n_modes).sum().item()
    else:
        rkl = math.inf
    return {
        "modes": int((counts > 0).sum().item()),
        "hq": 100.0 * n_hq.item() / x.shape[0],
        "rkl": rkl,
        "n": int(x.shape[0]),
        "sigma": float(sigma),
        "threshold": threshold,
    }


def assign_modes(samples: Tensor, modes: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Each sample's nearest mode (N,) int64 and whether it is high quality, within 3σ of
    that mode (N,) bool: the assignment every statistic here is built on."""
    x = samples.detach().to(torch.float64)
    centres = modes.detach().to(device=x.device, dtype=torch.float64)
    dist, nearest = torch.cdist(x, centres).min(dim=1)
    return nearest, dist < 3.0 * sigma


def hq_share(samples: Tensor, modes: Tensor, sigma: float, chosen: list[int]) -> float:
    """The share of samples (N, 2)'s high-quality ones whose nearest mode is one of `chosen`
    (indices into modes (M, 2)); nan when no sample is high quality (the share is undefined)."""
    nearest, hq = assign_modes(samples, modes, sigma)
    if not bool(hq.any()):
        return math.nan
    inside = torch.isin(nearest[hq], torch.tensor(chosen, dtype=torch.long, device=hq.device))
    return float(inside.double().mean())


def mode_stats_for(name: str, samples: Tensor) -> dict:
    """mode_stats of samples (N, 2) against the named mixture ("ring8" or "grid25")."""
    return mode_stats(samples, mixture_modes(name), mixture_sigma(name))
