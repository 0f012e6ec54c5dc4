"""The balancers' simplex solvers (MGDA's min-norm point, CAGrad's subproblem) against scipy's
general one, SLSQP (the authors' choice for CAGrad)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtgan.balance import conflict_averse_weights, min_norm_weights


def _objective(gram: np.ndarray, s: float):
    mean = np.full(gram.shape[0], 1.0 / gram.shape[0])
    b = gram @ mean

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        gw = gram @ w
        norm = np.sqrt(max(w @ gw, 1e-16))
        return float(w @ b + s * norm), b + (s / norm) * gw

    return f


def _simplex_slsqp(fun, m: int, ftol: float) -> np.ndarray:
    """The reference: SLSQP on the simplex, from its centre; fun returns (value, gradient)."""
    return minimize(
        fun,
        np.full(m, 1.0 / m),
        jac=True,
        bounds=[(0.0, 1.0)] * m,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0},
        method="SLSQP",
        options={"ftol": ftol, "maxiter": 1000},
    ).x


def test_min_norm_point_matches_a_general_solver_on_random_and_degenerate_gradients():
    """Wolfe's algorithm against SLSQP on the same simplex-constrained quadratic: never worse,
    including duplicated, zero and parallel gradients (affinely dependent points)."""
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        m, d = 3 + trial % 6, 1 + trial % 9
        g = torch.randn(m, d, generator=gen, dtype=torch.float64)
        g += torch.randn(d, generator=gen, dtype=torch.float64) * (trial % 4)  # common part
        if trial % 5 == 0:
            g[1] = g[0]
        if trial % 7 == 0:
            g[2] = 0
        if trial % 3 == 0:
            g[-1] = 2 * g[-2]
        gram = (g @ g.T).numpy()
        w = min_norm_weights(torch.from_numpy(gram)).numpy()
        assert w.sum() == pytest.approx(1.0, abs=1e-12) and (w >= 0).all()
        ref = _simplex_slsqp(lambda v, q=gram: (v @ q @ v, 2 * q @ v), m, ftol=1e-15)
        scale = max(np.diag(gram).max(), 1e-12)
        assert w @ gram @ w <= ref @ gram @ ref + 1e-10 * scale


def test_conflict_averse_weights_are_never_worse_than_slsqp():
    """Random, correlated, duplicated, zero, parallel and orthogonal gradients, c from 0.1 to
    1.5: where the solver answers, its weights lie on the simplex and reach SLSQP's objective
    or better; it declines (None) only where the gradients are degenerate."""
    rng = np.random.default_rng(0)
    answered = 0
    for trial in range(240):
        m, d = 2 + trial % 15, 3 + trial % 40
        g = rng.normal(size=(m, d)) + rng.normal(size=d) * (trial % 4)
        degenerate = m > d
        if trial % 5 == 0:
            g[1], degenerate = g[0], True
        if trial % 7 == 0 and m > 2:
            g[2], degenerate = 0.0, True
        if trial % 9 == 0:
            g = np.diag(rng.uniform(0.1, 3.0, m))  # orthogonal (GMAN's discriminators)
            degenerate = False
        gram = g @ g.T
        s = [0.1, 0.4, 0.9, 1.5][trial % 4] * np.sqrt(gram.mean())
        w = conflict_averse_weights(gram, s)
        if w is None:
            assert degenerate, f"trial {trial}: no answer for non-degenerate gradients"
            continue
        answered += 1
        assert w.sum() == pytest.approx(1.0, abs=1e-12) and (w >= 0).all()
        f = _objective(gram, s)
        assert f(w)[0] <= f(_simplex_slsqp(f, m, ftol=1e-14))[0] + 1e-9 * np.diag(gram).max()
    assert answered > 200


def test_conflict_averse_weights_on_two_opposed_gradients():
    # g1 = (1, 0), g2 = (−1, 0.1): the mean nearly cancels; w moves to the neglected side
    g = np.array([[1.0, 0.0], [-1.0, 0.1]])
    gram = g @ g.T
    s = 0.5 * np.sqrt(gram.mean())
    w = conflict_averse_weights(gram, s)
    assert w is not None
    grid = np.linspace(0.0, 1.0, 100_001)
    f = _objective(gram, s)
    best = min(f(np.array([a, 1 - a]))[0] for a in grid)
    assert f(w)[0] == pytest.approx(best, abs=1e-8)


def test_conflict_averse_weights_do_not_depend_on_the_guess():
    """The starting support only decides where the search begins: any guess gives the same
    certified optimum."""
    rng = np.random.default_rng(1)
    for trial in range(40):
        m = 3 + trial % 8
        g = rng.normal(size=(m, 50)) + rng.normal(size=50) * (trial % 3)
        gram = g @ g.T
        s = 0.4 * np.sqrt(gram.mean())
        plain = conflict_averse_weights(gram, s)
        guessed = conflict_averse_weights(gram, s, rng.random(m) < 0.5)
        assert plain is not None and guessed is not None
        f = _objective(gram, s)
        assert f(guessed)[0] == pytest.approx(f(plain)[0], abs=1e-9 * np.diag(gram).max())
