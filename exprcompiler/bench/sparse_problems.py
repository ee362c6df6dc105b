"""The sparse Moré–Garbow–Hillstrom problems as tensor programs of one vector x (n,),
for the sparse-derivative benchmark and tests (issue 16). sparse_colors.py has the
same problems as straight-line programs of n scalars; these compile in constant time
whatever n, so n = 10⁴–10⁵ is practical.

Each function returns (program text, shapes, wrt, data): `data` holds the inputs that
are not differentiated (the grid t of the boundary value problem).
"""

from __future__ import annotations

import numpy as np


def _rows(parts: list) -> str:
    return "concatenate(" + ", ".join(parts) + ", axis=0)" if len(parts) > 1 else parts[0]


def broyden_banded(n: int, ml: int = 5, mu: int = 1) -> tuple:
    """MGH 31: f_i = x_i (2 + 5 x_i²) + 1 - Σ_{j in J_i} x_j (1 + x_j), J_i the band
    i-ml..i+mu without i. Rows whose band is whole are one slice expression; the
    first ml and last mu rows are sums over slices, stacked."""
    if n < ml + mu + 2:
        raise ValueError(f"broyden_banded: n = {n} is below ml + mu + 2 = {ml + mu + 2}")

    def row(i):  # 0-based row i
        lo, hi = max(0, i - ml), min(n - 1, i + mu)
        terms = [f"sum(g[{lo}:{i}])" if i > lo else "", f"sum(g[{i + 1}:{hi + 1}])" if hi > i else ""]
        return f"h[{i}] - (" + " + ".join(t for t in terms if t) + ")"

    shifted = [f"g[{ml + d}:{n - mu + d}]" for d in range(-ml, mu + 1) if d != 0]
    middle = f"h[{ml}:{n - mu}] - (" + " + ".join(shifted) + ")"
    head = "stack(" + ", ".join(row(i) for i in range(ml)) + ", axis=0)"
    tail = "stack(" + ", ".join(row(i) for i in range(n - mu, n)) + ", axis=0)"
    text = f"g = x*(1 + x)\nh = x*(2 + 5*x**2) + 1\n{_rows([head, middle, tail])}"
    return text, {"x": (n,)}, ["x"], {}


def discrete_bvp(n: int) -> tuple:
    """MGH 28: f_i = 2 x_i - x_{i-1} - x_{i+1} + h² (x_i + t_i + 1)³ / 2 (x_0 = x_{n+1} = 0),
    h = 1/(n+1), t_i = i h given as the data input t."""
    if n < 3:
        raise ValueError(f"discrete_bvp: n = {n} is below 3")
    h = 1.0 / (n + 1)
    c = repr(h * h / 2)
    text = (f"u = {c}*(x + t + 1)**3\n"
            + _rows(["2*x[:1] - x[1:2] + u[:1]",
                     f"2*x[1:{n - 1}] - x[:{n - 2}] - x[2:] + u[1:{n - 1}]",
                     f"2*x[{n - 1}:] - x[{n - 2}:{n - 1}] + u[{n - 1}:]"]))
    return text, {"x": (n,), "t": (n,)}, ["x"], {"t": h * np.arange(1, n + 1)}


def chained_rosenbrock(n: int) -> tuple:
    """Σ 100 (x_{i+1} - x_i²)² + (1 - x_i)²: a tridiagonal Hessian (star coloring: 3)."""
    return "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)", {"x": (n,)}, ["x"], {}


def start(name: str, n: int) -> np.ndarray:
    """The problem's standard starting point (MGH), perturbed so no entry is special."""
    if name == "discrete_bvp":
        t = np.arange(1, n + 1) / (n + 1)
        return t * (t - 1) + 0.01 * np.sin(np.arange(n))
    if name == "chained_rosenbrock":
        return np.where(np.arange(n) % 2 == 0, -1.2, 1.0) + 0.01 * np.sin(np.arange(n))
    return -np.ones(n) + 0.01 * np.sin(np.arange(n))


PROBLEMS = {"broyden_banded": broyden_banded, "discrete_bvp": discrete_bvp}

__all__ = ["broyden_banded", "discrete_bvp", "chained_rosenbrock", "start", "PROBLEMS"]
