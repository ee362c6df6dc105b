"""The seed functions of the lecture, each with its hand-written NumPy value and
value + gradient (the reference the `seeds` suite checks every implementation
against) and one `formula(m, *xs)` written against a math namespace `m`, which
serves JAX (`m = jax.numpy`), PyTorch (`m = torch`) and SymPy (`m = sympy`).

The hand-written C of the same functions is `seeds_ref.c` beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Seed:
    """A seed function: its expression in exprcompiler's language, its inputs in
    compile_grad's order, the box its points are drawn from (where it is defined),
    the hand-written NumPy `value(*xs) -> y` and `grad(*xs) -> (y, (g, ...))`, and
    `formula(m, *xs)` for the other tools."""
    name: str
    expr: str
    inputs: tuple[str, ...]
    box: tuple[tuple[float, float], ...]
    value: Callable
    grad: Callable
    formula: Callable

    def points(self, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        return tuple(rng.uniform(lo, hi, n) for lo, hi in self.box)


# ---- hand-written NumPy: whole arrays, common subexpressions once ----

def _cubic_value(x):
    return x * (x * x - 3.0)


def _cubic_grad(x):
    s = x * x
    return x * (s - 3.0), (3.0 * (s - 1.0),)


def _griewank_value(x1, x2):
    q = x1 / x2
    d = q - np.exp(x2)
    return (np.sin(q) + d) * d


def _griewank_grad(x1, x2):
    """y = (sin q + d)·d, q = x1/x2, d = q − e^x2."""
    q = x1 / x2
    e = np.exp(x2)
    d = q - e
    a = np.sin(q) + d
    gd = a + d                      # ∂y/∂d with sin q held
    gq = d * np.cos(q) + gd         # ∂y/∂q
    gx1 = gq / x2
    return a * d, (gx1, -(gx1 * q + gd * e))


def _logsin_value(x1, x2):
    return np.log(x1) + x1 * x2 - np.sin(x2)


def _logsin_grad(x1, x2):
    return np.log(x1) + x1 * x2 - np.sin(x2), (1.0 / x1 + x2, x1 - np.cos(x2))


def _explog_value(x, z):
    p = x * z
    L = np.log(x)
    return np.exp(p) + p / L + np.sin(L) / p


def _explog_grad(x, z):
    """p = xz, L = log x: dy/dp = E + 1/L - sin(L)/p², dy/dL = cos(L)/p - p/L²."""
    p = x * z
    L = np.log(x)
    E = np.exp(p)
    iL = 1.0 / L
    ip = 1.0 / p
    u = p * iL
    w = np.sin(L) * ip
    gp = E + iL - w * ip
    gL = np.cos(L) * ip - u * iL
    return E + u + w, (gp * z + gL / x, gp * x)


def _square_value(x):
    s = x * x + 1.0
    return s * s


def _square_grad(x):
    s = x * x + 1.0
    return s * s, (4.0 * x * s,)


SEEDS = {s.name: s for s in (
    Seed("cubic", "x**3 - 3*x", ("x",), ((-2.0, 2.0),), _cubic_value, _cubic_grad,
         lambda m, x: x ** 3 - 3 * x),
    Seed("griewank", "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", ("x1", "x2"),
         ((0.5, 2.0), (0.5, 2.0)), _griewank_value, _griewank_grad,
         lambda m, a, b: (m.sin(a / b) + a / b - m.exp(b)) * (a / b - m.exp(b))),
    Seed("logsin", "log(x1) + x1*x2 - sin(x2)", ("x1", "x2"), ((0.5, 2.0), (0.5, 2.0)),
         _logsin_value, _logsin_grad, lambda m, a, b: m.log(a) + a * b - m.sin(b)),
    Seed("explog", "exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", ("x", "z"),
         ((1.5, 3.0), (0.5, 2.0)), _explog_value, _explog_grad,  # log x != 0 in the box
         lambda m, x, z: m.exp(x * z) + x * z / m.log(x) + m.sin(m.log(x)) / (x * z)),
    Seed("square", "(x**2 + 1)**2", ("x",), ((-2.0, 2.0),), _square_value, _square_grad,
         lambda m, x: (x ** 2 + 1) ** 2),
)}
