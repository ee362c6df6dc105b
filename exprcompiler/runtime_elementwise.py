"""The NumPy runtime's other elementwise kernels: careful forms of ops NumPy lacks or
computes otherwise than the C backend (relu, power, frac, xlogy, hypot) and the stable
forms the stability rewrites put in (log1mexp, cosm1, sqrt1pm1), and one_minus_square,
arctanh's slope's denominator.

Where it sits: re-exported by runtime.py, which also re-exports the kernels split off
from here: runtime_exps.py (sigmoid, softplus and their shared-exp helpers),
runtime_nary.py (logaddexp's forms, hypot3, logaddexp3), runtime_log1p.py (log1p,
expm1), runtime_tanh.py (sech2 and the tanh forms); generated NumPy code and the op
table's evaluators import every name from runtime.py, so the reference interpreter and
the backend compute the same numbers. runtime_blocks.py runs the helpers block by
block on large arrays (_blocked).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from .runtime_blocks import _LN2, _blocked, _blocked_rows, _real, _redo, _scalar, _scatter
from .runtime_log1p import _expm1, _log1p, expm1
from .ufunc_loops import SIMD


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
    if type(x) is np.ndarray and type(y) is float and x.dtype.char in "fd":   # (an array and a constant)
        real = x.dtype   # result_type's (1-2 µs a call)
    else:
        real = np.result_type(x, y, 1.0)
        x = np.asarray(x, dtype=real)
    y = np.asarray(y, dtype=real)
    with np.errstate(all="ignore"):   # the squares' overflow is the case handled below
        s = np.asarray(x * x + y * y)
        r = np.sqrt(s)
        lo, top = _sum_bounds(real)
        # a scalar argument whose square is at least lo bounds every s below (hypot(x,
        # 1.0), sqrt(1 + x²) rewritten): no least s needed
        floor = (y.ndim == 0 and y * y >= lo) or (x.ndim == 0 and x * x >= lo)
    # two reductions at most (the ufuncs' own: np.min's layers cost as much), no mask, in
    # the common case; a NaN fails the test and comes here
    if s.size and not ((floor or np.minimum.reduce(s, axis=None) >= lo) and np.maximum.reduce(s, axis=None) <= top):
        ok = s >= lo
        ok &= s <= top
        if r.ndim == 0 or 2 * np.count_nonzero(ok) < r.size:   # mostly extreme: np.hypot throughout
            h = np.asarray(np.hypot(x, y))
            np.copyto(h, r, where=ok)   # each point's value its own, whatever the others
            return h[()] if h.ndim == 0 else h
        bad = ~ok
        xb, yb = np.broadcast_to(x, r.shape), np.broadcast_to(y, r.shape)
        r[bad] = np.hypot(xb[bad], yb[bad])
    return r[()] if r.ndim == 0 else r


def hypot_slope(x, y, h=None):
    """x / hypot(x, y), 0 where hypot(x, y) is 0: the op hypot_slope, hypot's partial in
    its first argument (ops_special). `h` is a hint the op does not depend on (the
    kernel's own hypot(x, y), 1 where 0): kernels that have it divide by it instead
    (c_forms.hypot_quotients); this reference computes hypot (this module's, the NumPy
    value's bits) and takes the same steps, where(r == 0, 0, x / where(r == 0, 1, r))."""
    r = hypot(x, y)
    zero = r == 0.0
    with np.errstate(all="ignore"):
        q = np.where(zero, 0.0, np.divide(x, np.where(zero, 1.0, r)))
    return q[()] if q.ndim == 0 else q


@functools.lru_cache(maxsize=None)
def _sum_bounds(dtype) -> tuple[float, float]:
    """(tiny/eps, max) of `dtype`: hypot's x² + y² in that range has both squares'
    rounding errors below eps·(x² + y²) (np.finfo costs 0.6 µs a call)."""
    info = np.finfo(dtype)
    return float(info.tiny / info.eps), float(info.max)


# -- stable forms the stability rewrites use (exprcompiler/stability) ---------------------
# Each is what the C helper of the same name computes (backends/c_special.py), the same
# operations in the same order, so the two backends agree to libm's last bits; but where
# the naive form is accurate, sqrt1pm1 from x = 1/4 takes it (a few ulps from the C
# helper's there), as sech2 does where np.tanh is SIMD (runtime_tanh.py).


# x at least this: exp(x) >= e^-37 > 2^-54 (runtime_log1p._TINY), so neither -exp(x) nor
# 1/expm1(-x) is among the tiny arguments that np.log1p's guard keeps off its loop
_EXP_NOT_TINY = -37.0


def _log1mexp_near(x, bounds=None, out=None):
    """log(-expm1(x)); `bounds`: (lo, hi) of x's points, for expm1's tiny-argument guard."""
    r = _expm1(x, out=np.empty_like(x) if out is None else out, bounds=bounds)   # (an array for one point too)
    return np.log(np.negative(r, out=r), out=r)


def _log1mexp_far(x, tiny=True, out=None):
    """log1p(-exp(x)); `tiny`: whether some -exp(x) may be tiny (else no guard)."""
    r = np.exp(x, out=np.empty_like(x) if out is None else out)   # (an array for one point too)
    np.negative(r, out=r)
    if not tiny:
        return np.log1p(r, out=r)
    return np.copyto(r, _log1p(r)) or r   # (the guard reads its argument after writing its out=)


def _expm1_of_minus(x, bounds=None, out=None):
    """expm1(0.0 - x) for x > -log 2 (-x on expm1's np.expm1 side); `bounds`: x's."""
    return _expm1(np.subtract(0.0, x), out=out, bounds=None if bounds is None else (0.0 - bounds[1], 0.0 - bounds[0]))


def _exp_of_minus_minus_1(x, out=None):
    """expm1(0.0 - x) for x <= -log 2: exp(0.0 - x) - 1, expm1's form there."""
    r = np.subtract(0.0, x, out=out)
    return np.subtract(np.exp(r, out=r), 1.0, out=r)


@_blocked
def log1mexp(x, out=None):
    """log(1 - exp(x)) for x <= 0 (NaN above, -inf at 0), Mächler's two branches:
    log(-expm1(x)) above -log 2, log1p(-exp(x)) below. x's least and greatest points (two
    reductions) find a block all on one side, and spare both branches the reductions of
    their tiny-argument guards (runtime_log1p._tiny_safe: exp(x) is not tiny above
    _EXP_NOT_TINY, expm1(x) not where x is). In a block of both, the branch of most
    points runs on all and the other is redone on its own points only: the same
    numbers as both branches in full and a choice (np.where), which cost two SIMD logs,
    two exps and their passes (value and gradient of log(1 - exp(x)) on 10⁶ points of
    [-3, -0.5]: 1.96x the naive form's time with both, 1.72x with this; of [-700, 0]:
    2.3x, 1.9x)."""
    x = _real(x)   # float32 stays float32
    r = np.empty_like(x) if out is None else out   # (an array for one point too)
    _log1mexp_into(x, r)
    return _scalar(r)


@_blocked_rows
def log1mexp_pair(x, out=None):
    """(log1mexp(x), expm1(0.0 - x)): log(1 - exp(x)) and the t = expm1(-x) its derivative
    -1/expm1(-x) divides by, from one call (`out`: two arrays). Where NumPy's expm1 and
    log1p loops are SIMD (ufunc_loops.SIMD), with no branch (_log1mexp_recip): a few ulps
    from log1mexp's value and within an ulp of runtime.expm1's. Elsewhere in log1mexp's
    and expm1's bits: where x <= 0 at every point, -x is on expm1's exp(-x) - 1 side (-x
    >= log 2) exactly where x is on log1mexp's log1p(-exp(x)) side, so the two share the
    bounds, the split and the gather of the points redone (in a block of both sides: a
    fifth of the two calls' time); elsewhere (x > 0 or NaN) the two are computed apart."""
    x = _real(x)
    rows = (np.empty_like(x), np.empty_like(x)) if out is None else out   # (arrays for one point too)
    _log1mexp_rows_into(x, *rows)
    return rows


@functools.partial(_blocked, rows=3)
def log1mexp_rows(x, out=None):
    """(log1mexp(x), t, 1.0 / t), t = expm1(0.0 - x): log1mexp_pair's two rows and the
    reciprocal that the gradient of a log1mexp at the top of a function, -(1.0 / t),
    divides by (numpy_shares._log1mexp_pairs), in np.divide(1.0, t)'s bits. Where the
    value is -log1p(1/t) (_recip_loops) that quotient is the value's own, so the
    gradient costs no division of its own (value and gradient of log(1 - exp(x)) on a
    block of [-3, -0.5]: 72-76 µs -> 64-66 µs). `out`: three arrays."""
    x = _real(x)
    rows = (np.empty_like(x), np.empty_like(x), np.empty_like(x)) if out is None else out
    _log1mexp_rows_into(x, *rows)
    return rows


def _log1mexp_rows_into(x, value, slope, recip=None, negated=False) -> None:
    """log1mexp_pair's rows into `value` and `slope`, and 1.0 / slope into `recip` if given
    (`negated`: -1.0 / slope, log1mexp's own slope, and the value where slope is inf:
    see log1mexp_slopes)."""
    if _recip_loops():
        if x.size:
            _log1mexp_recip(x, value, slope, np.minimum.reduce(x, axis=None), np.maximum.reduce(x, axis=None),
                            recip, negated)
        return
    if not _log1mexp_into(x, value, slope):
        np.copyto(slope, expm1(np.subtract(0.0, x)))
    if recip is not None:
        with np.errstate(all="ignore"):   # t = ±0 at x = ∓0 (∓inf), subnormal t (inf): as the division gives
            np.divide(1.0, slope, out=recip)
        if negated:   # (-(1.0 / t), not -1.0 / t: NaN's sign bit is the SIMD form's)
            np.negative(recip, out=recip)
        if negated and x.size and not np.minimum.reduce(x, axis=None) >= _quiet_range(x.dtype)[0]:
            # (the value there is log1p(-e^x) of a tiny e^x: -e^x, as the slope)
            at = np.flatnonzero(np.equal(slope, np.inf))
            _scatter(recip, at, value.take(at))


def _log1mexp_slopes_block(x):
    """log1mexp_slopes of a float array of its own (_blocked's front): where the loops
    are SIMD, _log1mexp_recip's steps with no out= arrays (the wrapper's call and tests:
    ~1 µs); else the other calls' steps."""
    if not _recip_loops():
        return log1mexp_slopes.__wrapped__(x)
    value, t, recip = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    _log1mexp_recip(x, value, t, np.minimum.reduce(x, axis=None), np.maximum.reduce(x, axis=None), recip, True)
    return value, recip


@_blocked_rows(front=_log1mexp_slopes_block)
def log1mexp_slopes(x, out=None):
    """(log1mexp(x), its slope s = -1/expm1(0.0 - x)) from one call (`out`: two arrays): the
    op log1mexp_slope's value beside log1mexp's (numpy_shares._log1mexp_pairs), from the
    same steps as log1mexp_rows' (value, t, 1/t), its third row negated. Where t
    overflows (x < -709.78; float32: -88.7) the slope is the value, -e^x (a subnormal
    float: the exact -e^x/(1 - e^x) rounds to it), where 1/t gave -0.0 and a derivative
    0·inf = NaN (ops_special's log1mexp). Elsewhere these are log1mexp_rows' bits, and
    the slope is within an ulp of the exact one (t's ulp, and the division's). A float
    array of its own takes _log1mexp_slopes_block; these steps are the others'."""
    x = _real(x)
    rows = (np.empty_like(x), np.empty_like(x)) if out is None else out
    _log1mexp_rows_into(x, rows[0], np.empty_like(x), rows[1], negated=True)
    return rows


@_blocked
def log1mexp_slope(x, out=None):
    """-1/expm1(0.0 - x) = -e^x/(1 - e^x), the slope of log1mexp(x) (the op
    log1mexp_slope), where t = expm1(0.0 - x) overflows -e^x (x < -709.78: a subnormal
    float, or -0.0), -inf at ±0. Alone (the interpreter's; a generated function takes
    it beside the value: log1mexp_slopes)."""
    x = _real(x)
    r = np.empty_like(x) if out is None else out   # (an array for one point too)
    with np.errstate(all="ignore"):
        t = expm1(np.subtract(0.0, x))
        np.negative(np.divide(1.0, t, out=r), out=r)   # (NaN's sign bit as log1mexp_slopes')
        big = np.equal(t, np.inf)
        if big.any():
            np.copyto(r, np.negative(np.exp(x)), where=big)
    return _scalar(r)


def _recip_loops() -> bool:
    """Whether _log1mexp_recip's form is the cheaper one: NumPy's expm1 and log1p loops
    are SIMD (ufunc_loops.SIMD)."""
    return SIMD["expm1"] and SIMD["log1p"]


def _log1mexp_recip(x, value, t, lo, hi, recip=None, negated=False) -> None:
    """log(1 - e^x) into `value` as -log1p(1/t), t = expm1(0.0 - x) into `t`, given x's
    least and greatest points, where np.expm1 and np.log1p are SIMD (_recip_loops): 1 - e^x = t/(1 + t), and log1p of a positive argument loses nothing
    (its relative condition u/((1 + u) log1p(u)) is below 1), so the value is within 2
    ulps of the exact one at every x < 0 (against mpmath), as log1mexp's two branches
    are, and t within an ulp (np.expm1's; runtime.expm1 takes exp(-x) - 1 from -x = log 2
    on, and would need a redo at the points below). With no branch, a block of points on
    both sides of -log 2 costs no mask, gather or redo (value and gradient of
    log(1 - exp(x)) on 10⁶ points of [-3, -0.5], 8% of them above -log 2: 1.44-1.73x the
    naive form's time with log1mexp's branches and the shared split, 1.12-1.19x with this; on a block all on one side, about the
    time of those). The value alone costs 1.3-1.6x one branch on all points (a block of
    16,384: 53 µs, against 32 and 41): log1mexp keeps its branches (on a block of both
    sides this would save a fifth, but a point's bits would then depend on its block's).
    Where 1/t is not finite the value is redone: log(t) where t is below the least
    normal float (1/t may overflow; -inf at ±0) and where x > 0 (t < 0: NaN, as
    log1mexp's; -log1p(1/t) is +inf from t = -1), -exp(x) where t overflows (x < -709.78:
    e^x may be subnormal). Elsewhere, from _quiet_range's least x to minus the least
    normal float, no point can raise: no np.errstate (2 µs) and no test for a redo (x up
    to -eps included: unlike log1mexp's branches, no log1p(-1) where exp(x) rounds to 1).
    `recip`: an array for 1/t, kept there (else `value` holds it on the way); `negated`:
    -1/t there instead, and the value where t = inf (log1mexp_slopes; the negation is the
    pass that the generated -(1/t) took)."""
    least, tiny = _quiet_range(x.dtype)[0], _least_normal(x.dtype)
    quiet = least < lo and hi < -tiny   # (NaN fails)
    with contextlib.nullcontext() if quiet else np.errstate(all="ignore"):
        minus = np.subtract(0.0, x, out=value)   # (-x held in `value` until t is taken)
        _expm1(minus, out=t, bounds=(0.0 - hi, 0.0 - lo))
        u = np.divide(1.0, t, out=value if recip is None else recip)
        if lo >= _EXP_NOT_TINY:   # (NaN fails) no tiny u: no guard
            np.log1p(u, out=value)
        else:   # (the guard reads its argument after writing its out=)
            np.copyto(value, _log1p(u))
        np.negative(value, out=value)
        if negated:
            np.negative(recip, out=recip)
        if quiet:
            return
        if not hi < -tiny:   # (NaN too) 1/t may overflow, or x is a zero, or x > 0 (t < 0)
            _redo(value, np.less(t, tiny), np.log, t)
        if not lo >= least:   # t = inf: -exp(x) (-0.0 at x = -inf)
            at = np.flatnonzero(np.equal(t, np.inf))   # (_redo's, once for both rows)
            far = np.negative(np.exp(x.take(at)))
            _scatter(value, at, far)
            if negated:   # the slope there too (-e^x/(1 - e^x) rounds to it)
                _scatter(recip, at, far)


@functools.lru_cache(maxsize=None)
def _quiet_range(dtype) -> tuple[float, float]:
    """(lo, hi): x in it, exp(x) and exp(-x) are normal floats of `dtype`, and exp(x) < 1
    (-708 to -eps for float64, -87 to -eps for float32)."""
    info = np.finfo(dtype)
    return -float(np.floor(-np.log(info.tiny))), -float(info.eps)


@functools.lru_cache(maxsize=None)
def _least_normal(dtype) -> float:
    """The least normal float of `dtype` (np.finfo's, a dictionary look-up away: 0.4 µs)."""
    return float(np.finfo(dtype).tiny)


def _log1mexp_into(x, value, slope=None) -> bool:
    """log1mexp(x) into `value`; expm1(0.0 - x) into `slope` as well if given and x <= 0
    at every point (else not), and then True. Floating-point errors are silenced only
    where some point could raise one, in either branch (each may run on every point of
    a block; np.errstate costs 2 µs, a tenth of a pass on a block): beyond _quiet_range
    (x >= 0: log(0), log of a negative; exp(x) rounding to 1: log1p(-1); exp(-x)
    overflowing, exp(x) subnormal) and at NaN."""
    if not x.size:
        return slope is not None
    lo, hi = np.minimum.reduce(x, axis=None), np.maximum.reduce(x, axis=None)
    if slope is not None and not hi <= 0:   # (NaN too)
        slope = None
    least, most = _quiet_range(x.dtype)
    if least < lo and hi < most:   # (NaN fails)
        _log1mexp_split(x, value, slope, lo, hi)
    else:
        with np.errstate(all="ignore"):
            _log1mexp_split(x, value, slope, lo, hi)
    return slope is not None


def _log1mexp_split(x, value, slope, lo, hi) -> None:
    """_log1mexp_into's branches, given the least and greatest of x's points."""
    far = functools.partial(_log1mexp_far, tiny=not lo >= _EXP_NOT_TINY)
    near = functools.partial(_log1mexp_near, bounds=(lo, hi))
    near_slope = functools.partial(_expm1_of_minus, bounds=(lo, hi))
    if hi <= -_LN2:   # all far (NaN fails both tests)
        far(x, out=value)
        if slope is not None:
            _exp_of_minus_minus_1(x, out=slope)
        return
    if lo > -_LN2:   # all near
        near(x, out=value)
        if slope is not None:
            near_slope(x, out=slope)
        return
    is_near = np.greater(x, -_LN2)   # (NaN: far, whose value is NaN too)
    k = np.count_nonzero(is_near)
    most = 2 * k > x.size   # near: that branch on all, the far points redone; else the converse
    (near if most else far)(x, out=value)
    if slope is not None:
        (near_slope if most else _exp_of_minus_minus_1)(x, out=slope)
    if 0 < k < x.size:   # (one point took its own branch above)
        # one gather for both results (runtime_blocks._redo's, by flat indices)
        at = np.flatnonzero(np.logical_not(is_near, out=is_near) if most else is_near)
        some = x.take(at)
        _scatter(value, at, (far if most else near)(some))
        if slope is not None:
            _scatter(slope, at, (_exp_of_minus_minus_1 if most else near_slope)(some))


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
    # x + 1 first (both forms start with it), then the least x, from the cache then
    # (sqrt1pm1 alone on 10⁶ points of [0.5, 3], by blocks: 3-5% less time, load 11)
    np.add(x, 1.0, out=r)
    if r.size and np.minimum.reduce(x, axis=None) >= _SQRT1PM1_NAIVE:   # (NaN fails)
        # no point can raise (x + 1 >= 1.25, inf at most): no np.errstate (value and
        # gradient on 10⁶ points of [0.5, 3]: 2-3% less time than with it)
        np.sqrt(r, out=r)
        return _scalar(np.subtract(r, 1.0, out=r))
    with np.errstate(all="ignore"):
        np.sqrt(r, out=r)
        mixed = not (r.size and np.maximum.reduce(x, axis=None) < _SQRT1PM1_NAIVE)   # (NaN is mixed)
        q = np.add(r, 1.0, out=np.empty_like(r) if mixed else r)
        np.divide(x, q, out=q)
        if mixed:
            np.subtract(r, 1.0, out=r)
            np.copyto(r, q, where=np.logical_not(np.greater_equal(x, _SQRT1PM1_NAIVE)))
    return _scalar(r)


def one_minus_square(x):
    """1 - x² as (1 - x)(1 + x), arctanh's denominator (the op one_minus_square): the
    product's bits, whose derivative the op table takes as -2x. A float stays a float
    (one-point code calls this for each point)."""
    if type(x) is float:
        return (1.0 - x) * (1.0 + x)
    r = np.subtract(1.0, x)
    if type(r) is not np.ndarray:   # a NumPy scalar
        return r * np.add(1.0, x)
    return np.multiply(r, np.add(1.0, x), out=r)


__all__ = ["cosm1", "frac", "hypot", "hypot_slope", "log1mexp", "log1mexp_pair", "log1mexp_rows", "log1mexp_slope",
           "log1mexp_slopes", "one_minus_square", "power",
           "relu", "sqrt1pm1", "xlogy"]
