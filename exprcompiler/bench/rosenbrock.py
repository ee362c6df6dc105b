"""The chained Rosenbrock function of the `hvp` suite,

    f(x) = Σ_{i=1}^{n-1} 100 (x_{i+1} − x_i²)² + (1 − x_i)²,

as a straight-line program in exprcompiler's language (one running sum), written by
hand in vectorized NumPy (value, value + gradient, value + gradient + Hessian-vector
product, from the formulas: the reference every implementation is checked against),
and as one `formula(m, x)` over a math namespace (`m = jax.numpy`).
"""

from __future__ import annotations

import numpy as np


def program(n: int) -> str:
    """d_i = x_{i+1} − x_i², s_i = s_{i−1} + 100 d_i² + (1 − x_i)²; the output is s_{n−1}.
    The inputs x1 … xn sort in this order, so `at(x)` takes x as NumPy indexes it."""
    if n < 2:
        raise ValueError(f"the chained Rosenbrock function needs n >= 2, got {n}")
    lines = []
    for i in range(1, n):
        term = f"100*d{i}**2 + (1 - x{i})**2"
        lines.append(f"d{i} = x{i + 1} - x{i}**2")
        lines.append(f"s{i} = {term}" if i == 1 else f"s{i} = s{i - 1} + {term}")
    lines.append(f"s{n - 1}")
    return "\n".join(lines)


def point(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The point x (in [−1, 1]ⁿ) and direction v of size n, the same in every process."""
    rng = np.random.default_rng(n)
    return rng.uniform(-1.0, 1.0, n), rng.normal(size=n)


# The same function in the tensor language: one vector input, whatever n.
VECTOR = "sum(100 * (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"


def formula(m, x):
    return m.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


# ---- hand-written NumPy ----

def value(x: np.ndarray) -> float:
    a = x[:-1]
    d = x[1:] - a * a
    return float(np.sum(100 * d * d + (1 - a) ** 2))


def grad(x: np.ndarray) -> tuple[float, np.ndarray]:
    """∂f/∂x_i = −400 x_i d_i − 2 (1 − x_i) + 200 d_{i−1}, with d_i = x_{i+1} − x_i²."""
    a = x[:-1]
    d = x[1:] - a * a
    g = np.zeros_like(x)
    g[:-1] = -400 * a * d - 2 * (1 - a)
    g[1:] += 200 * d
    return float(np.sum(100 * d * d + (1 - a) ** 2)), g


def hvp(x: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """H is tridiagonal: H_ii = 1200 x_i² − 400 x_{i+1} + 2 (+ 200 from the term before),
    H_{i,i+1} = H_{i+1,i} = −400 x_i."""
    y, g = grad(x)
    a = x[:-1]
    diag = np.zeros_like(x)
    diag[:-1] = 1200 * a * a - 400 * x[1:] + 2
    diag[1:] += 200
    off = -400 * a
    hv = diag * v
    hv[:-1] += off * v[1:]
    hv[1:] += off * v[:-1]
    return y, g, hv
