"""Fréchet distance (FID) and kernel distance (KID) between two sets of feature vectors.

Both work on any (N, D) feature tensor: Inception/classifier features of images, or raw 2D
points. They are hand-written rather than taken from torchmetrics because its FID/KID classes
take images, recompute the real statistics on every call and cannot be fed cached statistics or
arbitrary features such as 2D points; the formulas are a few lines and the tests pin them
against closed forms.

- FID follows pytorch-fid (Heusel et al. 2017): Gaussian fit with the unbiased covariance;
  the trace of the square root of the covariance product comes from symmetric
  eigendecompositions instead of ``scipy.linalg.sqrtm`` (the same value to rounding, several
  times faster on 2,048-d features, and real and exact for singular covariances).
- KID follows Bińkowski et al. 2018 as implemented in torch-fidelity: the unbiased MMD² with
  the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³, averaged over random subsets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

NEGATIVE_TOL = 1e-4  # eigenvalues below −tol·max|λ| mean the input is not a covariance


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


def _psd_sqrt(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A^½, eigenvalues of A) for a symmetric A, from its eigendecomposition; eigenvalues below
    zero (rounding, for a covariance) are clipped to 0."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T, w


def _negative(w: np.ndarray, what: str) -> None:
    """ValueError when eigenvalues w hold a clearly negative one: `what` is not a covariance."""
    scale = max(float(np.abs(w).max(initial=0.0)), np.finfo(np.float64).tiny)
    if w.min(initial=0.0) < -NEGATIVE_TOL * scale:
        raise ValueError(
            f"{what} has eigenvalue {w.min():.3g}: not a covariance (its square root would be "
            "imaginary)"
        )


def _cholesky(a: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor L of a (a = L Lᵀ), None unless a is positive definite."""
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return None


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (Σ1 Σ2)^½ = Σ √λ over the eigenvalues λ of Σ1 Σ2, which a symmetric matrix with the
    same eigenvalues gives in float64: Lᵀ Σ2 L for a Cholesky factor Σ1 = L Lᵀ, or, when
    neither covariance is positive definite (fewer samples than dimensions), Σ1^½ Σ2 Σ1^½ from
    Σ1's eigendecomposition. Faster than a general matrix square root, real by construction,
    and exact for singular covariances."""
    factor, other = _cholesky(sigma1), sigma2
    if factor is None:  # Tr (Σ1 Σ2)^½ = Tr (Σ2 Σ1)^½
        factor, other = _cholesky(sigma2), sigma1
    if factor is None:  # both singular: Σ1^½ (symmetric) is a factor too, Σ1 = Σ1^½ Σ1^½
        factor, w1 = _psd_sqrt(sigma1)
        _negative(w1, "sigma1")
        other = sigma2
    product = factor.T @ other @ factor
    w = np.linalg.eigvalsh((product + product.T) / 2)
    _negative(w, "the covariance product")
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def fid_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) between two Gaussians.

    mu: (D,), sigma: (D, D) (D = 1 may be given as scalars). Tr (Σ1 Σ2)^½ comes from symmetric
    eigendecompositions (`trace_sqrt_product`); it agrees with pytorch-fid's
    ``scipy.linalg.sqrtm`` to rounding and needs no offset for singular covariances (`eps` is
    kept for callers that pass it, and unused). Statistics that are not covariances (a clearly
    negative eigenvalue) raise ValueError.
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
    tr_covmean = trace_sqrt_product(sigma1, sigma2)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
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
