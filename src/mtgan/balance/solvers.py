"""Exact solvers for the gradient balancers' small problems over the simplex (m objectives).

Both work in numpy on the m × m Gram matrix: m is a handful to a few dozen, and torch's
per-operation overhead on such tiny arrays cost milliseconds a step, as did scipy's
general-purpose SLSQP (its Python-side set-up alone is ~0.5 ms a call). Neither is in a library
we could take: MGDA and CAGrad implementations (LibMTL, the authors' code) call Frank–Wolfe or
SLSQP as we did before.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtgan.balance.weighting import EPS


def min_norm_weights(gram: Tensor, iters: int = 100) -> Tensor:
    """Weights on the simplex minimising ‖Σ w_i g_i‖² given the Gram matrix (MGDA's subproblem):
    the closed form for two gradients; for more, Wolfe's (1976) min-norm-point algorithm, exact
    after finitely many steps (at most a few per objective), rather than MGDA's Frank–Wolfe,
    which zigzags between faces and stalls a few 1e-3 short of the minimum when it lies on an
    edge (tests/balance/test_gradients.py)."""
    m = gram.shape[0]
    if m == 2:
        diff = gram[0, 0] - 2 * gram[0, 1] + gram[1, 1]
        if diff <= EPS:
            return torch.full((2,), 0.5, dtype=gram.dtype)
        a = ((gram[1, 1] - gram[0, 1]) / diff).clamp(0.0, 1.0)
        return torch.stack([a, 1 - a])
    g = gram.double().numpy()
    if not np.any(g - np.diag(np.diag(g))):  # orthogonal gradients: w_i ∝ 1 / ‖g_i‖²
        d = np.diag(g)
        w = 1.0 / d if np.all(d > EPS) else (d <= EPS).astype(float)  # any zero one: norm 0
        return torch.from_numpy(w / w.sum()).to(gram.dtype)
    return torch.from_numpy(min_norm_point(g, iters)).to(gram.dtype)


def min_norm_point(g: np.ndarray, iters: int = 100) -> np.ndarray:
    """Wolfe's algorithm on the Gram matrix g (m, m): the simplex weights of the min-norm point
    of the points' convex hull."""
    m = g.shape[0]
    scale = max(float(np.abs(np.diag(g)).max()), EPS)
    corral = [int(np.argmin(np.diag(g)))]  # the points whose hull holds the current x
    lam = np.ones(1)
    for _ in range(iters):
        dots = g[:, corral] @ lam  # g_j · x for every j
        j = int(np.argmin(dots))
        if j in corral or dots[j] >= lam @ dots[corral] - 1e-12 * scale:
            break  # no point lies beyond x's supporting plane: x is the min-norm point
        corral.append(j)
        lam = np.append(lam, 0.0)
        for _ in range(len(corral)):  # minor cycle: move to the affine minimum, stay inside
            mu = _affine_min_norm(g[np.ix_(corral, corral)])
            if np.all(mu > 0):
                lam = mu
                break
            out = (mu <= 0) & (lam > mu)
            theta = float(np.min(lam[out] / (lam[out] - mu[out]))) if out.any() else 0.0
            lam = lam + theta * (mu - lam)
            keep = lam > 1e-15  # λ stays a convex combination: some entry is kept
            corral = [c for c, k in zip(corral, keep) if k]
            lam = lam[keep] / lam[keep].sum()
    w = np.zeros(m)
    w[corral] = lam
    return w


def _affine_min_norm(g: np.ndarray) -> np.ndarray:
    """Weights μ (Σμ = 1, any sign) of the min-norm point of the points' affine hull, from
    their Gram matrix: the KKT system [[G, 1], [1ᵀ, 0]] [μ, ν] = [0, 1] (least squares where
    the points are affinely dependent)."""
    n = g.shape[0]
    kkt = np.ones((n + 1, n + 1))
    kkt[:n, :n], kkt[n, n] = g, 0.0
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    try:
        mu = np.linalg.solve(kkt, rhs)[:n]
        if np.all(np.isfinite(mu)) and abs(mu.sum() - 1.0) < 1e-9:
            return mu
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n]


def conflict_averse_weights(gram: np.ndarray, s: float, tries: int = 8) -> np.ndarray | None:
    """CAGrad's subproblem: w on the simplex minimising f(w) = wᵀb + s·√(wᵀGw), b = G·1/m
    (g_w·g0 + s‖g_w‖), exactly; None where the method below cannot certify its answer.

    Where ‖g_w‖ = N > 0 at the optimum, w also solves the quadratic program
    min wᵀb + (t/2)·wᵀGw with t = s/N (same KKT conditions), which is the min-norm point of
    the points g_i + g0/t: Wolfe's algorithm gives its support S for a guess of t. On S the
    KKT system b_S + t·G_SS w_S = λ1, Σw = 1, ‖g_w‖ = s/t has a closed form: with
    p = G_SS⁻¹1, q = G_SS⁻¹b_S, a = 1ᵀp, β = 1ᵀq, γ = b_Sᵀq, w_S = (λp − q)/√Δ,
    λ = (β + √Δ)/a, Δ = β² − a(γ − s²). The answer is accepted when its Frank–Wolfe gap
    (wᵀ∇f − min_i ∇f_i, an upper bound on f(w) − min f) is below 1e-8 of the
    problem's scale (SLSQP stops at 1e-6); otherwise t is
    updated to s/N of the QP's solution and the support guessed again."""
    b = gram.mean(axis=1)  # G·(1/m)
    g0_sq = float(b.mean())  # ‖g0‖²
    scale = max(float(np.abs(np.diag(gram)).max()), EPS)
    support = np.ones(len(b), dtype=bool)  # first guess: every objective (the usual answer)
    u = np.sqrt(max(g0_sq, EPS)) / max(s, EPS)  # 1/t for N ≈ ‖g0‖
    for _ in range(tries):
        w = _face_solution(gram, b, s, support)
        if w is not None:
            n = float(np.sqrt(max(w @ gram @ w, 0.0)))
            if n > EPS * np.sqrt(scale):
                grad = b + (s / n) * (gram @ w)
                if w @ grad - grad.min() <= 1e-8 * (scale + s * np.sqrt(scale)):
                    return w
                u = n / s
        qp = min_norm_point(gram + u * (b[:, None] + b[None, :]) + u * u * g0_sq)
        support = qp > 0
        n = float(np.sqrt(max(qp @ gram @ qp, 0.0)))
        if n <= EPS * np.sqrt(scale):
            return None
        u = n / s
    return None


def _face_solution(gram: np.ndarray, b: np.ndarray, s: float, support: np.ndarray):
    """The closed-form stationary point of CAGrad's subproblem on the face `support`, or None
    where it has none with non-negative weights (there the minimum lies on a smaller face)."""
    every = support.all()  # the usual case: no copies
    g = gram if every else gram[np.ix_(support, support)]
    bs = b if every else b[support]
    rhs = np.stack([np.ones(len(bs)), bs], axis=1)
    try:
        p, q = np.linalg.solve(g, rhs).T
    except np.linalg.LinAlgError:
        p, q = np.linalg.lstsq(g, rhs, rcond=None)[0].T
    a, beta, gamma = p.sum(), q.sum(), bs @ q
    disc = beta * beta - a * (gamma - s * s)
    if not (a > 0 and disc > 0 and np.isfinite(disc)):
        return None
    root = np.sqrt(disc)
    ws = ((beta + root) / a * p - q) / root
    if ws.min() < -1e-12:
        return None
    ws = np.maximum(ws, 0.0)
    if every:
        return ws / ws.sum()
    w = np.zeros(len(b))
    w[support] = ws / ws.sum()
    return w
