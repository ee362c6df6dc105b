"""Methods that use curvature: Newton with the Hessian, Newton with conjugate gradients
on Hessian-vector products, and L-BFGS.

- newton     solve H d = −∇f (H from compile_hessian). With a line search (default
             Armijo from α = 1, i.e. damped Newton) H is first made positive definite
             by adding τI (Nocedal & Wright, Algorithm 3.3), so d is a descent
             direction even near a saddle; linesearch=None is the plain Newton step,
             which the notes warn can head for a saddle or a maximum.
- newton-cg  the same equation solved inexactly by CG on HVPs (compile_hvp, forward
             over reverse: ∇²f·v costs a few gradients, the Hessian is never formed),
             stopped at a relative residual of min(0.5, √‖∇f‖) (superlinear
             convergence) or at the first direction of non-positive curvature.
- lbfgs      the two-loop recursion over the last `memory` pairs (s, y), with a
             strong Wolfe line search, which keeps sᵀy > 0.

Part of the driver (see driver/__init__.py): each class is a driver/method.Method;
`needs` tells driver/objective.py which second-order kernel to compile.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from . import linesearch
from .method import Method
from .options import Option
from .result import Stop

_LINESEARCH_DOC = "'armijo' from α = 1 (damped), 'wolfe', or None (the full step)"


class Newton(Method):
    name = "newton"
    summary = "Newton's method with the Hessian (damped by a line search)"
    options = {"linesearch": Option("armijo", ("armijo", "wolfe", None), _LINESEARCH_DOC)}
    needs = "hessian"

    def step(self, k, x, f, g):
        H = self.obj.hessian(x)
        if not np.isfinite(H).all():
            raise Stop(f"the Hessian is not finite at iteration {k}")
        if self.opts["linesearch"] is None:
            try:
                d = np.linalg.solve(H, -g)
            except np.linalg.LinAlgError:
                raise Stop(f"the Hessian is singular at iteration {k}") from None
            x_new = x + d
            return (x_new, *self.obj.value_grad(x_new))
        d = -_cho_solve(_positive_definite(H), g)
        return _search(self.opts["linesearch"], self.obj, x, f, g, d)


def _positive_definite(H: np.ndarray) -> np.ndarray:
    """The Cholesky factor of H + τI for the smallest τ in 0, β, 2β, 4β, ... (β from
    H's diagonal) that has one."""
    diag_min = float(np.min(np.diag(H)))
    tau = 0.0 if diag_min > 0 else -diag_min + 1e-3
    scale = max(1e-3, float(np.linalg.norm(H, np.inf)) * 1e-8)
    for _ in range(100):
        try:
            return np.linalg.cholesky(H + tau * np.eye(len(H)))
        except np.linalg.LinAlgError:
            tau = max(2 * tau, scale)
    raise Stop("could not make the Hessian positive definite")


def _cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.solve(L.T, np.linalg.solve(L, b))


def _search(name, obj, x, f, g, d, alpha0: float = 1.0):
    alpha, f_new, g_new = linesearch.SEARCHES[name](obj, x, f, g, d, alpha0=alpha0)
    return x + alpha * d, f_new, g_new


class NewtonCG(Method):
    name = "newton-cg"
    summary = "truncated Newton: CG on Hessian-vector products"
    options = {
        "linesearch": Option("armijo", ("armijo", "wolfe", None), _LINESEARCH_DOC),
        "cg_maxiter": Option(None, "count", "at most this many CG steps per iteration (None: 2n)"),
    }
    needs = "hvp"

    def step(self, k, x, f, g):
        d = self._cg(x, g)
        search = self.opts["linesearch"]
        if search is None:
            x_new = x + d
            return (x_new, *self.obj.value_grad(x_new))
        return _search(search, self.obj, x, f, g, d)

    def _cg(self, x, g):
        """Approximately solve H d = −g from d = 0 (Nocedal & Wright, Algorithm 7.1)."""
        gnorm = float(np.linalg.norm(g))
        tol = min(0.5, np.sqrt(gnorm)) * gnorm
        d = np.zeros_like(g)
        r = g.copy()   # residual H d + g
        p = -r
        rr = float(r @ r)
        for j in range(self.opts["cg_maxiter"] or 2 * len(g)):
            Hp = self.obj.hvp(x, p)
            curvature = float(p @ Hp)
            if curvature <= 0:
                # negative curvature: the steepest descent direction on the first step,
                # else the CG iterate so far (which is a descent direction)
                return -g if j == 0 else d
            alpha = rr / curvature
            d = d + alpha * p
            r = r + alpha * Hp
            rr_new = float(r @ r)
            if np.sqrt(rr_new) <= tol:
                break
            p = -r + (rr_new / rr) * p
            rr = rr_new
        return d


class LBFGS(Method):
    name = "lbfgs"
    summary = "limited-memory BFGS with a strong Wolfe line search"
    options = {"memory": Option(10, "count", "number of (s, y) pairs kept")}

    def __init__(self, obj, opts):
        super().__init__(obj, opts)
        self.pairs: deque = deque(maxlen=opts["memory"])

    def step(self, k, x, f, g):
        d = -self._apply_inverse(g)
        # the first step has no curvature yet: a trial step of length 1 (scale-free)
        alpha0 = 1.0 if self.pairs else min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-300))
        alpha, f_new, g_new = linesearch.wolfe(self.obj, x, f, g, d, alpha0=alpha0)
        x_new = x + alpha * d
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y):  # skip pairs that would break positive definiteness
            self.pairs.append((s, y, 1.0 / sy))
        return x_new, f_new, g_new

    def _apply_inverse(self, g):
        """H_k g by the two-loop recursion, H_0 = (sᵀy / yᵀy) I from the newest pair."""
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q *= float(s @ y) / float(y @ y)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            b = rho * float(y @ q)
            q += (a - b) * s
        return q
