"""The NumPy runtime's sigmoid, softplus and logaddexp, and the helpers that share one exp
between a value and its derivative (sigmoid and softplus of ±u from E = exp(u), or
from e = exp(-|u|) with one log1p for softplus(u) and softplus(-u), logaddexp(a, b) and
its partials sigmoid(±(a - b)) from e = exp(-|a - b|)), or compute
both in one call (logaddexp_rows: the naive form's cost where that is accurate;
softplus_pair: softplus(u) and sigmoid(u)); and
the references of three ops only C kernels compute (expm1_neg_shared, hypot1_shared,
acosh_root_shared: c_backend.c_forms).

Where it sits: re-exported by runtime.py (generated NumPy code and the op table's
evaluators import the names from there); backends/numpy_shares.shared_exps decides
where generated code calls the shared-exp helpers. log1p's forms come from
runtime_log1p.py, the blocked running from runtime_blocks.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .runtime_blocks import _LN2, _blocked, _blocked_rows, _real, _scalar
from .runtime_log1p import _TINY, _log1p, _log1p_unit
from .ufunc_loops import SIMD


@_blocked
def sigmoid(x):
    """1 / (1 + exp(-x)) with one exp and no overflow warning, as E / (1 + E), E = exp(x):
    sigmoid_of_exp. Accurate wherever the result is a normal float (E/(1 + E) rounds
    twice; 1 from x = 36.7, where E > 2^53; E itself below -36.7), 1 from x = 709.79,
    where E overflows (the C helper xc_sigmoid takes exp(-|x|): the two differ by an ulp
    or two)."""
    return _scalar(sigmoid_of_exp(exp_quiet(x)))


@_blocked
def softplus(x):
    """log(1 + exp(x)) without overflow, as log1p(exp(x)) (_log1p_unit's correction; x
    where exp(x) overflows): softplus_of_exp. np.logaddexp(0, x) computes
    max(x, 0) + log1p(exp(-|x|)) in a scalar loop that costs as much as exp and log1p
    together; the C helper xc_softplus takes that form."""
    x = _real(x)
    return _scalar(softplus_of_exp(x, exp_quiet(x)))


@_blocked
def logaddexp(x, y):
    """log(exp(x) + exp(y)) as max(x, y) + log1p(exp(-|x - y|)) (x + log 2 at a tie), the
    C helper xc_logaddexp's steps: np.logaddexp computes the same in a scalar libm loop,
    about 2.5 times the cost (logaddexp_e)."""
    x, y = _real(x, y), _real(y, x)
    with np.errstate(invalid="ignore"):   # inf - inf: a tie, handled there
        return _scalar(logaddexp_e(x, y, _exp_neg_abs(np.subtract(x, y))))


# sigmoid and softplus of ±u are computed from E = exp(u), logaddexp(a, b) and its
# derivatives sigmoid(±(a - b)) from e = exp(-|a - b|). Where a trace holds several of
# them of the same u (a value and its gradient), the NumPy backend computes the exp once
# and passes it to these (backends/numpy_shares.shared_exps): the exp is most of their cost.
def exp_quiet(u):
    """exp(u), overflowing to inf without a warning: the E of sigmoid_of_exp,
    sigmoid_neg_of_exp and softplus_of_exp."""
    u = _real(u)
    with np.errstate(over="ignore"):
        return np.exp(u)


def _overflowed(E) -> bool:
    """Whether E holds inf (or NaN: then the masked fix-up runs and finds what it finds):
    one reduction, where a mask would be two passes."""
    return E.size > 0 and not np.maximum.reduce(E, axis=None) < np.inf


def _one_plus(E, out=None):
    """1 + E in `out` or a new array (one even for a single point: out= needs one)."""
    return np.add(E, 1.0, out=np.empty_like(E) if out is None else out)


@_blocked
def sigmoid_of_exp(E, out=None):
    """sigmoid(u) = E / (1 + E) from E = exp(u) (exp_quiet); 1 where E is inf."""
    r = _one_plus(E, out)
    if not _overflowed(E):   # (np.errstate costs 1 µs, a third of a pass of a block)
        return np.divide(E, r, out=r)
    with np.errstate(invalid="ignore"):   # inf/inf where E overflowed: set below
        np.divide(E, r, out=r)
    np.copyto(r, 1.0, where=np.isposinf(E))
    return r


def sigmoid_neg_of_exp(E, out=None):
    """sigmoid(-u) = 1 / (1 + E) from E = exp(u) (0 where E is inf)."""
    r = _one_plus(E, out)
    return np.divide(1.0, r, out=r)


_max, _INF = np.maximum.reduce, float("inf")


def _sigmoid_pair_block(u, E):
    """The pair of a float array E of its own (_blocked's front; most calls: a generated
    function's block), without _sigmoid_pair_of_exp's out= arrays (its calls and tests
    cost 1-2 µs of a block's ~50): the same steps, the same bits."""
    w = np.add(E, 1.0)
    if _max(E, axis=None) < _INF:   # (NaN fails: _sigmoid_pair_of_exp's fix-up)
        s = np.divide(E, w)
        return s, np.divide(1.0, w, out=w)
    return _sigmoid_pair_of_exp(u, E, None)


@_blocked_rows(front=functools.partial(_sigmoid_pair_block, None))
def sigmoid_pair_of_exp(E, out=None):
    """(sigmoid(u), sigmoid(-u)) from E = exp(u) (a value and its derivative's other
    factor, sigmoid(u) * sigmoid(-u)): sigmoid_of_exp's and sigmoid_neg_of_exp's bits
    from one 1 + E, the one reduction that finds an overflowed E, and one call (the two
    calls took 35 µs a block, the pair 30). `out`: two arrays for them."""
    return _sigmoid_pair_of_exp(None, E, out)


@_blocked_rows(front=_sigmoid_pair_block, on=1)
def sigmoid_pair_of_exp_at(u, E, out=None):
    """sigmoid_pair_of_exp(E) but where E = exp(u) overflowed: there sigmoid(-u) is
    exp(-u), as sigmoid(-u)'s own call gives it (a subnormal number, or 0), not 0
    (1 - sigmoid(u) rewritten: sigmoid(-u) and its derivative from exp(u), no array -u)."""
    return _sigmoid_pair_of_exp(u, E, out)


def _sigmoid_pair_of_exp(u, E, out):
    E = _real(E)
    s, w = (np.empty_like(E), np.empty_like(E)) if out is None else out   # (arrays for one point too)
    np.add(E, 1.0, out=w)
    if _overflowed(E):
        with np.errstate(invalid="ignore"):   # inf/inf where E overflowed: 1, set below
            np.divide(E, w, out=s)
        big = np.isposinf(E)
        np.copyto(s, 1.0, where=big)
        np.divide(1.0, w, out=w)
        if u is not None:
            with np.errstate(over="ignore"):   # (at points where E is small: not copied)
                np.copyto(w, np.exp(np.negative(u)), where=big)
        return s, w
    np.divide(E, w, out=s)
    np.divide(1.0, w, out=w)
    return s, w


def expm1_of_neg(x):
    """expm1(0.0 - x): the reference of the op expm1_neg_shared, which C kernels and the VM
    compute beside log1mexp(x) (c_backend.c_forms); NumPy never meets it."""
    return np.expm1(np.subtract(0.0, _real(x)))


def hypot_one(x):
    """hypot(1, x): the reference of the op hypot1_shared (C, beside arcsinh(x))."""
    return np.hypot(1.0, _real(x))


def acosh_root(x):
    """sqrt(x - 1)·sqrt(x + 1): the reference of the op acosh_root_shared (C, beside
    arccosh(x))."""
    x = _real(x)
    with np.errstate(invalid="ignore"):
        return np.sqrt(x - 1.0) * np.sqrt(x + 1.0)


@_blocked
def softplus_of_exp(u, E, out=None):
    """softplus(u) = log1p(E) from E = exp(u) (np.log1p where its loop is SIMD, else
    _log1p_unit: for E > 2^53 its correction is 0 and log(E) is u to an ulp); u where E
    is inf."""
    if SIMD["log1p"]:
        r = _log1p(E, out=np.empty_like(E) if out is None else out)
    else:
        with np.errstate(invalid="ignore"):   # inf - inf where E overflowed: set below
            r = _log1p_unit(E, out)
    if _overflowed(E):
        np.copyto(r, u, where=np.isposinf(E))
    return r


@_blocked_rows
def softplus_pair(u, out=None):
    """(softplus(u), sigmoid(u)): softplus_of_exp's and sigmoid_of_exp's bits of
    E = exp_quiet(u) from one call (a softplus's value and gradient, numpy_shares). Where
    u's least and greatest points (two reductions) put every E among normal floats from
    e^-37 on (no tiny argument for log1p's guard, runtime_log1p._tiny_safe; no overflow),
    no reduction of E, no fix-up and no np.errstate (value and gradient of
    log(1 + exp(x)) on a block of [-5, 5]: the three calls cost ~7 µs more); elsewhere
    the three calls. `out`: two arrays."""
    u = _real(u)
    value, slope = (np.empty_like(u), np.empty_like(u)) if out is None else out   # (arrays for one point too)
    least, most = _ordinary_exp(u.dtype)
    if u.size and least <= np.minimum.reduce(u, axis=None) and np.maximum.reduce(u, axis=None) <= most:
        E = np.exp(u, out=slope)   # (NaN fails the test above)
        if SIMD["log1p"]:
            np.log1p(E, out=value)
        else:
            _log1p_unit(E, value)
        return value, np.divide(E, _one_plus(E), out=slope)
    E = exp_quiet(u)
    softplus_of_exp(u, E, out=value)
    sigmoid_of_exp(E, out=slope)
    return value, slope


@functools.lru_cache(maxsize=None)
def _ordinary_exp(dtype) -> tuple[float, float]:
    """(least, most): u in it, exp(u) is at least 2^-54 (runtime_log1p._TINY) and finite."""
    return -37.0, float(math.floor(math.log(float(np.finfo(dtype).max))))


@_blocked
def exp_neg_abs(x, out=None):
    """exp(-|x|), in (0, 1] (no overflow): the e of sigmoid_e, softplus_e and logaddexp_e
    (of x - y)."""
    return _exp_neg_abs(_real(x), out)


def _exp_neg_abs(x, out=None):
    """exp(-|x|), in `out` or one new array."""
    e = np.empty_like(x) if out is None else out
    np.abs(x, out=e)
    np.negative(e, out=e)
    return np.exp(e, out=e)


@_blocked
def sigmoid_e(x, e, out=None):
    """sigmoid(x) from e = exp(-|x|): the numerator is max(e, x >= 0), 1 from x >= 0
    (e <= 1; e = 1 at ±0), e below 0, NaN at NaN (e is NaN there); two passes (the
    comparison written as 0.0/1.0 straight away: np.sign takes twice as long), where a
    masked copy was three. e is left as it is."""
    return _sigmoid_e(np.greater_equal, x, e, out)


@_blocked
def sigmoid_neg_e(x, e, out=None):
    """sigmoid(-x) from e = exp(-|x|): sigmoid_e(-x, e)'s bits (-x >= 0 is x <= 0, ±0
    and NaN included) without the array -x (logaddexp's partial in its second argument)."""
    return _sigmoid_e(np.less_equal, x, e, out)


@_blocked_rows
def sigmoid_pair_e(x, e, out=None):
    """(sigmoid(x), sigmoid(-x)) from e = exp(-|x|) (logaddexp's two partials):
    sigmoid_e's and sigmoid_neg_e's bits from one 1 + e and one comparison, the other
    mask 1 minus it (x <= 0 but at ±0, where e = 1 takes the maximum either way; NaN: e
    is NaN), in one call: 8 µs a block fewer than the two calls' 52. `out`: two arrays."""
    e = _real(e)
    s, t = (np.empty_like(e), np.empty_like(e)) if out is None else out   # (arrays for one point too)
    np.greater_equal(x, 0.0, out=s)
    np.subtract(1.0, s, out=t)
    np.maximum(e, s, out=s)
    np.maximum(e, t, out=t)
    w = np.add(e, 1.0)
    np.divide(s, w, out=s)
    np.divide(t, w, out=t)
    return s, t


def _sigmoid_e(compare, x, e, out):
    r = np.empty_like(e) if out is None else out   # x's shape: e is exp(-|x|)
    compare(x, 0.0, out=r)
    np.maximum(e, r, out=r)
    return np.divide(r, np.add(e, 1.0), out=r)


@_blocked
def softplus_e(x, e, out=None):
    """softplus(x) from e = exp(-|x|): max(x, 0) + log1p(e) (np.log1p: for e in [0, 1]
    as fast as _log1p_unit's log and four passes)."""
    r = _log1p(e, out=np.empty_like(e) if out is None else out)
    return np.add(np.maximum(x, 0.0), r, out=r)


@_blocked_rows
def softplus_pair_e(x, e, out=None):
    """(softplus(x), softplus(-x)) from e = exp(-|x|): softplus_e(x, e)'s and
    softplus_e(-x, e)'s bits (max(-x, 0) is -min(x, 0), and L - m rounds as -m + L) from
    one log1p(e) L, without the array -x (log(sigmoid(z)) and log(1 - sigmoid(z)) of one
    z, the binary cross-entropy's two terms). `out`: two arrays."""
    return _softplus_rows(x, e, out, False)


@_blocked_rows
def neg_softplus_pair_e(x, e, out=None):
    """(-softplus(x), -softplus(-x)), log(sigmoid(∓x)) rewritten, from e = exp(-|x|):
    softplus_pair_e's rows negated, bit for bit (signed zeros too; a NaN's sign aside),
    with no pass of their own: -L - max(x, 0) and -L + min(x, -0.0)."""
    return _softplus_rows(x, e, out, True)


def _softplus_rows(x, e, out, negated: bool):
    e = _real(e)
    r, q = (np.empty_like(e), np.empty_like(e)) if out is None else out   # (arrays for one point too)
    _log1p(e, out=q)
    if negated:   # (-L - m is -(m + L) and -L + n is -(L - n): rounding is symmetric)
        np.negative(q, out=q)
        np.subtract(q, np.maximum(x, 0.0, out=r), out=r)
        return r, np.add(q, np.minimum(x, -0.0, out=np.empty_like(e)), out=q)
    np.maximum(x, 0.0, out=r)
    np.add(r, q, out=r)
    return r, np.subtract(q, np.minimum(x, 0.0, out=np.empty_like(e)), out=q)


# logaddexp's value and gradient from e = exp(-|a - b|) (logaddexp_e, sigmoid_pair_e) cost
# about 1.6 times the naive form's in a block's own time where that is accurate (a, b in
# [-5, 5]: 130 µs against 83): a - b, exp(-|a - b|) (20 µs), the value (34: log1p, max,
# +) and the partials (44: a comparison, four cheap passes, two divisions) against the
# naive form's two exps, log, division and three passes. Measured without gain: the
# partials from E = exp(a - b) (41 µs, 44 with the overflow test), one 1/(1 + e) times
# each numerator (38, other bits), -|d| as np.copysign(d, -1) (not SIMD) or as the sign bit
# set; dropping every guard still left 1.17-1.20 at 10⁶ points. So where the naive form
# is accurate, logaddexp_rows takes it.
@_blocked
def logaddexp_e(x, y, e, out=None):
    """logaddexp(x, y) from e = exp(-|x - y|): max(x, y) + log1p(e) (np.log1p, as
    softplus_e); x + log 2 at a tie, as NumPy's: at finite ties that is the same sum, at
    equal infinities x - y and e are NaN, which one reduction finds: the one that finds
    e all at or above _TINY (no NaN then), where np.log1p needs no guard (_tiny_safe)."""
    r = np.empty_like(e) if out is None else out
    if np.size(e) and np.minimum.reduce(e, axis=None) >= _TINY:   # (most blocks where |x - y| < 37)
        np.log1p(e, out=r)
        return np.add(np.maximum(x, y), r, out=r)
    _log1p(e, out=r)
    np.add(np.maximum(x, y), r, out=r)
    if np.size(e) and np.isnan(np.maximum.reduce(e, axis=None)):
        tie = np.equal(x, y)
        if np.any(tie):
            np.copyto(r, np.add(x, _LN2), where=tie)
    return r


# Where logaddexp_rows takes the naive form: a and b both in [lo, hi] of their precision,
# lo = ⌊log(tiny)⌋ + 1 and hi = ⌊log(max/2)⌋ ([-708, 709] in float64). From lo, exp(a) and
# exp(b) are normal floats within an ulp of their exact values, so their sum s (two
# positive terms: no cancellation) is within two, log(s) within about 3e-16 of the value
# (an absolute error: large relative to v only near v = 0, where the stable form's, the
# rounding of log1p(e) added to max(a, b), is as large) and exp(a)/s within three ulps of
# sigmoid(a - b) where that is a normal float (where it is not, it underflows in both
# forms, as exp(-708)/exp(709)). Below lo, exp(a) is subnormal, with fewer digits: at
# a = -720, b = -690 the partial, e^-30, came from a 35-bit exp(-720), 3e-11 off. Up to hi,
# s is finite. The quotients are divisions, not 1/s times each: 1/s is subnormal from
# s = 2^1022 (and two divisions cost less here than a division and two products).
@functools.lru_cache(maxsize=None)
def _naive_range(dtype) -> tuple[float, float, float]:
    """(lo, hi, z): the naive form's range (above), and z, below which exp gives 0."""
    info = np.finfo(dtype)
    return (math.floor(math.log(info.tiny)) + 1.0, float(math.floor(math.log(info.max / 2))),
            float(math.floor(math.log(float(info.smallest_subnormal)) - math.log(2.0))))


# |max(a, b)| below it at a point out of range: there the other of a and b is below lo,
# e = exp(-|a - b|) < e^-707, and log(1 + e) drops e, up to e^-707/|max(a, b)| of the value
_LOG1P_KEEPS = 2.0 ** -800


@functools.partial(_blocked, rows=3)
def logaddexp_rows(a, b, out=None):
    """(logaddexp(a, b), sigmoid(a - b), sigmoid(b - a)): logaddexp's value and its two
    partials (0.5 at a tie, equal infinities included, as the op's derivative) in one
    call, at the naive form's cost where that is accurate: four reductions find a block
    with a and b all in _naive_range (see above), where the value is log(exp(a) + exp(b))
    and the partials exp(a)/s, exp(b)/s. Else each point's exps are shifted by c, 0 where
    both are in range (the naive form's bits, whatever the other points: np.exp, np.log
    and division give a point the same bits in any array of positive strides) and
    max(a, b) elsewhere, the stable form: exp(-|a - b|) and 1, whose quotients are
    sigmoid_pair_e's bits, and the value c + log(1 + exp(-|a - b|)), within an ulp or two
    of logaddexp_e's max(a, b) + log1p(...), with no gather or select (each form at its
    own points apart cost 16% more than logaddexp_e and sigmoid_pair_e where half the
    points are out of range; this, 20% less). The stable helpers redo the points where
    that gives NaN (infinities and NaNs) and those out of range where |max(a, b)| <
    _LOG1P_KEEPS (above); a reduction finds none of each. `out`: three arrays."""
    a, b = _real(a, b), _real(b, a)
    if a.shape != b.shape:
        a, b = np.broadcast_arrays(a, b)
    v, p, q = rows = tuple(np.empty(a.shape, a.dtype) for _ in range(3)) if out is None else out
    lo, hi, zero = _naive_range(a.dtype)
    if a.size == 0 or (np.minimum.reduce(a, axis=None) >= lo and np.maximum.reduce(a, axis=None) <= hi
                       and np.minimum.reduce(b, axis=None) >= lo and np.maximum.reduce(b, axis=None) <= hi):
        _logaddexp_naive(a, b, v, p, q)   # (NaN fails the test)
        return rows
    c = np.maximum(a, b, out=np.empty_like(v))   # (an array for one point too)
    out_of_range = a < lo
    out_of_range |= b < lo
    out_of_range |= c > hi
    redo = None
    if np.fmin.reduce(np.abs(c), axis=None) < _LOG1P_KEEPS:   # (fmin: past the NaNs, which are redone below)
        redo = np.less(np.abs(c), _LOG1P_KEEPS)
        redo &= out_of_range
    np.multiply(c, out_of_range, out=c)   # (±0 in range: a - c is a, log(s) + c is log(s))
    with np.errstate(over="ignore", invalid="ignore"):   # -inf, or inf - inf: NaN, redone below
        np.subtract(a, c, out=p)
        np.subtract(b, c, out=q)
        _past_exp_zero((p, q), zero)
    _logaddexp_naive(p, q, v, p, q)
    np.add(v, c, out=v)
    if np.isnan(np.maximum.reduce(v, axis=None)):   # a NaN, an inf, or -inf twice
        redo = np.isnan(v) if redo is None else redo | np.isnan(v)
    if redo is not None and redo.any():
        _rows_at(_logaddexp_stable, np.flatnonzero(redo), a.reshape(-1), b.reshape(-1),
                 [r.reshape(-1) for r in rows])
    return rows


def _past_exp_zero(xs, zero) -> None:
    """In place: each x of xs below `zero`, where exp gives 0, pushed to about -1e300.
    exp gives 0 there too, but NumPy's AVX-512 loop finds that on a slow path (208 µs a
    block of such points, 11 in range): from about -1e300, 66."""
    for x in xs:
        if np.minimum.reduce(x, axis=None) < zero:
            np.subtract(x, np.less(x, zero) * 1e300, out=x)


def _logaddexp_naive(a, b, v, p, q):
    """The naive form's value and partials into v, p, q (p and q may be a and b)."""
    np.exp(a, out=p)
    np.exp(b, out=q)
    np.add(p, q, out=v)
    np.divide(p, v, out=p)
    np.divide(q, v, out=q)
    np.log(v, out=v)


def _logaddexp_stable(a, b, v, p, q):
    """The stable form's value and partials into v, p, q: logaddexp_e, sigmoid_pair_e,
    and 0.5 at equal infinities (whose difference is NaN)."""
    with np.errstate(invalid="ignore"):
        t = np.subtract(a, b)
    e = _exp_neg_abs(t)
    logaddexp_e(a, b, e, out=v)
    sigmoid_pair_e(t, e, out=(p, q))
    tie = np.equal(a, b)
    np.copyto(p, 0.5, where=tie)
    np.copyto(q, 0.5, where=tie)


def _rows_at(form, at, a, b, rows):
    """form's rows at the indices `at` only of flat arrays."""
    a, b = a.take(at), b.take(at)
    part = [np.empty_like(a) for _ in rows]
    form(a, b, *part)
    for r, x in zip(rows, part):
        r[at] = x


__all__ = ["acosh_root", "exp_neg_abs", "exp_quiet", "expm1_of_neg", "hypot_one", "logaddexp", "logaddexp_e",
           "logaddexp_rows", "sigmoid", "sigmoid_e", "sigmoid_neg_e", "sigmoid_neg_of_exp", "sigmoid_of_exp",
           "sigmoid_pair_e", "sigmoid_pair_of_exp", "sigmoid_pair_of_exp_at", "softplus", "softplus_e",
           "softplus_of_exp", "softplus_pair", "softplus_pair_e", "neg_softplus_pair_e"]
