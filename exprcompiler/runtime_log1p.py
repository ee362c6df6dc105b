"""The NumPy runtime's log1p and expm1: np.log1p's and np.expm1's values, cheaper where
NumPy's loops are scalar libm (log with the rounding error of 1 + x; exp(x) - 1 away
from 0), NumPy's own where they are SIMD (ufunc_loops.SIMD), with the guard that keeps
tiny |x| off those SIMD loops' slow path (_tiny_safe); and log(1 - x) from 1 - x
(log1m_of_diff), np.log's where that is within a few ulps.

Where it sits: re-exported by runtime.py; the NumPy backend alone calls log1p, expm1
(numpy_backend.BATCH), log1p_of_sum and log1m_of_diff (numpy_shares.shared_sums),
expm1_pair and neg_expm1_pair (numpy_shares._expm1_pairs); log1p_of_neg is the op
table's reference of log1m_shared, which only C kernels and the VM compute.
runtime_exps.py (softplus), runtime_nary.py (logaddexp) and runtime_elementwise.py
(log1mexp) take _log1p, _expm1 and _log1p_unit from here.
"""

from __future__ import annotations

import functools

import numpy as np

from .runtime_blocks import _LN2, _blocked, _blocked_rows, _real, _redo, _scalar
from .ufunc_loops import SIMD

# (the calls of a generated function's blocks: bound once, not looked up in np each call)
_ndarray, _min, _max, _exp, _log, _log1p_loop = (np.ndarray, np.minimum.reduce, np.maximum.reduce, np.exp, np.log,
                                                 np.log1p)


def _log1p_unit(e, out=None, w=None):
    """log1p(e) for e >= -1 (or NaN) as log(w) - ((w - 1) - e)/w, w = 1 + e: the quotient
    is the rounding error of 1 + e (w - 1 and its difference with e are exact from -1 to
    2^53, Fast2Sum's and Sterbenz's lemma; above, w = e and the error is below an ulp of
    log w), divided by w, so the result is within about an ulp of log1p(e), as
    np.log1p's is, if np.log is correctly rounded (NumPy's AVX-512 loop is an ulp off at
    some w near 1, where |log w| may exceed the result: up to two ulps there); NumPy's
    log loop costs half its log1p's where that is a scalar libm loop. +0 at ±0; NaN at
    e = -1 (0/0) and inf (inf - inf): log1p handles those. In `out` if given; `w`: 1 + e,
    computed by the caller (then left as it is)."""
    r = np.empty_like(e) if out is None else out   # arrays even for one point (out= needs them)
    c = np.empty_like(e)
    if w is None:
        w = np.add(e, 1.0, out=r)
    np.subtract(w, 1.0, out=c)
    np.subtract(c, e, out=c)
    np.divide(c, w, out=c)
    np.log(w, out=r)
    return np.subtract(r, c, out=r)


def log1p(x, out=None):
    """np.log1p's values (within about an ulp, ±0 and the specials exactly): np.log1p
    itself where its loop is SIMD (ufunc_loops.SIMD), else _log1p_of_sum, at 60-80% of
    its cost where |x| > 1/2 (a scalar libm loop, twice np.log's cost there; nearer 0 the
    two cost about the same, and tiny |x| costs libm's log1p less). Each point's value is
    its own, whatever the others."""
    return log1p_of_sum(x, None, out=out)


def log1p_of_sum(x, w, out=None):
    """log1p(x) from w = 1 + x (or x + 1; None: computed here), the w its derivative
    1/(1 + x) divides by (backends/numpy_shares.shared_sums): runtime.log1p's numbers
    (np.log1p's where its loop is SIMD: w is not needed then). (log(w) on a block all
    outside log1m_of_diff's window, within 8.3 ulps there, took log(1 + x) on [0.1, 10]
    from 1.17-1.19x the naive form's time to 1.10-1.12x; but a point's value must not
    depend on its block, so a block with points on both sides would pay log1m_of_diff's
    mask and redo, on data as common as x in [0, 1]: not taken.)"""
    if SIMD["log1p"]:
        # a generated function's block (most calls), with no tiny |x|: np.log1p itself,
        # _tiny_safe's test inline (0.5-1 µs of calls a block fewer)
        if out is None and type(x) is _ndarray and x.ndim and 0 < x.size and x.dtype.char in "fd" \
                and _min(x, axis=None) >= _TINY:   # (NaN fails)
            return _log1p_loop(x)
        return _log1p(x, out=out)
    return _log1p_of_sum(x, w, out=out)


# w = 1 - x outside (15/16, 17/16): |log w| >= 0.06, so log(w) alone, whose error there
# is w's rounding (half an ulp of w) over |log w|, plus np.log's own, is within 8.3 ulps of
# log(1 - x): 2.1e-15, where the stability catalogue asks 1e-13. Nearer 1 the rounding of
# 1 - x is the error log1p is there for. (A wider window, (3/4, 21/16): within 3 ulps, but
# a block with points on both sides pays the mask and the redo: on x in [-10, -0.1] the
# rewrite went from 1.04-1.12x the naive form's time to 1.44-1.57x.)
_W_LOW, _W_HIGH = 0.9375, 1.0625


def _log1m_block(x, w):
    """log1m_of_diff's form for a float array w of its own (_blocked's front): log(w)
    where one reduction finds it all above the window, two all below (the usual block,
    with no steps between: the same bits), else the mixed block's steps."""
    if _min(w, axis=None) >= _W_HIGH or _max(w, axis=None) <= _W_LOW:
        return _log(w)
    return _log1m_mixed(_real(x), w, None)


@_blocked(front=_log1m_block, on=1)
def log1m_of_diff(x, w, out=None):
    """log1p(0.0 - x), that is log(1 - x), from w = 1 - x, the w its derivative
    -1/(1 - x) divides by (numpy_shares.shared_sums: log(1 - x) rewritten): log(w) where
    w is outside (_W_LOW, _W_HIGH) (an ulp or eight from log1p's there: the naive form's
    numbers and cost, with no 0.0 - x), log1p_of_sum(0.0 - x, w)'s numbers at the points
    nearer 1. One reduction finds a block all above, two one all below; else the form of
    most points runs on all and the others are redone, so each point's value is its own,
    whatever the others. +0 at ±0; -inf at x = 1, NaN above it, inf at x = -inf, with
    log1p's warnings (divide, invalid). A float array w of its own takes _log1m_block;
    these steps are the others' (scalars, out=, a large array's blocks)."""
    x, w = _real(x), _real(w)
    r = np.empty_like(w) if out is None else out   # (an array for one point too)
    if w.size and (np.minimum.reduce(w, axis=None) >= _W_HIGH or np.maximum.reduce(w, axis=None) <= _W_LOW):
        return _scalar(np.log(w, out=r))   # (NaN fails both tests)
    return _log1m_mixed(x, w, r)


def _log1m_mixed(x, w, r):
    """log1m_of_diff of a block with points near w = 1 (or NaN), into r (None: a new
    array): the form of most points on all, the others redone."""
    if r is None:
        r = np.empty_like(w)
    # (NaN is not near: log(NaN) is NaN too; an array for one point too, where a ufunc of
    # a 0-d array returns a scalar, which cannot be written in place)
    near = np.greater(w, _W_LOW, out=np.empty(w.shape, dtype=bool))
    near &= np.less(w, _W_HIGH)
    if 2 * np.count_nonzero(near) >= w.size:
        log1p_of_sum(np.subtract(0.0, x), w, out=r)
        _redo(r, np.logical_not(near, out=near), np.log, w)
    else:
        np.log(w, out=r)
        _redo(r, near, lambda xs, ws: log1p_of_sum(np.subtract(0.0, xs), ws), x, w)
    return _scalar(r)


@_blocked
def _log1p_of_sum(x, w, out=None):
    """_log1p_unit, log(1 + x) corrected by the rounding error of 1 + x, with the sign of
    x where it gives 0 (log1p keeps it; that form gives +0 at -0) and np.log1p itself,
    warnings included, wherever it gives NaN (x = -1, inf, below -1, NaN: one reduction
    finds them)."""
    x = _real(x)
    with np.errstate(all="ignore"):   # the NaN cases, redone below
        r = _log1p_unit(x, out, w)
    # A block all of one sign (no zero, no NaN: minimum and maximum propagate it) needs no
    # fix-up: one reduction, where r.all() (1.5x a min/max reduction) and the NaN test were two
    if r.size and (np.minimum.reduce(r, axis=None) > 0 or np.maximum.reduce(r, axis=None) < 0):
        return _scalar(r)
    if not r.all():   # a zero: x is ±0 (one reduction, where copysign costs two passes)
        np.copysign(r, x, out=r)
    if r.size and np.isnan(np.maximum.reduce(r, axis=None)):
        _redo(r, np.isnan(r), np.log1p, x)
    return _scalar(r)


def expm1(x, out=None):
    """np.expm1's values (within about an ulp, ±0 and the specials exactly), at the cost
    of np.exp where x >= log 2: exp(x) - 1 there loses at most a bit (exp(x)/(exp(x) - 1)
    <= 2), np.expm1 at the points below, or only at those nearer 0 where its loop is a
    scalar libm loop (twice exp's cost; ufunc_loops.SIMD: where it is SIMD, 18 µs a block
    against exp's 11 and a subtraction's 3). Each point's value is its own (whatever the
    others): one reduction finds a block all above log 2, two one all on np.expm1's side,
    else the points of the smaller side are redone."""
    x = _real(x)
    out = np.empty_like(x) if out is None else out   # an array even for one point (out= needs one)
    _expm1_into(x, out)
    return _scalar(out)


def _pair_block(negated: bool, x):
    """expm1_pair's (`negated`: neg_expm1_pair's) steps on a float array of its own, no
    out=: exp(x) and the least x, and where every x >= log 2 (NaN fails) exp(x) - 1 (or
    1 - exp(x)) from that exp with no pass of its own; else _pair_into's."""
    e = _exp(x)
    lo = _min(x, axis=None)
    if lo >= _LN2:
        return (np.subtract(1.0, e) if negated else np.subtract(e, 1.0)), e
    return _pair_into(x, None, negated, e, lo)


@_blocked_rows(front=functools.partial(_pair_block, False))
def expm1_pair(x, out=None):
    """(expm1(x), exp(x)): expm1's value and its derivative as the op table writes it,
    expm1's and np.exp's bits (`out`: two arrays). Where expm1 takes exp(x) - 1 (a block
    all at or above log 2, or mostly), the derivative is that exp(x), so it costs no pass
    of its own there. A float array of its own takes _pair_block (_blocked's front);
    these steps are the others'."""
    return _pair_into(x, out, False)


@_blocked_rows(front=functools.partial(_pair_block, True))
def neg_expm1_pair(x, out=None):
    """(0.0 - expm1(x), exp(x)): 1 - exp(x) as the stability rewrite writes it, and the
    exp(x) of its derivative -exp(x), in those bits (`out`: two arrays): expm1_pair with
    1 - exp(x) where expm1 takes exp(x) - 1 (the same bits as 0.0 - (exp(x) - 1): rounding
    to nearest is symmetric, and both are +0 at exp(x) = 1), so neither the negation nor
    the expm1 costs a pass there (1 - exp(x) on [1, 10]: the naive form's passes). A float
    array of its own takes _pair_block, as expm1_pair's."""
    return _pair_into(x, out, True)


def _pair_into(x, out, negated: bool, exp=None, lo=None):
    """expm1_pair's and neg_expm1_pair's rows (`negated`: the latter's). exp(x) first (the
    slope row, which every form needs), then the least x (from the cache then): a block
    all at or above log 2 takes exp(x) - 1 from that exp, one subtraction and no other
    step; the others _expm1_into's forms, with exp(x) - 1 from it too (the same bits:
    np.exp gives a point the same value in any array). The usual block's steps are
    _pair_block's, _blocked's front: value and gradient of exp(x) - 1 on 10⁶
    points of [1, 10] went from 1.16-1.23x the naive form's time to 1.13-1.15x (medians
    of alternated runs, load 10); what is left is the reduction (2.6 µs a block of
    16,384 in cache, against the naive form's ~35) and the call. `exp` and `lo`:
    np.exp(x) and x's least point, where the caller (_pair_block) has them."""
    x = _real(x)
    if out is not None:
        value, slope = out
        np.exp(x, out=slope)
    elif exp is not None or x.ndim:
        value, slope = None, np.exp(x) if exp is None else exp
    else:   # (arrays for one point too)
        value, slope = np.empty_like(x), np.empty_like(x)
        np.exp(x, out=slope)
    if lo is None and x.size:
        lo = np.minimum.reduce(x, axis=None)
    if lo is not None and lo >= _LN2:   # (NaN fails the test)
        return _minus_1(slope, value, negated), slope
    if value is None:
        value = np.empty_like(x)
    _expm1_into(x, value, None, negated, lo, exp=slope)
    return value, slope


def _expm1_into(x, out, e=None, negated: bool = False, lo=None, exp=None) -> bool:
    """expm1's value into `out` (0.0 - expm1(x), `negated`); where it computes exp(x) at
    every point on the way (as exp(x) - 1 there, expm1's at some points redone), into
    `e` as well if given, and True (`e` is then np.exp(x)'s bits). `lo`: x's least
    point, where the caller has it; `exp`: np.exp(x), where the caller has it (then
    exp(x) - 1 is taken from it, and `e` is not filled)."""
    if x.size == 0:
        return False
    if lo is None:
        lo = np.minimum.reduce(x, axis=None)
    if lo >= _LN2:   # all far above 0 (NaN fails the test): one reduction
        if exp is not None:
            _minus_1(exp, out, negated)
            return False
        _exp_minus_1(x, out, e, negated)
        return e is not None
    hi = np.maximum.reduce(x, axis=None)
    simd = SIMD["expm1"]
    known = (lo, hi)   # bounds of every point's x: _expm1's guard needs no reduction of its own

    def near_side(some, out=None):
        r = _expm1(some, out=out, bounds=known)
        return np.subtract(0.0, r, out=r) if negated else r

    if hi < _LN2 and (simd or lo > -_LN2):   # all on np.expm1's side
        near_side(x, out)
        return False
    if simd:
        near = x < _LN2   # NaN is not near: exp(NaN) - 1
    else:
        near = None if hi <= -_LN2 else np.abs(x) < _LN2
    if near is not None and 2 * np.count_nonzero(near) >= x.size:
        near_side(x, out)
        if exp is not None:
            _redo(out, ~near, lambda some: _minus_1(some, None, negated), exp)
        else:
            _redo(out, ~near, lambda some: _exp_minus_1(some, negated=negated), x)
        return False
    if exp is not None:
        _minus_1(exp, out, negated)
        e = None
    else:
        _exp_minus_1(x, out, e, negated)
    if near is not None:
        _redo(out, near, near_side, x)
    return e is not None


# |x| below it: log1p(x) and expm1(x) round to x itself (x ∓ x²/2 is within half an ulp of x)
_TINY = 2.0 ** -54


def _log1p(x, out=None, bounds=None):
    """np.log1p, with x itself at its tiny points where its loop is SIMD (_tiny_safe)."""
    return _tiny_safe(np.log1p, x, out, bounds) if SIMD["log1p"] else np.log1p(x, out=out)


def _expm1(x, out=None, bounds=None):
    """np.expm1, with x itself at its tiny points where its loop is SIMD (_tiny_safe)."""
    return _tiny_safe(np.expm1, x, out, bounds) if SIMD["expm1"] else np.expm1(x, out=out)


def _tiny_safe(f, x, out=None, bounds=None):
    """f(x), f np.log1p or np.expm1, with x itself where |x| < _TINY (their value there,
    signed zeros included). NumPy's AVX-512 loops take up to 15 times as long on a
    vector of eight holding such a point (a block of |x| in [2^-700, 2^-500]: 255 µs
    against 18; some bands of tiny |x| only, likely subnormal intermediates), so f sees
    the other points only. One reduction, two for a block of one sign, finds a block
    without them (none where the caller passes `bounds`, (lo, hi) with lo <= x <= hi at
    every point, reductions it made already, of x or of a block x is part of); else a
    pass and one more (a block of both signs)."""
    x = _real(x)
    if x.ndim == 0 or not x.size:
        return f(x, out=out)
    lo, hi = (np.minimum.reduce(x, axis=None), None) if bounds is None else bounds
    if lo >= _TINY:
        return f(x, out=out)
    if lo >= 0:   # some tiny (x is its own size)
        size = x
    else:
        if hi is None:
            hi = np.maximum.reduce(x, axis=None)
        if hi <= -_TINY:
            return f(x, out=out)
        size = np.abs(x)
        if np.minimum.reduce(size, axis=None) >= _TINY:   # (NaN fails, to no harm)
            return f(x, out=out)
    keep = np.greater_equal(size, _TINY, out=np.empty(x.shape, bool))   # (NaN is not kept: f(NaN) is NaN anyway)
    kept = np.count_nonzero(keep)
    if 16 * kept >= 15 * x.size:   # a few tiny points: put back one by one
        at = np.flatnonzero(np.logical_not(keep, out=keep))
        y = x.copy()
        y.put(at, 0.0)
        r = f(y, out=out)
        r.put(at, x.take(at))
        return r
    if 16 * kept <= x.size:   # a few others: f at those alone
        r = x.copy() if out is None else (np.copyto(out, x) or out)
        _redo(r, keep, f, x)
        return r
    # Many of both: without a select, whose branches a random mask mispredicts (np.where,
    # put and copyto(where=) took 23-56 µs a block): f(x kept, or ±0) + (x clipped to
    # ±_TINY, or ±0), the two terms' sum exact (one is ±0), x's signed zero included.
    r = f(np.multiply(x, keep), out=out)
    np.logical_not(keep, out=keep)
    small = np.clip(x, -_TINY, _TINY)
    return np.add(r, np.multiply(small, keep, out=small), out=r)


def _minus_1(r, out=None, negated: bool = False):
    """r - 1 (1 - r, `negated`), in `out` or a new array: exp(x) - 1 from exp(x)."""
    return np.subtract(1.0, r, out=out) if negated else np.subtract(r, 1.0, out=out)


def _exp_minus_1(x, out=None, e=None, negated: bool = False):
    """exp(x) - 1 (1 - exp(x), `negated`), in `out` (or a new array), with exp(x) left in
    `e` if given."""
    r = np.exp(x, out=out if e is None else e)
    target = r if out is None else out
    return np.subtract(1.0, r, out=target) if negated else np.subtract(r, 1.0, out=target)


def log1p_of_neg(x):
    """log1p(0.0 - x): the reference of the op log1m_shared, which C kernels and the VM
    compute in place of log1p(0.0 - x) (c_backend.c_forms); NumPy never meets it."""
    return np.log1p(np.subtract(0.0, _real(x)))


__all__ = ["expm1", "expm1_pair", "log1m_of_diff", "log1p", "log1p_of_neg", "log1p_of_sum", "neg_expm1_pair"]
