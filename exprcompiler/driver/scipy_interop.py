"""Adapters that hand a compiled function to `scipy.optimize.minimize`:

    from scipy.optimize import minimize
    expr = "(1 - x)**2 + 100*(y - x**2)**2"
    fun = scipy_fun(expr)
    x0 = fun.pack({"x": -1.2, "y": 1.0})
    r = minimize(fun, x0, jac=True, method="BFGS")
    r = minimize(fun, x0, jac=True, hessp=scipy_hessp(expr), method="trust-ncg")

`scipy_fun` returns (f, ∇f) in one call, for `jac=True`; `scipy_hessp` returns
∇²f·p (compile_hvp, forward over reverse) and `scipy_hess` the Hessian. Points are flat
float64 vectors over the variables `fun.wrt`; other inputs are fixed by `data=`.
SciPy itself is never imported here: it stays an optional peer. Sparse Jacobians and
Hessians (least_squares' `jac`/`jac_sparsity`, trust-constr's sparse `hess`) have their
adapters in exprcompiler/sparse_scipy.py: `J.scipy_least_squares()`, `H.scipy_trust_constr()`.

Part of the driver (see driver/__init__.py); each adapter is a driver/objective.
Objective with the one call SciPy makes. `Compiled.scipy()` is meant to call these.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from .objective import Objective


class _Adapter:
    def __init__(self, f, needs: str, wrt, data, backend, shapes=None):
        self.objective = Objective(f, wrt=wrt, data=data, backend=backend, needs=needs, shapes=shapes)

    @property
    def wrt(self) -> tuple:
        """The variables, in the order of the vectors SciPy passes."""
        return tuple(self.objective.wrt)

    @property
    def calls(self) -> int:
        return self.objective.evaluations + self.objective.hessian_evaluations

    def pack(self, x0) -> np.ndarray:
        """x0 (a mapping name -> number, or numbers in `wrt` order) as a vector."""
        return self.objective.pack(x0)

    def unpack(self, x) -> dict:
        """A vector as name -> number, or array for tensors (for SciPy's result.x)."""
        return self.objective.unpack(x)


class ScipyFun(_Adapter):
    """fun(x) -> (f, ∇f): pass with `jac=True`."""

    def __call__(self, x) -> tuple[float, np.ndarray]:
        return self.objective.value_grad(x)


class ScipyHessp(_Adapter):
    """hessp(x, p) -> ∇²f(x)·p: pass as `hessp=` (Newton-CG, trust-ncg, trust-krylov)."""

    def __call__(self, x, p) -> np.ndarray:
        return self.objective.hvp(x, p)


class ScipyHess(_Adapter):
    """hess(x) -> ∇²f(x), an (n, n) array: pass as `hess=`."""

    def __call__(self, x) -> np.ndarray:
        return self.objective.hessian(x)


def scipy_fun(f, *, wrt=None, data: Optional[Mapping] = None, backend: Optional[str] = None,
              shapes=None) -> ScipyFun:
    """`f`: an expression or a compiled function (a compile_grad object is reused)."""
    return ScipyFun(f, "grad", wrt, data, backend, shapes)


def scipy_hessp(f, *, wrt=None, data: Optional[Mapping] = None, backend: Optional[str] = None,
              shapes=None) -> ScipyHessp:
    """`f`: an expression or a compiled function (a compile_hvp object is reused)."""
    return ScipyHessp(f, "hvp", wrt, data, backend, shapes)


def scipy_hess(f, *, wrt=None, data: Optional[Mapping] = None, backend: Optional[str] = None,
              shapes=None) -> ScipyHess:
    """`f`: an expression or a compiled function (a compile_hessian object is reused)."""
    return ScipyHess(f, "hessian", wrt, data, backend, shapes)


__all__ = ["scipy_fun", "scipy_hessp", "scipy_hess", "ScipyFun", "ScipyHessp", "ScipyHess"]
