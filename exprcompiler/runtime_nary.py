"""The NumPy runtime's logaddexp forms and three-term stable forms: logaddexp(a, b) and
its helpers (logaddexp_e from e = exp(-|a - b|); logaddexp_rows, its value and two
partials in one call), hypot3(x, y, z) = sqrt(x² + y² + z²) and logaddexp3(a, b, c) =
log(exp(a) + exp(b) + exp(c)), which the stability rewrites put in for three terms (one
op where two nested binary ones took two square roots, or two exps and two logs), and
the helpers that give a value and its partials in one call (logaddexp_rows, hypot3_rows,
logaddexp3_rows: the naive form's cost and numbers where that is accurate; the two
logaddexps' share their naive range), and over_norm, the op hypot3's partials are (x/h
with a reciprocal the three share), with hypot3_slope0, 1, 2 and hypot3_guard, the ops
they are before the backends divide by the value.

Where it sits: re-exported by runtime.py (the op table's evaluators and generated NumPy
code import the names from there); backends/numpy_nary.py finds where generated code
calls the three-term rows helpers, numpy_share_exps.py logaddexp_rows and logaddexp_e.
The C helpers (backends/c_nary.py) take the same steps. exp_neg_abs and sigmoid_pair_e
come from runtime_exps.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .runtime_blocks import _LN2, _blocked, _real, _scalar, _scatter
from .runtime_exps import _exp_neg_abs, sigmoid_pair_e
from .runtime_log1p import _TINY, _log1p


@_blocked
def logaddexp(x, y):
    """log(exp(x) + exp(y)) as max(x, y) + log1p(exp(-|x - y|)) (x + log 2 at a tie), the
    C helper xc_logaddexp's steps: np.logaddexp computes the same in a scalar libm loop,
    about 2.5 times the cost (logaddexp_e)."""
    x, y = _real(x, y), _real(y, x)
    with np.errstate(invalid="ignore"):   # inf - inf: a tie, handled there
        return _scalar(logaddexp_e(x, y, _exp_neg_abs(np.subtract(x, y))))


# logaddexp's value and gradient from e = exp(-|a - b|) (logaddexp_e, sigmoid_pair_e) cost
# about 1.6 times the naive form's in a block's own time where that is accurate (a, b in
# [-5, 5]: 130 µs against 83): a - b, exp(-|a - b|) (20 µs), the value (34: log1p, max,
# +) and the partials (44: a comparison, four cheap passes, two divisions) against the
# naive form's two exps, log, division and three passes. Measured without gain: the
# partials from E = exp(a - b) (41 µs, 44 with the overflow test), one 1/(1 + e) times
# each numerator (38, other bits), -|d| as np.copysign(d, -1) (not SIMD) or as the sign bit
# set (exp_neg_abs takes that now: a pass fewer, ~2 µs a block of 16,384); dropping every
# guard still left 1.17-1.20 at 10⁶ points. So where the naive form is accurate,
# logaddexp_rows takes it.
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

# hypot3: the naive sum of squares s is within about two ulps of x² + y² + z² wherever it
# is at least tiny/eps (a square that underflowed is off by at most half the least
# subnormal, 2^-53 of that bound's ulp in float64) and finite; its square root is then
# within an ulp and a half of the norm. Elsewhere every term is scaled by a power of two
# first (exact): 2^600 where s is below that bound (every |term| below 2^-485), 2^-600
# where s overflowed (or is NaN), so that no square that matters overflows or
# underflows (2^100 and 2^-100 in float32).
#
# The partials x/h as the op's derivative takes them (the op over_norm, whose bits
# hypot3_rows gives): x·k·(1/(h·k)), k = 2^60 where the naive sum of squares s is at most
# 2^120, 2^-60 elsewhere (overflowed, or NaN), and 0 where h is 0; where every s is in
# [2^-120, 2^120], x·(1/h) without the selections (the same bits: 1/h is normal there).
_MID_LOW, _MID_HIGH, _K_UP, _K_DOWN = 2.0 ** -120, 2.0 ** 120, 2.0 ** 60, 2.0 ** -60


@functools.lru_cache(maxsize=None)
def _hypot_range(dtype) -> tuple[float, float, float]:
    """(the least s of the naive form, the scale up, the scale down)."""
    info = np.finfo(dtype)
    e = 600 if info.bits == 64 else 100
    return float(info.tiny / info.eps), 2.0 ** e, 2.0 ** -e


def _real3(x, y, z):
    """x, y, z as arrays of one float type (float32 stays float32) and one shape."""
    if (type(x) is type(y) is type(z) is np.ndarray and x.dtype == y.dtype == z.dtype
            and x.dtype.char in "fd" and x.shape == y.shape == z.shape):
        return x, y, z   # (most calls: result_type alone costs 1-2 µs)
    t = np.result_type(x, y, z, 1.0)
    x, y, z = (np.asarray(a, dtype=t) for a in (x, y, z))
    if not x.shape == y.shape == z.shape:
        x, y, z = np.broadcast_arrays(x, y, z)
    return x, y, z


def _sum_of_squares(x, y, z, out):
    """(x² + y²) + z² into out, as the C helper adds them (inf or 0 out of range, quietly)."""
    with np.errstate(over="ignore", under="ignore"):
        np.multiply(x, x, out=out)
        out += y * y
        out += z * z
    return out


def _hypot3_into(x, y, z, h):
    """hypot3 of arrays of one shape into h; returns h and whether every point took the
    naive form with s in [2^-120, 2^120] (then h is in [2^-60, 2^60]: see hypot3_rows)."""
    _sum_of_squares(x, y, z, h)
    lo, up, down = _hypot_range(h.dtype)
    least = np.minimum.reduce(h, axis=None) if h.size else 1.0
    most = np.maximum.reduce(h, axis=None) if h.size else 1.0
    if least >= lo and most < np.inf:   # (NaN fails the test)
        return np.sqrt(h, out=h), _MID_LOW <= least and most <= _MID_HIGH
    with np.errstate(invalid="ignore"):
        k = np.where(h < lo, up, down).astype(h.dtype)
        np.copyto(k, 1.0, where=(h >= lo) & (h < np.inf))
    _sum_of_squares(x * k, y * k, z * k, h)
    np.sqrt(h, out=h)
    with np.errstate(over="ignore"):
        h *= 1.0 / k   # (exact: a power of two; inf past the largest float)
    infinite = np.isinf(x) | np.isinf(y) | np.isinf(z)
    if infinite.any():   # inf, a NaN beside it or not (C's hypot, math.hypot)
        np.copyto(h, np.inf, where=infinite)
    return h, False


@_blocked
def hypot3(x, y, z):
    """sqrt(x² + y² + z²) without overflow or underflow: the naive form where it is
    accurate, the terms scaled by a power of two elsewhere (see above); inf where a
    term is infinite, NaN or not."""
    x, y, z = _real3(x, y, z)
    return _scalar(_hypot3_into(x, y, z, np.empty(x.shape, x.dtype))[0])


@functools.partial(_blocked, rows=4)
def hypot3_rows(x, y, z, out=None):
    """(hypot3(x, y, z), and its partials x/h, y/h, z/h, 0 where h is 0: a subgradient)
    in one call, the bits of hypot3 and of the op's derivative (above). `out`: four
    arrays."""
    x, y, z = _real3(x, y, z)
    rows = tuple(np.empty(x.shape, x.dtype) for _ in range(4)) if out is None else out
    h, mid = _hypot3_into(x, y, z, rows[0])
    if mid:
        r = np.divide(1.0, h)
        for a, p in zip((x, y, z), rows[1:]):
            np.multiply(a, r, out=p)
        return rows
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = _sum_of_squares(x, y, z, np.empty(h.shape, h.dtype))
        k = np.where(s <= _MID_HIGH, _K_UP, _K_DOWN).astype(h.dtype)
        r = np.divide(1.0, h * k)
        zero = h == 0
        for a, p in zip((x, y, z), rows[1:]):
            np.multiply(a * k, r, out=p)
            np.copyto(p, 0.0, where=zero)
    return rows


@_blocked
def over_norm(x, h, s):
    """x / h as hypot3's partials take it (the op over_norm): x·k·(1/(h·k)), k = 2^60 where
    the sum of squares s is at most 2^120, else 2^-60 (see above), so that three
    partials share one reciprocal (hypot3_rows' bits)."""
    x, h, s = _real3(x, h, s)
    if s.size and np.maximum.reduce(s, axis=None) <= _MID_HIGH:   # (NaN fails the test)
        k = x.dtype.type(_K_UP)   # everywhere: one scalar, no selection
        q = np.multiply(x, k, out=np.empty_like(x))
    else:
        q = np.where(s <= _MID_HIGH, _K_UP, _K_DOWN).astype(x.dtype)
        k = q.copy()
        q *= x
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        r = np.multiply(h, k, out=np.empty_like(x))   # (arrays where the arguments are 0-d too)
        np.divide(1.0, r, out=r)
        q *= r   # (in place: fewer temporaries than the formula's five passes)
    return _scalar(q)


def _slope(i: int):
    def slope(x, y, z):
        """(x, y, z)[i] / hypot3(x, y, z), the numerator where hypot3 is 0 (the ops
        hypot3_slope0, 1, 2: hypot3's partials before their guard): over_norm's steps on
        the value h (1 where 0) and the sum of squares s, as its own; backends divide by
        the kernel's h instead where it has one (c_forms.hypot_quotients: the same bits)."""
        x, y, z = _real3(x, y, z)
        h = _hypot3_into(x, y, z, np.empty(x.shape, x.dtype))[0]
        np.copyto(h, 1.0, where=h == 0)
        return over_norm((x, y, z)[i], h, _sum_of_squares(x, y, z, np.empty(x.shape, x.dtype)))
    slope.__name__ = slope.__qualname__ = f"hypot3_slope{i}"
    return _blocked(slope)


hypot3_slope0, hypot3_slope1, hypot3_slope2 = (_slope(i) for i in range(3))


@_blocked
def hypot3_guard(q, h, s):
    """q, 0 where h == 1 and s == 0 (the op hypot3_guard: a norm of 0, which its
    partials take as 1, and its sum of squares)."""
    q, h, s = _real3(q, h, s)
    out = q.copy()
    out[(h == 1.0) & (s == 0.0)] = 0.0
    return _scalar(out)


# logaddexp3: the naive form where every exponent is in [lo, hi]: lo as logaddexp_rows'
# (exps normal, within an ulp), hi = ⌊log(tiny⁻¹ / 3)⌋ (707 in float64): the sum of three
# exps stays below 1/tiny, so 1/s, by which the partials are products, is normal. Else
# every point's exponents are shifted by c, 0 where all three are in range (the naive
# form's bits) and the largest elsewhere (log(s) + c, s in [1, 3]). The stable form
# redoes the points where that is NaN (infinities, NaN) and those out of range where
# |c| < _LOG1P_KEEPS, where log(s) rounding away a term below e^-708 would be a large
# part of the value (as logaddexp_rows'; near a value of 0 the naive form's error, and
# this one's, is absolute: about 2^-53, as that of m + log(s) anywhere).
@functools.lru_cache(maxsize=None)
def _lse_range(dtype) -> tuple[float, float, float]:
    """(lo, hi, z): the naive form's range (above), and z, below which exp gives 0
    (lo and z as logaddexp_rows')."""
    lo, _, zero = _naive_range(dtype)
    return lo, float(math.floor(math.log(1.0 / np.finfo(dtype).tiny / 3.0))), zero


def _lse_rows(a, b, c, v, ps):
    """logaddexp3's value into v and, if `ps` (three arrays), its partials."""
    lo, hi, zero = _lse_range(v.dtype)
    if v.size == 0 or all(np.minimum.reduce(x, axis=None) >= lo and np.maximum.reduce(x, axis=None) <= hi
                          for x in (a, b, c)):
        _naive(a, b, c, v, ps)   # (NaN fails the test)
        return
    m = np.maximum(np.maximum(a, b), c)
    out_of_range = (a < lo) | (b < lo) | (c < lo) | (m > hi)
    with np.errstate(invalid="ignore", over="ignore"):   # -inf - -inf, inf - inf: NaN, redone below
        shift = m * out_of_range   # (±0 in range: a - shift is a)
        shifted = [np.subtract(x, shift, out=np.empty(v.shape, v.dtype)) for x in (a, b, c)]
        _past_exp_zero(shifted, zero)
        _naive(*shifted, v, ps)
        v += shift
    redo = np.isnan(v)
    redo |= out_of_range & (np.abs(m) < _LOG1P_KEEPS)
    if redo.any():
        at = np.flatnonzero(redo)
        got = _stable(*(x.take(at) for x in (a, b, c)))
        for r, g in zip((v,) + tuple(ps or ()), got):
            _scatter(r, at, g)


def _naive(a, b, c, v, ps):
    """log(exp(a) + exp(b) + exp(c)) into v, and exp(x)·(1/s) into ps if given."""
    ea, eb, ec = np.exp(a), np.exp(b), np.exp(c)
    np.add(ea, eb, out=v)
    v += ec
    if ps:
        r = np.divide(1.0, v)
        for e, p in zip((ea, eb, ec), ps):
            np.multiply(e, r, out=p)
    np.log(v, out=v)


def _stable(a, b, c):
    """(value, partials) by the C helper's steps (c_nary): m the first argument equal to
    the largest, big, u and w the two others, s = exp(u - m) + exp(w - m) (u - m taken as
    0 where u == big and u - m is NaN: equal infinities), value m + log1p(s) as log(v) +
    (s - (v - 1))/v with v = 1 + s, partials exp(x - m)/v (1/v for m's argument)."""
    big = np.maximum(np.maximum(a, b), c)
    with np.errstate(invalid="ignore"):
        qa, qb = np.equal(a, big), np.equal(b, big)
        m = np.where(qa, a, np.where(qb, b, big))
        u, w = np.where(qa, b, a), np.where(qa | qb, c, b)
        eu, ew = (np.exp(np.where((t == big) & np.isnan(t - m), 0.0, t - m)) for t in (u, w))
    s = eu + ew
    v = 1.0 + s
    r = 1.0 / v
    with np.errstate(invalid="ignore"):
        value = m + (np.log(v) + (s - (v - 1.0)) * r)
    e = (np.where(qa, 1.0, eu), np.where(qa, eu, np.where(qb, 1.0, ew)), np.where(qa | qb, ew, 1.0))
    return (value,) + tuple(x * r for x in e)


@_blocked
def logaddexp3(a, b, c):
    """log(exp(a) + exp(b) + exp(c)) without overflow or underflow: the naive form where
    it is accurate, the largest exponent taken out elsewhere (see above)."""
    a, b, c = _real3(a, b, c)
    v = np.empty(a.shape, a.dtype)
    _lse_rows(a, b, c, v, None)
    return _scalar(v)


@functools.partial(_blocked, rows=4)
def logaddexp3_rows(a, b, c, out=None):
    """(logaddexp3(a, b, c), and its partials, the softmax of (a, b, c): 1/3 each where
    all three are equal, infinities included) in one call, at the naive form's cost
    where that is accurate (see above). `out`: four arrays."""
    a, b, c = _real3(a, b, c)
    rows = tuple(np.empty(a.shape, a.dtype) for _ in range(4)) if out is None else out
    _lse_rows(a, b, c, rows[0], rows[1:])
    return rows


__all__ = ["hypot3", "hypot3_guard", "hypot3_rows", "hypot3_slope0", "hypot3_slope1", "hypot3_slope2", "logaddexp",
           "logaddexp3", "logaddexp3_rows", "logaddexp_e", "logaddexp_rows", "over_norm"]
