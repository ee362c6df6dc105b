"""The NumPy runtime's elementwise kernels: careful forms of ops NumPy lacks (sigmoid,
softplus, log1mexp, cosm1, sqrt1pm1, ...), cheaper ones for ufuncs that are scalar libm
loops (log1p, expm1, hypot, logaddexp; log1p, expm1 and tanh only on machines where
they are: ufunc_loops.SIMD), and the helpers that share one exp between a value and its
derivative.

Where it sits: part of runtime.py, which re-exports every name here (generated NumPy
code and the op table's evaluators import them from there, so the reference
interpreter and the backend compute the same numbers). The NumPy backend alone calls
log1p and expm1 (numpy_backend.BATCH) and the shared-exp helpers
(numpy_render.shared_exps). The helpers that make several passes run block by block
on large arrays (_blocked).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .ufunc_loops import SIMD

_LN2 = 0.6931471805599453
_BLOCK = 1 << 16   # elements: a block's temporaries (512 KiB each) stay in the caches (2^15, 2^17: no better)


def _blocked(helper):
    """helper(*args), run on blocks of _BLOCK elements (where arrays arrive whole: tensor
    programs and the interpreter; a compiled elementwise function calls the helpers on
    numpy_backend.numpy_runner's blocks of BLOCK points already, below the threshold) where its array arguments are large
    C-contiguous arrays of one shape (the others are scalars), into one new array: the
    helpers below make several passes with temporaries, and on 10⁶ points each full-size
    temporary costs a pass through main memory and its first-touch page faults, which the
    block's temporaries, reused from the cache, do not (value + gradient of the stable
    forms: 25-30% less time). The same numbers: each helper gives a point the same value
    whatever the other points are (a reduction finding no special value in a block only
    skips a fix-up there). A helper with an `out` parameter writes its result there (a
    block of the result, of its arguments' precision); the others' are copied there."""
    takes_out = "out" in inspect.signature(helper).parameters

    @functools.wraps(helper)
    def run(*args, **out):   # a caller's out=: that caller runs by blocks
        big = [a for a in args if isinstance(a, np.ndarray) and a.ndim]
        if out or not big or big[0].size < 2 * _BLOCK or not all(a.shape == big[0].shape and a.flags.c_contiguous
                                                                 for a in big):
            return helper(*args, **out)
        out = np.empty(big[0].shape, dtype=np.result_type(*(a for a in args if a is not None), 1.0))
        flat_out = out.reshape(-1)
        flat = [a.reshape(-1) if isinstance(a, np.ndarray) and a.ndim else a for a in args]
        for start in range(0, out.size, _BLOCK):
            blocks = [a[start:start + _BLOCK] if isinstance(a, np.ndarray) and a.ndim else a for a in flat]
            if takes_out:
                helper(*blocks, out=flat_out[start:start + _BLOCK])
            else:
                flat_out[start:start + _BLOCK] = helper(*blocks)
        return out
    return run


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


# -- one exp for a function and its derivative ---------------------------------------------
# sigmoid and softplus of ±u are computed from E = exp(u), logaddexp(a, b) and its
# derivatives sigmoid(±(a - b)) from e = exp(-|a - b|). Where a trace holds several of
# them of the same u (a value and its gradient), the NumPy backend computes the exp once
# and passes it to these (backends/numpy_render.shared_exps): the exp is most of their cost.
def _real(x, other=1.0):
    return np.asarray(x, dtype=np.result_type(x, other, 1.0))   # float32 stays float32


def _scalar(r):
    return r[()] if r.ndim == 0 else r


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
    with np.errstate(invalid="ignore"):   # inf/inf where E overflowed: set below
        np.divide(E, r, out=r)
    if _overflowed(E):
        np.copyto(r, 1.0, where=np.isposinf(E))
    return r


def sigmoid_neg_of_exp(E, out=None):
    """sigmoid(-u) = 1 / (1 + E) from E = exp(u) (0 where E is inf)."""
    r = _one_plus(E, out)
    return np.divide(1.0, r, out=r)


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


@_blocked
def logaddexp_e(x, y, e, out=None):
    """logaddexp(x, y) from e = exp(-|x - y|): max(x, y) + log1p(e) (np.log1p, as
    softplus_e); x + log 2 at a tie, as NumPy's: at finite ties that is the same sum, at
    equal infinities x - y and e are NaN, which one reduction finds."""
    r = _log1p(e, out=np.empty_like(e) if out is None else out)
    np.add(np.maximum(x, y), r, out=r)
    if np.size(e) and np.isnan(np.maximum.reduce(e, axis=None)):
        tie = np.equal(x, y)
        if np.any(tie):
            np.copyto(r, np.add(x, _LN2), where=tie)
    return r


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
    1/(1 + x) divides by (backends/numpy_render.shared_sums): runtime.log1p's numbers
    (np.log1p's where its loop is SIMD: w is not needed then)."""
    if SIMD["log1p"]:
        return _log1p(x, out=out)
    return _log1p_of_sum(x, w, out=out)


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
    if x.size == 0:
        return out
    lo = np.minimum.reduce(x, axis=None)
    if lo >= _LN2:   # all far above 0 (NaN fails the test): one reduction
        np.exp(x, out=out)
        return _scalar(np.subtract(out, 1.0, out=out))
    hi = np.maximum.reduce(x, axis=None)
    simd = SIMD["expm1"]
    if hi < _LN2 and (simd or lo > -_LN2):   # all on np.expm1's side
        return _scalar(_expm1(x, out=out))
    if simd:
        near = x < _LN2   # NaN is not near: exp(NaN) - 1
    else:
        near = None if hi <= -_LN2 else np.abs(x) < _LN2
    if near is not None and 2 * np.count_nonzero(near) >= x.size:
        _expm1(x, out=out)
        _redo(out, ~near, _exp_minus_1, x)
        return _scalar(out)
    np.exp(x, out=out)
    np.subtract(out, 1.0, out=out)
    if near is not None:
        _redo(out, near, _expm1, x)
    return _scalar(out)


# |x| below it: log1p(x) and expm1(x) round to x itself (x ∓ x²/2 is within half an ulp of x)
_TINY = 2.0 ** -54


def _log1p(x, out=None):
    """np.log1p, with x itself at its tiny points where its loop is SIMD (_tiny_safe)."""
    return _tiny_safe(np.log1p, x, out) if SIMD["log1p"] else np.log1p(x, out=out)


def _expm1(x, out=None):
    """np.expm1, with x itself at its tiny points where its loop is SIMD (_tiny_safe)."""
    return _tiny_safe(np.expm1, x, out) if SIMD["expm1"] else np.expm1(x, out=out)


def _tiny_safe(f, x, out=None):
    """f(x), f np.log1p or np.expm1, with x itself where |x| < _TINY (their value there,
    signed zeros included). NumPy's AVX-512 loops take up to 15 times as long on a
    vector of eight holding such a point (a block of |x| in [2^-700, 2^-500]: 255 µs
    against 18; some bands of tiny |x| only, likely subnormal intermediates), so f sees
    the other points only. One reduction, two for a block of one sign, finds a block
    without them; else a pass and one more (a block of both signs)."""
    x = _real(x)
    if x.ndim == 0 or not x.size:
        return f(x, out=out)
    lo = np.minimum.reduce(x, axis=None)
    if lo >= _TINY:
        return f(x, out=out)
    if lo >= 0:   # some tiny (x is its own size)
        size = x
    else:
        if np.maximum.reduce(x, axis=None) <= -_TINY:
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


def _exp_minus_1(x):
    r = np.exp(x)
    return np.subtract(r, 1.0, out=r)


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
# the naive form is accurate, sqrt1pm1 from x = 1/4 and sech2 where np.tanh is SIMD take
# it (a few ulps from the C helper's there).


@_blocked
def log1mexp(x):
    """log(1 - exp(x)) for x <= 0 (NaN above, -inf at 0), Mächler's two branches:
    log(-expm1(x)) above -log 2, log1p(-exp(x)) below."""
    x = np.asarray(x, dtype=np.result_type(x, 1.0))   # float32 stays float32
    with np.errstate(all="ignore"):
        r = np.where(x > -_LN2, np.log(-_expm1(x)), _log1p(-np.exp(x)))
    return r[()] if r.ndim == 0 else r


@_blocked
def cosm1(x):
    """cos(x) - 1 as -2 sin²(x/2), with no cancellation near the multiples of 2π
    (0.0 - ...: +0.0 at x = 0, as cos(0) - 1 is)."""
    with np.errstate(all="ignore"):
        s = np.sin(np.multiply(0.5, x))
        return 0.0 - 2.0 * (s * s)


def sech2(x):
    """sech(x)² = 1 - tanh(x)², with no cancellation where tanh(x) is near ±1, no
    overflow: sech2_of_tanh(x, np.tanh(x)) where np.tanh's loop is SIMD (ufunc_loops.SIMD:
    the shared form's numbers), else 4w / (1 + w)², w = exp(-2|x|) (the C helper's)."""
    return _sech2_of_own_tanh(x) if SIMD["tanh"] else _sech2_of_own_exp(x)


@_blocked
def _sech2_of_own_tanh(x):
    x = _real(x)
    return sech2_of_tanh(x, np.tanh(x))


@_blocked
def _sech2_of_own_exp(x):
    return sech2_of_exp(exp_neg2abs(x))


# 1 - tanh(x)² at least this (|x| <= 2.06): taken as it is. np.tanh is within an ulp
# here (AVX-512), and 1 - t² magnifies t's error by up to 2/(1 - t²) = 32: within
# 3.1e-15 of the exact value (14 ulps; against mpmath at 4,000 points), where the
# stability catalogue asks 1e-13. The naive derivative's numbers there, at the naive
# form's cost where it is accurate (tanh(x)'s value and gradient on [-2, 2]); a larger
# bound gives fewer ulps at more cost (1/4: 3 ulps, |x| <= 1.32).
_SECH2_NEAR = 1.0 / 16


@_blocked
def sech2_of_tanh(x, t, out=None):
    """sech(x)² from x and t = tanh(x) (np.tanh's, where its loop is SIMD: the NumPy
    backend then computes tanh(x) and its derivative so): 1 - t² where that is at least
    _SECH2_NEAR (one reduction finds a block all so), (1/cosh x)² elsewhere (within
    about two ulps; 0 at ±inf, NaN at NaN), at the other points only where they are few,
    so each point's value is its own, whatever the others."""
    x, t = _real(x), _real(t)
    s = np.square(t, out=np.empty_like(t) if out is None else out)
    np.subtract(1.0, s, out=s)
    if s.size and not np.minimum.reduce(s, axis=None) >= _SECH2_NEAR:   # (NaN fails too)
        far = np.greater_equal(s, _SECH2_NEAR, out=np.empty(s.shape, bool))   # (an array for one point too)
        np.logical_not(far, out=far)
        if 2 * np.count_nonzero(far) >= s.size:
            np.copyto(s, _sech2_cosh(x), where=far)
        else:
            _redo(s, far, _sech2_cosh, x)
    return _scalar(s)


def _sech2_cosh(x):
    """(1/cosh x)²: not 1/cosh², whose cosh² overflows from |x| = 355."""
    with np.errstate(over="ignore"):   # cosh overflows from |x| = 710.5, where sech² is 0
        c = np.cosh(x, out=np.empty_like(x))   # (an array for one point too: out= below)
    np.divide(1.0, c, out=c)
    return np.square(c, out=c)


@_blocked
def exp_neg2abs(x, out=None):
    """w = exp(-2|x|), in [0, 1]: sech2's, and tanh's where |x| is not small (tanh_of_exp)."""
    x = _real(x)
    w = np.abs(x, out=np.empty_like(x) if out is None else out)
    with np.errstate(over="ignore"):   # -2|x| is -inf from |x| = 9e307: exp gives 0
        np.multiply(w, -2.0, out=w)
    return _scalar(np.exp(w, out=w))


@_blocked
def sech2_of_exp(w, out=None):
    """sech(x)² from w = exp(-2|x|) (exp_neg2abs), as 4w / (1 + w)²: the C helper's
    4w / ((1 + w)(1 + w)), one 1 + w."""
    w = _real(w)
    p = np.add(w, 1.0, out=np.empty_like(w))
    np.multiply(p, p, out=p)
    r = np.multiply(w, 4.0, out=np.empty_like(w) if out is None else out)
    return _scalar(np.divide(r, p, out=r))


_TANH_HALF = 1.0 / 3.0   # w = exp(-2|x|) above it: |tanh x| < 1/2


@_blocked
def tanh_of_exp(x, w, out=None):
    """tanh(x) from w = exp(-2|x|) (exp_neg2abs), as ±(1 - w)/(1 + w) where |tanh x| >= 1/2
    (w <= 1/3: no cancellation, within two ulps or so of the exact value; ±1 from
    |x| = 18.4, where w < 2^-53, and at ±inf), np.tanh's own value at the points nearer 0
    (±0 and NaN stay themselves). With sech2_of_exp, tanh(x) and its derivative cost an
    exp, a few passes and np.tanh at the points near 0, where np.tanh alone costs two and
    a half exps. Where those points are most of the block, np.tanh runs on all and the
    others are redone, so each point's value is its own."""
    x, w = _real(x), _real(w)
    r = np.empty_like(w) if out is None else out
    near = None
    if w.size and not np.maximum.reduce(w, axis=None) <= _TANH_HALF:   # some points near 0 (or NaN)
        near = w > _TANH_HALF
        if 2 * np.count_nonzero(near) >= w.size:   # each point's value is its own, whatever the others
            np.tanh(x, out=r)
            _redo(r, ~near, _tanh_far, x, w)
            return _scalar(r)
    _tanh_far(x, w, out=r)
    if near is not None:
        _redo(r, near, np.tanh, x)
    return _scalar(r)


def _tanh_far(x, w, out=None):
    """±(1 - w)/(1 + w) with x's sign."""
    p = np.add(w, 1.0)
    r = np.subtract(1.0, w, out=out)
    np.divide(r, p, out=r)
    return np.copysign(r, x, out=r)


def _redo(r, mask, f, *xs):
    """r[mask] = f(*(x[mask] for x in xs)) (arrays of r's shape), by flat indices: NumPy's
    boolean gather and scatter each cost more than a pass of np.take and np.put together."""
    at = np.flatnonzero(mask)
    r.put(at, f(*(x.take(at) for x in xs)))


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


__all__ = ['sigmoid', 'softplus', 'logaddexp', 'exp_quiet', 'sigmoid_of_exp', 'sigmoid_neg_of_exp', 'softplus_of_exp', 'exp_neg_abs', 'sigmoid_e', 'sigmoid_neg_e', 'softplus_e', 'logaddexp_e', 'log1p', 'log1p_of_sum', 'expm1', 'relu', 'power', 'frac', 'xlogy', 'hypot', 'log1mexp', 'cosm1', 'sech2', 'sech2_of_tanh', 'exp_neg2abs', 'sech2_of_exp', 'tanh_of_exp', 'sqrt1pm1']
