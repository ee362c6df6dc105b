"""Sparse Jacobians and Hessians handed to SciPy's optimizers (issue 16).

Where it sits: after sparse_jacobian.py, beside driver/scipy_interop.py (which does
the same for gradients and HVPs). SciPy itself is not imported here; the objects are
plain callables over a flat float64 vector x of the `wrt` variables (tensors
flattened in C order and concatenated), other inputs fixed by name.

    ls = J.scipy_least_squares()           # J = compile_jacobian(residuals, sparse=True)
    least_squares(ls.fun, x0, jac=ls.jac, tr_solver="lsmr")
    least_squares(ls.fun, x0, jac_sparsity=ls.jac_sparsity)   # finite differences, grouped

    tc = H.scipy_trust_constr()            # H = compile_hessian(f, sparse=True)
    minimize(tc.fun, x0, jac=tc.jac, hess=tc.hess, method="trust-constr")

One kernel call gives the values and the derivative at a point; the last point's
results are kept, so SciPy's fun(x) then jac(x) at the same x cost one call.
"""

from __future__ import annotations

import numpy as np


class _LastPoint:
    """The sparse object's results at the last x asked for."""

    def __init__(self, compiled, data: dict):
        self.compiled, self.data = compiled, dict(data)
        self._x, self._results = None, None
        self.calls = 0

    def at(self, x) -> tuple:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if self._x is None or not np.array_equal(x, self._x):
            self._results = self.compiled.at(x, **self.data)
            self._x = x.copy()
            self.calls += 1
        return self._results


class _Adapter:
    def __init__(self, compiled, data: dict):
        self._last = _LastPoint(compiled, data)

    @property
    def calls(self) -> int:
        """Kernel calls so far (one per distinct point)."""
        return self._last.calls


class LeastSquares(_Adapter):
    """`fun(x) -> residuals (m,)`, `jac(x) -> csr_matrix (m, n)`, `jac_sparsity` (the
    pattern) for scipy.optimize.least_squares."""

    def __init__(self, jacobian, data: dict):
        super().__init__(jacobian, data)
        self.jac_sparsity = jacobian.pattern

    def fun(self, x) -> np.ndarray:
        return np.array(self._last.at(x)[0], dtype=np.float64)

    def jac(self, x):
        return self._last.at(x)[1]


class TrustConstr(_Adapter):
    """`fun(x) -> f`, `jac(x) -> ∇f (n,)`, `hess(x) -> csr_matrix (n, n)` for
    minimize(method="trust-constr") (which accepts a sparse Hessian)."""

    def __init__(self, hessian, data: dict):
        super().__init__(hessian, data)
        self.hess_sparsity = hessian.pattern

    def fun(self, x) -> float:
        return float(self._last.at(x)[0])

    def jac(self, x) -> np.ndarray:
        return np.array(self._last.at(x)[1], dtype=np.float64)

    def hess(self, x):
        return self._last.at(x)[2]


__all__ = ["LeastSquares", "TrustConstr"]
