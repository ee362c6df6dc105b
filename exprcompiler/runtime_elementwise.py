"""The NumPy runtime's other elementwise kernels: careful forms of ops NumPy lacks or
computes otherwise than the C backend (relu, power, frac, xlogy, hypot) and the stable
forms the stability rewrites put in (log1mexp, cosm1, sqrt1pm1).

Where it sits: re-exported by runtime.py, which also re-exports the kernels split off
from here: runtime_exps.py (sigmoid, softplus, logaddexp and their shared-exp helpers),
runtime_log1p.py (log1p, expm1), runtime_tanh.py (sech2 and the tanh forms); generated
NumPy code and the op table's evaluators import every name from runtime.py, so the
reference interpreter and the backend compute the same numbers. runtime_blocks.py runs
the helpers block by block on large arrays (_blocked).
"""

from __future__ import annotations

import numpy as np

from .runtime_blocks import _LN2, _blocked, _real, _redo, _scalar
from .runtime_log1p import _expm1, _log1p


def relu(x):
    """max(x, 0); NaN stays NaN (np.maximum propagates it)."""
    return np.maximum(x, 0.0)


def power(x, y):
    """np.power, with C's pow answers wherever the exponent is 0.5. NumPy's loop
    computes x**0.5 as sqrt(x) when the exponent does not vary along it (a constant,
    a scalar argument), which gives nan at -inf and -0.0 at -0.0; pow, which NumPy
    itself calls for an array of exponents and the C backend always calls, gives
    inf and +0.0 there (C99 F.9.4.4). Elsewhere the two agree."""
    if type(y) is float and y != 0.5:  # a constant exponent, as generated code passes it
        return np.power(x, y)
    r = np.power(x, y)
    half = np.equal(y, 0.5)
    if not np.any(half):
        return r
    # sqrt(x) + 0.0 is pow's +0.0 at -0.0 and leaves every other value as it is
    r = np.where(half, np.where(np.equal(x, -np.inf), np.inf, r + 0.0), r)
    return r[()] if r.ndim == 0 else r


def frac(x):
    """x - floor(x), in [0, 1) (1.0 where x is a tiny negative number, by rounding), as
    SymPy's frac; NaN at ±inf."""
    with np.errstate(invalid="ignore"):
        return np.subtract(x, np.floor(x))


@_blocked
def xlogy(x, y):
    """x * log(y), defined as 0 where x == 0 (the limit), as scipy.special.xlogy."""
    real = np.result_type(x, y, 1.0)  # float32 stays float32
    x, y = np.asarray(x, dtype=real), np.asarray(y, dtype=real)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = x * np.log(y)
    zero = x == 0.0
    if np.any(zero):   # rare: np.where's select only then
        r = np.where(zero, 0.0, r)
    return r[()] if r.ndim == 0 else r


@_blocked
def hypot(x, y):
    """sqrt(x² + y²) without overflow or underflow, for the NumPy backend's batch code:
    np.hypot's loop is scalar libm (4x the cost of exp here), so the sum of squares is
    used where it is exact to rounding (x² + y² normal and finite, so the larger square
    keeps all its digits), np.hypot at the other points only (when they are most, as
    over a range of extremes, np.hypot throughout and the sum's points copied back in):
    within about an ulp of the exact value (np.hypot within one); hypot(inf, nan) is
    inf, as np.hypot's."""
    real = np.result_type(x, y, 1.0)
    x, y = np.asarray(x, dtype=real), np.asarray(y, dtype=real)
    with np.errstate(all="ignore"):   # the squares' overflow is the case handled below
        s = np.asarray(x * x + y * y)
        r = np.sqrt(s)
    info = np.finfo(real)   # x² + y² in [tiny/eps, max]: both squares' rounding errors below eps·s
    lo = info.tiny / info.eps
    # two reductions (the ufuncs' own: np.min's layers cost as much), no mask, in the
    # common case; a NaN fails the test and comes here
    if s.size and not (np.minimum.reduce(s, axis=None) >= lo and np.maximum.reduce(s, axis=None) <= info.max):
        ok = s >= lo
        ok &= s <= info.max
        if r.ndim == 0 or 2 * np.count_nonzero(ok) < r.size:   # mostly extreme: np.hypot throughout
            h = np.asarray(np.hypot(x, y))
            np.copyto(h, r, where=ok)   # each point's value its own, whatever the others
            return h[()] if h.ndim == 0 else h
        bad = ~ok
        xb, yb = np.broadcast_to(x, r.shape), np.broadcast_to(y, r.shape)
        r[bad] = np.hypot(xb[bad], yb[bad])
    return r[()] if r.ndim == 0 else r


# -- stable forms the stability rewrites use (exprcompiler/stability) ---------------------
# Each is what the C helper of the same name computes (backends/c_special.py), the same
# operations in the same order, so the two backends agree to libm's last bits; but where
# the naive form is accurate, sqrt1pm1 from x = 1/4 takes it (a few ulps from the C
# helper's there), as sech2 does where np.tanh is SIMD (runtime_tanh.py).


def _log1mexp_near(x):
    return np.log(-_expm1(x))


def _log1mexp_far(x):
    return _log1p(-np.exp(x))


@_blocked
def log1mexp(x):
    """log(1 - exp(x)) for x <= 0 (NaN above, -inf at 0), Mächler's two branches:
    log(-expm1(x)) above -log 2, log1p(-exp(x)) below. The branch of most points runs
    on all, the other is redone on its own points only (_redo), the same numbers as both
    in full and a choice (np.where), which cost two SIMD logs, two exps and their passes:
    value and gradient of log(1 - exp(x)) on 10⁶ points of [-3, -0.5] took 1.96x the
    naive form's time with both, 1.72x with this (of [-700, 0]: 2.3x, 1.9x)."""
    x = np.asarray(x, dtype=np.result_type(x, 1.0))   # float32 stays float32
    with np.errstate(all="ignore"):
        near = np.greater(x, -_LN2)   # (NaN: far, whose value is NaN too)
        most = 2 * np.count_nonzero(near) > near.size
        r = np.asarray(_log1mexp_near(x) if most else _log1mexp_far(x))
        rest = np.logical_not(near) if most else near
        if r.ndim and np.any(rest):   # (one point took its own branch above)
            _redo(r, rest, _log1mexp_far if most else _log1mexp_near, x)
    return _scalar(r)


@_blocked
def cosm1(x):
    """cos(x) - 1 as -2 sin²(x/2), with no cancellation near the multiples of 2π
    (0.0 - ...: +0.0 at x = 0, as cos(0) - 1 is)."""
    with np.errstate(all="ignore"):
        s = np.sin(np.multiply(0.5, x))
        return 0.0 - 2.0 * (s * s)


# x at least this: sqrt(1 + x) - 1 taken as it is. The subtraction then loses at most
# s/(s - 1) < 5.5 (s = sqrt(1 + x)) times sqrt's rounding: within 1.3e-15 of the exact
# value (6 ulps; against mpmath), where the stability catalogue asks 1e-13, and one
# division fewer (a tenth of the value and gradient of sqrt(1 + x) - 1 at x in [0.5, 3]).
_SQRT1PM1_NAIVE = 0.25


@_blocked
def sqrt1pm1(x, out=None):
    """sqrt(1 + x) - 1, with no cancellation for small x: x / (sqrt(1 + x) + 1) below
    _SQRT1PM1_NAIVE (and at NaN), sqrt(1 + x) - 1 from there (inf at inf). One reduction
    finds a block all at or above it, two one all below; else both forms, each point
    taking its own (the C helper xc_sqrt1pm1 takes the quotient throughout: the two
    differ by a few ulps from x = 1/4)."""
    x = _real(x)   # float32 stays float32
    r = np.empty_like(x) if out is None else out   # an array even for one point (out= needs one)
    with np.errstate(all="ignore"):
        np.add(x, 1.0, out=r)
        np.sqrt(r, out=r)
        if r.size and np.minimum.reduce(x, axis=None) >= _SQRT1PM1_NAIVE:   # (NaN fails)
            return _scalar(np.subtract(r, 1.0, out=r))
        mixed = not (r.size and np.maximum.reduce(x, axis=None) < _SQRT1PM1_NAIVE)   # (NaN is mixed)
        q = np.add(r, 1.0, out=np.empty_like(r) if mixed else r)
        np.divide(x, q, out=q)
        if mixed:
            np.subtract(r, 1.0, out=r)
            np.copyto(r, q, where=np.logical_not(np.greater_equal(x, _SQRT1PM1_NAIVE)))
    return _scalar(r)



__all__ = ["cosm1", "frac", "hypot", "log1mexp", "power", "relu", "sqrt1pm1", "xlogy"]
