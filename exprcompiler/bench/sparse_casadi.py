"""CasADi's sparse Jacobians and Hessians of the sparse-benchmark problems, on SX (the
optional peer of suite_sparse.py). CasADi finds the pattern, colors it and evaluates
its own expression graph in its virtual machine; `casadi.jacobian` / `casadi.hessian`
on SX is what its users call. Each builder returns (build seconds, callable x -> the
results as CasADi DM, the Jacobian or Hessian as the last one), or None when CasADi
is not importable.
"""

from __future__ import annotations

import time

import numpy as np

from .competitors import installed


def _rows(name: str, X, n: int):
    """The residuals f_i as SX, written as sparse_problems writes them."""
    if name == "broyden_banded":
        g, h = X * (1 + X), X * (2 + 5 * X ** 2) + 1
        return [h[i] - sum(g[j] for j in range(max(0, i - 5), min(n - 1, i + 1) + 1) if j != i)
                for i in range(n)]
    hh = 1.0 / (n + 1)
    c = hh * hh / 2
    u = c * (X + hh * np.arange(1, n + 1) + 1) ** 3
    return [2 * X[i] - (X[i - 1] if i > 0 else 0) - (X[i + 1] if i < n - 1 else 0) + u[i] for i in range(n)]


def jacobian(name: str, n: int):
    if not installed("casadi"):
        return None
    import casadi as ca
    t0 = time.perf_counter()
    X = ca.SX.sym("x", n)
    F = ca.vertcat(*_rows(name, X, n))
    fun = ca.Function("J", [X], [F, ca.jacobian(F, X)])
    return time.perf_counter() - t0, fun


def rosenbrock_hessian(n: int):
    if not installed("casadi"):
        return None
    import casadi as ca
    t0 = time.perf_counter()
    X = ca.SX.sym("x", n)
    f = ca.sum1(100 * (X[1:] - X[:-1] ** 2) ** 2 + (1 - X[:-1]) ** 2)
    H, g = ca.hessian(f, X)
    fun = ca.Function("H", [X], [f, g, H])
    return time.perf_counter() - t0, fun


def as_scipy(dm):
    """A CasADi DM as a scipy.sparse matrix (for the agreement check, not timed)."""
    return dm.sparse()


__all__ = ["jacobian", "rosenbrock_hessian", "as_scipy"]
