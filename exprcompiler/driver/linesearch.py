"""Line searches along a direction d from x: α such that f(x + α d) is small enough.

- `armijo`: backtracking. Start at α₀ and halve α until the sufficient-decrease
  (Armijo) condition f(x + αd) ≤ f(x) + c₁ α ∇f(x)·d holds.
- `wolfe`: the strong Wolfe conditions (sufficient decrease and |∇f(x + αd)·d| ≤
  c₂ |∇f(x)·d|), by Nocedal & Wright's bracketing and zoom (Algorithms 3.5 and 3.6)
  with safeguarded cubic interpolation. What quasi-Newton methods need: it keeps
  sᵀy > 0.
- `exact`: the notes' α* = argmin_{α ≥ 0} f(x + αd), computed numerically: bracket
  a minimum along the ray (shrinking α₀ until f decreases, then growing by the golden
  ratio until f increases), then Brent's method (golden section with parabolic
  steps) on the bracket to a relative tolerance of 1e-8 in α. It finds a local
  minimum along the ray, the first one the bracket catches.

Each returns (α, f(x + αd), ∇f(x + αd)) and raises `Stop` when it finds no
decrease. A trial point where f is NaN or inf counts as too far (α shrinks); it is
not a divergence.

Part of the driver (see driver/__init__.py): used by gradient descent, coordinate
descent, Newton and L-BFGS. `obj` is a driver/objective.Objective; every trial point
is one counted evaluation.
"""

from __future__ import annotations

import math

import numpy as np

from .result import Stop

GOLDEN = (1 + math.sqrt(5)) / 2
NO_DECREASE = "the line search found no decrease (the limit of floating-point precision?)"


def _descent_slope(g: np.ndarray, d: np.ndarray) -> float:
    slope = float(g @ d)
    if not slope < 0:
        raise Stop(f"not a descent direction (∇f·d = {slope:.3g})")
    return slope


def armijo(obj, x, f, g, d, alpha0: float = 1.0, c1: float = 1e-4, shrink: float = 0.5,
           tries: int = 60):
    slope = _descent_slope(g, d)
    alpha = alpha0
    for _ in range(tries):
        f_new, g_new = obj.value_grad(x + alpha * d)
        if math.isfinite(f_new) and f_new <= f + c1 * alpha * slope:
            return alpha, f_new, g_new
        alpha *= shrink
    raise Stop(NO_DECREASE)


def _cubic_min(a, fa, da, b, fb, db) -> float:
    """The minimizer of the cubic through (a, fa, da) and (b, fb, db), kept inside the
    middle 80% of [a, b]; bisection where the cubic gives nothing usable."""
    lo, hi = min(a, b), max(a, b)
    mid = 0.5 * (a + b)
    if not (math.isfinite(fb) and math.isfinite(db)):
        return mid
    d1 = da + db - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if disc < 0:
        return mid
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = db - da + 2 * d2
    if denom == 0:
        return mid
    t = b - (b - a) * (db + d2 - d1) / denom
    margin = 0.1 * (hi - lo)
    return t if lo + margin <= t <= hi - margin else mid


def wolfe(obj, x, f, g, d, alpha0: float = 1.0, c1: float = 1e-4, c2: float = 0.9,
          tries: int = 40):
    slope0 = _descent_slope(g, d)

    def phi(alpha):
        fa, ga = obj.value_grad(x + alpha * d)
        return fa, ga, float(ga @ d) if np.isfinite(ga).all() else math.nan

    def armijo_fails(alpha, fa):
        return not math.isfinite(fa) or fa > f + c1 * alpha * slope0

    def zoom(lo, hi):  # lo, hi: (α, f, ∇f, slope); lo satisfies sufficient decrease
        for _ in range(tries):
            alpha = _cubic_min(lo[0], lo[1], lo[3], hi[0], hi[1], hi[3])
            trial = (alpha, *phi(alpha))
            if armijo_fails(alpha, trial[1]) or trial[1] >= lo[1]:
                hi = trial
            else:
                if abs(trial[3]) <= -c2 * slope0:
                    return trial
                if trial[3] * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = trial
        if lo[0] > 0:  # sufficient decrease without the curvature condition: good enough
            return lo
        raise Stop(NO_DECREASE)

    prev = (0.0, f, g, slope0)
    alpha = alpha0
    for i in range(tries):
        trial = (alpha, *phi(alpha))
        if armijo_fails(alpha, trial[1]) or (i > 0 and trial[1] >= prev[1]):
            found = zoom(prev, trial)
            break
        if abs(trial[3]) <= -c2 * slope0:
            found = trial
            break
        if trial[3] >= 0:
            found = zoom(trial, prev)
            break
        prev, alpha = trial, 2 * alpha
    else:
        found = prev
        if found[0] == 0:
            raise Stop(NO_DECREASE)
    return found[0], found[1], found[2]


def exact(obj, x, f, g, d, alpha0: float = 1.0, xtol: float = 1e-8, tries: int = 100):
    best = {}

    def phi(alpha):
        fa, ga = obj.value_grad(x + alpha * d)
        fa = fa if math.isfinite(fa) else math.inf
        if alpha not in best or fa < best[alpha][0]:
            best[alpha] = (fa, ga)
        return fa

    # bracket: a < b < c with phi(b) < phi(a) and phi(b) <= phi(c)
    b, fb = alpha0, phi(alpha0)
    c, fc = math.inf, math.inf
    shrinks = 0
    while not fb < f:
        c, fc = b, fb
        b *= 1 / GOLDEN ** 2
        fb = phi(b)
        shrinks += 1
        if shrinks > tries:
            raise Stop(NO_DECREASE)
    a, fa = 0.0, f
    while c == math.inf:
        t = b + GOLDEN * (b - a)
        ft = phi(t)
        if ft >= fb:
            c, fc = t, ft
        else:
            a, fa, b, fb = b, fb, t, ft
            if abs(b) > 1e150:
                raise Stop("f decreases without bound along the search direction")
    alpha, _ = brent(phi, a, b, c, fb, xtol)
    f_new, g_new = best[alpha]
    return alpha, f_new, g_new


def brent(phi, a: float, b: float, c: float, fb: float, xtol: float = 1e-8, maxiter: int = 200):
    """Brent's minimization on a bracket a < b < c with phi(b) below phi(a) and phi(c)
    (Numerical Recipes' `brent`): golden-section steps, parabolic ones when they fall
    well inside. Returns (x, phi(x)) with x known to a relative accuracy of xtol."""
    cgold = 1 - 1 / GOLDEN
    lo, hi = a, c
    x = w = v = b
    fx = fw = fv = fb
    d = e = 0.0
    for _ in range(maxiter):
        mid = 0.5 * (lo + hi)
        tol1 = xtol * abs(x) + 1e-15
        tol2 = 2 * tol1
        if abs(x - mid) <= tol2 - 0.5 * (hi - lo):
            break
        golden = True
        if abs(e) > tol1:  # try a parabola through x, w, v
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            e_old, e = e, d
            if abs(p) < abs(0.5 * q * e_old) and q * (lo - x) < p < q * (hi - x):
                d = p / q
                golden = False
                if (x + d) - lo < tol2 or hi - (x + d) < tol2:
                    d = math.copysign(tol1, mid - x)
        if golden:
            e = (lo - x) if x >= mid else (hi - x)
            d = cgold * e
        u = x + d if abs(d) >= tol1 else x + math.copysign(tol1, d)
        fu = phi(u)
        if fu <= fx:
            if u >= x:
                lo = x
            else:
                hi = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                lo = u
            else:
                hi = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x, fx


SEARCHES = {"armijo": armijo, "wolfe": wolfe, "exact": exact}
