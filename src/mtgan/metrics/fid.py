"""Fréchet distance (FID) and kernel distance (KID) between two sets of feature vectors.

Both work on any (N, D) feature tensor: Inception/classifier features of images, or raw 2D
points. They are hand-written rather than taken from torchmetrics because its FID/KID classes
take images, recompute the real statistics on every call and cannot be fed cached statistics or
arbitrary features such as 2D points; the formulas are a few lines and the tests pin them
against closed forms.

- FID follows pytorch-fid (Heusel et al. 2017): Gaussian fit with the unbiased covariance,
  ``scipy.linalg.sqrtm`` of the covariance product, eps·I added when the product is singular.
- KID follows Bińkowski et al. 2018 as implemented in torch-fidelity: the unbiased MMD² with
  the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³, averaged over random subsets.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg
from torch import Tensor


def _as_2d(features: Tensor, name: str) -> Tensor:
    """(N, D) float64 view of the features; a 1D tensor is read as N scalar features."""
    x = torch.as_tensor(features).detach().to(torch.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    return x


def feature_stats(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), both float64, of features (N, D).

    Matches pytorch-fid (``np.mean(axis=0)``, ``np.cov(rowvar=False)`` with N - 1).
    """
    x = _as_2d(features, "features")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"feature_stats needs at least 2 samples, got {n}")
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # A singular product only warns in scipy and may come back non-finite; the caller retries.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(a)


def fid_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) between two Gaussians.

    mu: (D,), sigma: (D, D) (D = 1 may be given as scalars). As in pytorch-fid: if the square
    root is not finite (singular product), eps·I is added to both covariances; a negligible
    imaginary part from numerical error is dropped, a large one (> 1e-3 on the diagonal)
    raises ValueError.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if sigma1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"sigma must be (D, D) for mu (D,), got {sigma1.shape} and {mu1.shape}")

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            worst = np.max(np.abs(covmean.imag))
            raise ValueError(f"sqrtm of the covariance product has imaginary part {worst:.3g}")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(value)


def fid(real: Tensor, fake: Tensor) -> float:
    """FID between feature sets real (N, D) and fake (M, D)."""
    return fid_from_stats(*feature_stats(real), *feature_stats(fake))


def _mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD² of x (m, D) and y (m, D) with the cubic polynomial kernel, float64 scalar.

    Within-set sums drop the diagonal (k(x_i, x_i)); the cross term keeps all m² pairs, as in
    torch-fidelity's ``mmd2(..., mmd_est='unbiased')``.
    """
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m)


def kid(
    real: Tensor,
    fake: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID between real (N, D) and fake (M, D): (mean, std) of the unbiased MMD² over subsets.

    Each subset draws min(subset_size, N, M) rows of each set without replacement. The std is
    the population std over subsets (numpy's default, as torch-fidelity reports it); it is a
    spread of the subset estimates, not a standard error of the mean.
    """
    x = _as_2d(real, "real")
    y = _as_2d(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: real D={x.shape[1]}, fake D={y.shape[1]}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(f"kid needs subsets of at least 2 samples, got {m}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    # All subsets' indices at once: the first m entries of a random permutation per row.
    device = generator.device if generator is not None else torch.device("cpu")
    idx_x = torch.rand(subsets, x.shape[0], generator=generator, device=device).argsort(dim=1)
    idx_y = torch.rand(subsets, y.shape[0], generator=generator, device=device).argsort(dim=1)
    idx_x = idx_x[:, :m].to(x.device)
    idx_y = idx_y[:, :m].to(y.device)
    # One (m, m) kernel at a time: batching every subset would need subsets × m × D memory.
    scores = torch.stack([_mmd2_unbiased(x[ix], y[iy]) for ix, iy in zip(idx_x, idx_y)])
    return float(scores.mean()), float(scores.std(unbiased=False))
