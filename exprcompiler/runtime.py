"""Numerically careful NumPy kernels for ops NumPy lacks.

Used by the op table's evaluators (so the reference interpreter uses them) and
imported by generated NumPy code, so both compute exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

from .shapes import insert_axes
from .special import digamma, erf, erfc, gamma, lgamma, polygamma  # noqa: F401 (generated code imports them here)

_LN2 = 0.6931471805599453


def sigmoid(x):
    """1 / (1 + exp(-x)) with one exp and no overflow warning, as E / (1 + E), E = exp(x):
    sigmoid_of_exp. Accurate wherever the result is a normal float (E/(1 + E) rounds
    twice; 1 from x = 36.7, where E > 2^53; E itself below -36.7), 1 from x = 709.79,
    where E overflows (the C helper xc_sigmoid takes exp(-|x|): the two differ by an ulp
    or two)."""
    return _scalar(sigmoid_of_exp(exp_quiet(x)))


def softplus(x):
    """log(1 + exp(x)) without overflow, as log1p(exp(x)) (_log1p_unit's correction; x
    where exp(x) overflows): softplus_of_exp. np.logaddexp(0, x) computes
    max(x, 0) + log1p(exp(-|x|)) in a scalar loop that costs as much as exp and log1p
    together; the C helper xc_softplus takes that form."""
    x = _real(x)
    return _scalar(softplus_of_exp(x, exp_quiet(x)))


def logaddexp(x, y):
    """log(exp(x) + exp(y)) as max(x, y) + log1p(exp(-|x - y|)) (x + log 2 at a tie), the
    C helper xc_logaddexp's steps but for _log1p_unit: np.logaddexp computes the same in
    a scalar libm loop, about 2.5 times the cost (logaddexp_e)."""
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


def _one_plus(E):
    """1 + E in a new array (one even for a single point: out= needs one)."""
    r = np.empty_like(E)
    return np.add(E, 1.0, out=r)


def sigmoid_of_exp(E):
    """sigmoid(u) = E / (1 + E) from E = exp(u) (exp_quiet); 1 where E is inf."""
    r = _one_plus(E)
    with np.errstate(invalid="ignore"):   # inf/inf where E overflowed: set below
        np.divide(E, r, out=r)
    if _overflowed(E):
        np.copyto(r, 1.0, where=np.isposinf(E))
    return r


def sigmoid_neg_of_exp(E):
    """sigmoid(-u) = 1 / (1 + E) from E = exp(u) (0 where E is inf)."""
    r = _one_plus(E)
    return np.divide(1.0, r, out=r)


def softplus_of_exp(u, E):
    """softplus(u) = log1p(E) from E = exp(u) (_log1p_unit: for E > 2^53 its correction is
    0 and log(E) is u to an ulp); u where E is inf."""
    with np.errstate(invalid="ignore"):   # inf - inf where E overflowed: set below
        r = _log1p_unit(E)
    if _overflowed(E):
        np.copyto(r, u, where=np.isposinf(E))
    return r


def exp_neg_abs(x):
    """exp(-|x|), in (0, 1] (no overflow): the e of sigmoid_e, softplus_e and logaddexp_e
    (of x - y)."""
    return _exp_neg_abs(_real(x))


def _exp_neg_abs(x):
    """exp(-|x|), in one new array."""
    e = np.empty_like(x)
    np.abs(x, out=e)
    np.negative(e, out=e)
    return np.exp(e, out=e)


def sigmoid_e(x, e):
    """sigmoid(x) from e = exp(-|x|): the numerator is max(e, x >= 0), 1 from x >= 0
    (e <= 1; e = 1 at ±0), e below 0, NaN at NaN (e is NaN there); two passes (the
    comparison written as 0.0/1.0 straight away: np.sign takes twice as long), where a
    masked copy was three. e is left as it is."""
    r = np.empty_like(e)   # x's shape: e is exp(-|x|)
    np.greater_equal(x, 0.0, out=r)
    np.maximum(e, r, out=r)
    return np.divide(r, np.add(e, 1.0), out=r)


def softplus_e(x, e):
    """softplus(x) from e = exp(-|x|): max(x, 0) + log1p(e)."""
    r = _log1p_unit(e)
    return np.add(np.maximum(x, 0.0), r, out=r)


def logaddexp_e(x, y, e):
    """logaddexp(x, y) from e = exp(-|x - y|): max(x, y) + log1p(e); x + log 2 at a tie,
    as NumPy's (equal infinities stay themselves, where x - y is NaN)."""
    r = _log1p_unit(e)
    np.add(np.maximum(x, y), r, out=r)
    tie = np.equal(x, y)
    if np.any(tie):
        np.copyto(r, np.add(x, _LN2), where=tie)
    return r


def _log1p_unit(e):
    """log1p(e) for e in [0, 1] (or NaN) as log(w) - ((w - 1) - e)/w, w = 1 + e: the
    quotient is the rounding error of 1 + e (w - 1 and its difference with e are exact),
    divided by w, so the result is within about an ulp of log1p(e), as np.log1p's is;
    NumPy's log loop costs 40% of its log1p's here."""
    w, c = np.empty_like(e), np.empty_like(e)   # arrays even for one point (out= needs them)
    np.add(e, 1.0, out=w)
    np.subtract(w, 1.0, out=c)
    np.subtract(c, e, out=c)
    np.divide(c, w, out=c)
    np.log(w, out=w)
    return np.subtract(w, c, out=w)


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


def hypot(x, y):
    """sqrt(x² + y²) without overflow or underflow, for the NumPy backend's batch code:
    np.hypot's loop is scalar libm (4x the cost of exp here), so the sum of squares is
    used where it is exact to rounding (x² + y² normal and finite, so the larger square
    keeps all its digits), np.hypot at the other points only (at every point when they
    are most, as over a range of extremes): within about an ulp of
    the exact value (np.hypot within one); hypot(inf, nan) is inf, as np.hypot's."""
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
            return np.hypot(x, y)[()] if r.ndim == 0 else np.hypot(x, y)
        bad = ~ok
        xb, yb = np.broadcast_to(x, r.shape), np.broadcast_to(y, r.shape)
        r[bad] = np.hypot(xb[bad], yb[bad])
    return r[()] if r.ndim == 0 else r


# -- stable forms the stability rewrites use (exprcompiler/stability) ---------------------
# Each is what the C helper of the same name computes (backends/c_special.py), the same
# operations in the same order, so the two backends agree to libm's last bits.


def log1mexp(x):
    """log(1 - exp(x)) for x <= 0 (NaN above, -inf at 0), Mächler's two branches:
    log(-expm1(x)) above -log 2, log1p(-exp(x)) below."""
    x = np.asarray(x, dtype=np.result_type(x, 1.0))   # float32 stays float32
    with np.errstate(all="ignore"):
        r = np.where(x > -_LN2, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    return r[()] if r.ndim == 0 else r


def cosm1(x):
    """cos(x) - 1 as -2 sin²(x/2), with no cancellation near the multiples of 2π
    (0.0 - ...: +0.0 at x = 0, as cos(0) - 1 is)."""
    with np.errstate(all="ignore"):
        s = np.sin(np.multiply(0.5, x))
        return 0.0 - 2.0 * (s * s)


def sech2(x):
    """sech(x)² = 1 - tanh(x)² as 4w / (1 + w)², w = exp(-2|x|): no cancellation where
    tanh(x) is near ±1, no overflow."""
    with np.errstate(all="ignore"):
        w = np.exp(-2.0 * np.abs(x))
        p = 1.0 + w
        return 4.0 * w / (p * p)   # as the C helper's 4w / ((1 + w)(1 + w)), one 1 + w


def sqrt1pm1(x):
    """sqrt(1 + x) - 1 as x / (sqrt(1 + x) + 1), with no cancellation for small x
    (inf at inf, where that quotient is inf/inf)."""
    x = np.asarray(x, dtype=np.result_type(x, 1.0))   # float32 stays float32
    with np.errstate(all="ignore"):
        r = np.empty_like(x)   # an array even for one point (out= needs one)
        np.add(x, 1.0, out=r)
        np.sqrt(r, out=r)
        np.add(r, 1.0, out=r)
        np.divide(x, r, out=r)
        inf = x == np.inf
        if np.any(inf):
            r = np.where(inf, x, r)
    return r[()] if r.ndim == 0 else r

# -- tensor ops ---------------------------------------------------------------------------
def _axes(axis):
    return (axis,) if isinstance(axis, int) else axis


def broadcast_to(x, ref, axis=None):
    """x broadcast to the shape of `ref` (after inserting the axes `axis` removed)."""
    shape = np.shape(ref)
    x = np.asarray(x)
    if axis is not None:
        x = x.reshape(insert_axes(x.shape, axis, len(shape)))
    return np.broadcast_to(x, shape)


def sum_to(c, ref, axis=None):
    """c summed down to the shape of `ref`: the adjoint of broadcasting (`axis`: axes
    that `ref` lacks altogether, as a reduction removed them)."""
    shape = np.shape(ref)
    c = np.asarray(c)
    if axis is None and shape == ():
        return np.sum(c)  # the common case: a scalar's adjoint
    axis = _axes(axis)
    target = insert_axes(shape, axis, len(shape) + (len(axis) if axis is not None else 0))
    lead = c.ndim - len(target)
    axes = tuple(range(lead)) + tuple(lead + k for k, d in enumerate(target)
                                      if d == 1 and c.shape[lead + k] != 1)
    if axes:
        c = np.sum(c, axis=axes, keepdims=True)
    return c.reshape(shape)


def size_ratio(x, out):
    """Elements of x per element of out: the count a mean divides by, a NumPy scalar
    (dividing by it, 1/0 is inf) of x's precision (a float64 one would make a float32
    function's adjoints float64 from there on)."""
    ratio = np.size(x) / max(np.size(out), 1)
    return np.float32(ratio) if getattr(x, "dtype", None) == np.float32 else np.float64(ratio)


def _key(key):
    return tuple(k if isinstance(k, int) else slice(*k) for k in key)


def index(x, key):
    return np.asarray(x)[_key(key)]


def scatter(g, ref, key):
    """An array of zeros shaped like `ref` with `g` at `ref[key]`: the adjoint of
    indexing (constant indices never repeat, so assignment is accumulation)."""
    out = np.zeros(np.shape(ref))
    out[_key(key)] = g
    return out


def stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def concatenate(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) without overflow: the maximum is taken out first."""
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis) if axis is not None else r.reshape(())


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, the maximum taken out first."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def norm(x):
    """The 2-norm of all elements (Frobenius for a matrix)."""
    return np.sqrt(np.sum(np.square(x)))


def _comparison(ufunc, symbol):
    def compare(x, y):  # 0/1 of x's precision: float32 masks keep float32 adjoints float32
        return np.multiply(ufunc(x, y), 1.0, dtype=getattr(x, "dtype", None))
    compare.__doc__ = f"1.0 where x {symbol} y, else 0.0 (traces hold conditions as floats)"
    return compare


lt, le = _comparison(np.less, "<"), _comparison(np.less_equal, "<=")
gt, ge = _comparison(np.greater, ">"), _comparison(np.greater_equal, ">=")
eq, ne = _comparison(np.equal, "=="), _comparison(np.not_equal, "!=")


def where(c, x, y):
    """x where c is nonzero, else y (conditions are 0/1 floats in traces)."""
    return np.where(np.not_equal(c, 0.0), x, y)


def where_rare(c, x, y):
    """np.where(c, x, y) for a boolean c that is mostly False and a y that is the caller's
    own new array (generated code passes an arithmetic result): y itself where c holds
    nowhere (one reduction, where np.where is a pass and a new array), else np.where."""
    if isinstance(y, np.ndarray) and y.ndim and np.shape(c) == y.shape and _fits(x, y) and not c.any():
        return y
    return np.where(c, x, y)


def _fits(x, y) -> bool:
    """Whether np.where(c, x, y) has y's dtype and shape (c of y's shape)."""
    if type(x) is float:   # a constant: NumPy takes y's precision
        return True
    return getattr(x, "dtype", None) == y.dtype and np.broadcast_shapes(np.shape(x), y.shape) == y.shape


def reshape(x, shape):
    return np.reshape(x, shape)
