"""Exact solvers for the gradient balancers' small problems over the simplex (m objectives).

Both work in numpy on the m × m Gram matrix: m is a handful to a few dozen, and torch's
per-operation overhead on such tiny arrays cost milliseconds a step, as did scipy's
general-purpose SLSQP (its Python-side set-up alone is ~0.5 ms a call). Neither is in a library
we could take: MGDA and CAGrad implementations (LibMTL, the authors' code) call Frank–Wolfe or
SLSQP as we did before.
"""

from __future__ import annotations

import math

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


def conflict_averse_weights(
    gram: np.ndarray, s: float, guess: np.ndarray | None = None, tries: int = 8
) -> np.ndarray | None:
    """CAGrad's subproblem: w on the simplex minimising f(w) = wᵀb + s·√(wᵀGw), b = G·1/m
    (g_w·g0 + s‖g_w‖), exactly; None where the method below cannot certify its answer.

    On the face of the simplex spanned by a support S, the stationary point has a closed form
    (the KKT system b_S + t·G_SS w_S = λ1, Σw = 1, ‖g_w‖ = s/t): with p = G_SS⁻¹1,
    q = G_SS⁻¹b_S, a = 1ᵀp, β = 1ᵀq, γ = b_Sᵀq, Δ = β² − a(γ − s²), λ = (β + √Δ)/a,
    w_S = (λp − q)/√Δ. A point is accepted when its Frank–Wolfe gap (wᵀ∇f − min_i ∇f_i, an
    upper bound on f(w) − min f) is below 1e-8 of the problem's scale (SLSQP stops at 1e-6).

    S is found by an active-set walk from `guess` (a boolean mask, e.g. the last step's
    support; default every objective): drop the most negative weight, add the objective the
    gap points to. Where that stalls, by the quadratic program it is equivalent to: with
    N = ‖g_w‖ at the optimum, w also minimises wᵀb + (t/2)·wᵀGw, t = s/N (the same KKT
    conditions), i.e. it is the min-norm point of the points g_i + g0/t, which Wolfe's
    algorithm finds for a guess of t; t is then updated to s/N of that point."""
    b = gram.mean(axis=1)  # G·(1/m)
    m, g0_sq = len(b), float(b.mean())  # ‖g0‖²
    scale = max(float(gram.diagonal().max()), EPS)
    tol = 1e-8 * (scale + s * math.sqrt(scale))
    floor = EPS * math.sqrt(scale)  # a smaller ‖g_w‖ counts as g_w = 0
    support = np.ones(m, dtype=bool)
    if guess is not None and guess.shape == b.shape and guess.any():
        support = guess.copy()
    u = math.sqrt(max(g0_sq, EPS)) / max(s, EPS)  # 1/t for N ≈ ‖g0‖
    for _ in range(2 * m):  # the active-set walk
        w, raw = _face_solution(gram, b, s, support)
        if w is None:
            if raw is None or support.sum() == 1:
                break  # no stationary point on this face: the QP below finds a face
            support[np.flatnonzero(support)[np.argmin(raw)]] = False
            continue
        done, grad, u = _certify(gram, b, s, w, tol, floor, u)
        if done:
            return w
        if grad is None or support[np.argmin(grad)]:
            break
        support[np.argmin(grad)] = True
    for _ in range(tries):  # the QP route
        qp = min_norm_point(gram + u * (b[:, None] + b[None, :]) + u * u * g0_sq)
        n = math.sqrt(max(float(qp @ gram @ qp), 0.0))
        if n <= floor:
            return None
        u = n / s
        w, _ = _face_solution(gram, b, s, qp > 0)
        if w is not None:
            done, _, u = _certify(gram, b, s, w, tol, floor, u)
            if done:
                return w
    return None


def _certify(gram, b, s, w, tol, floor, u):
    """(whether w is optimal to `tol`, ∇f(w) or None, 1/t = N/s at w or the old u)."""
    gw = gram @ w
    n = math.sqrt(max(float(w @ gw), 0.0))
    if n <= floor:
        return False, None, u  # at g_w = 0 the norm has no gradient
    grad = b + (s / n) * gw
    return bool(w @ grad - grad.min() <= tol), grad, n / s


def _face_solution(gram: np.ndarray, b: np.ndarray, s: float, support: np.ndarray):
    """The closed-form stationary point of CAGrad's subproblem on the face `support` as
    (w, None); (None, w_S) where it has negative weights w_S; (None, None) where there is none
    (the minimum then lies on a smaller face). Few numpy calls: each costs microseconds between
    backward passes, more than its arithmetic."""
    every = bool(support.all())
    g = gram if every else gram[np.ix_(support, support)]
    bs = b if every else b[support]
    rhs = np.ones((len(bs), 2))
    rhs[:, 1] = bs
    try:
        pq = np.linalg.solve(g, rhs)
    except np.linalg.LinAlgError:
        pq = np.linalg.lstsq(g, rhs, rcond=None)[0]
    p, q = pq[:, 0], pq[:, 1]
    a, beta = pq.sum(axis=0)
    gamma = float(bs @ q)
    disc = beta * beta - a * (gamma - s * s)
    if not (a > 0 and disc > 0 and math.isfinite(disc)):
        return None, None
    root = math.sqrt(disc)
    ws = ((beta + root) / a * p - q) / root
    if ws.min() < -1e-12:
        return None, ws
    ws = np.maximum(ws, 0.0)
    ws /= ws.sum()
    if every:
        return ws, None
    w = np.zeros(len(b))
    w[support] = ws
    return w, None
