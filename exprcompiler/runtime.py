"""Numerically careful NumPy kernels for ops NumPy lacks, and cheaper ones for some it has.

Used by the op table's evaluators (so the reference interpreter uses them) and
imported by generated NumPy code, so both compute exactly the same numbers. The
elementwise kernels live in runtime_elementwise.py, runtime_exps.py (sigmoid, softplus
and their shared-exp helpers), runtime_log1p.py (log1p, expm1), runtime_tanh.py (sech2
and the tanh forms) and runtime_nary.py (logaddexp, hypot3, logaddexp3 and their rows
helpers), all re-exported here, the one name space
generated code imports from; this module holds the tensor ops.
"""

from __future__ import annotations

import math

import numpy as np

from .runtime_elementwise import *  # noqa: F401,F403 (generated code imports them from here)
from .runtime_exps import *  # noqa: F401,F403
from .runtime_log1p import *  # noqa: F401,F403
from .runtime_tanh import *  # noqa: F401,F403
from .runtime_nary import *  # noqa: F401,F403
from .runtime_xlogy import *  # noqa: F401,F403
from .shapes import insert_axes
from .special import digamma, erf, erfc, gamma, lgamma, polygamma  # noqa: F401 (generated code imports them here)

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


def _floating(a):
    """a, as float64 where it holds integers (what np.exp of it would return)."""
    return a if a.dtype.kind in "fc" else a.astype(np.float64)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) without overflow: the maximum is taken out first."""
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = _floating(x - m)
    np.exp(e, out=e)   # (in place: a fresh array's page faults cost as much as exp)
    r = np.log(np.sum(e, axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis) if axis is not None else r.reshape(())


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, the maximum taken out first."""
    x = np.asarray(x)
    e = _floating(x - np.max(x, axis=axis, keepdims=True))
    # in place, the same operations: each fresh array of 10^5 elements cost its page
    # faults, about an exp's time (softmax of 10^5 elements 600-680 -> 176 us)
    np.exp(e, out=e)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def log_softmax(x, axis=-1):
    """log(softmax(x)) along `axis` as (x - c) - log1p(T): c the maximum at the first
    place k attaining it, T the sum of exp(x - c) over the other places (the others'
    share, not rounded into 1 + T: -log1p(T) keeps its digits at k as k dominates, and
    a lane whose softmax underflows stays finite). At k itself x - c is taken as 0, so
    a single +inf gives 0 there and -inf elsewhere (the limits); NaN, two +infs or
    all -inf give NaN. The C kernel (c_tensor_ops.emit_log_softmax) finds the single
    maximum by counting, not by its place, and at ties takes T as the whole sum less 1:
    the same values (at ties, to rounding)."""
    x = np.asarray(x)
    if x.ndim == 1:   # the common case: scalars, no index arrays (4 µs at n = 10)
        k = int(np.argmax(x))
        c = x[k]
        d = x - c
        d[k] = 0.0 if c == c else c
        e = np.exp(d)
        e[k] = 0.0
        d -= np.log1p(np.add.reduce(e))   # (in place: a new array's page faults cost as much as exp)
        return d
    k = np.expand_dims(np.argmax(x, axis=axis), axis)
    c = np.take_along_axis(x, k, axis)
    d = x - c
    np.put_along_axis(d, k, np.where(c == c, 0.0, c), axis)
    e = np.exp(d)
    np.put_along_axis(e, k, 0.0, axis)
    d -= np.log1p(np.add.reduce(e, axis=axis, keepdims=True))
    return d


def _exps_and_sums(x, out, axis):
    """(e, S) of log_softmax's adjoint and tangent: e = exp(x - max) along `axis` and S
    its sum; where S is NaN (a NaN, or a single +inf: then every s of the slice is NaN)
    e from s's limit relu(out + 1), over 1, and S 1."""
    e = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    np.exp(e, out=e)   # (one array, written in place: each new one cost as much as exp at 10^5)
    total = np.add.reduce(e, axis=axis, keepdims=True)
    bad = total != total
    if bad.any():
        e = np.where(bad, np.maximum(np.asarray(out) + 1.0, 0.0), e)
        total = np.where(bad, 1.0, total)
    return e, total


def log_softmax_vjp(x, out, g, axis=-1):
    """log_softmax's adjoint g - s·sum(g) along `axis`, s = softmax(x) (its limit
    relu(out + 1) where it is NaN: a single +inf), at an element whose s exceeds 1/2
    minus the sum of the others' (tensor_rules.vjp_log_softmax, which makes this op:
    its steps, in fewer passes; s·sum(g) as e·(sum(g)/S), e = exp(x - max) and S their
    sum, a multiplication an element where there was a division too). Such an element
    exists in a slice only where 1/S > 1/2 (every s is at most 1/S): S < 2 (NaN s: S
    taken as 1); elsewhere no mask is made."""
    x, g = np.asarray(x), np.asarray(g)
    if x.ndim == 1 and g.shape == x.shape and g.dtype == x.dtype:   # scalars: half the calls (n = 10)
        e = x - x.max()
        np.exp(e, out=e)
        total = np.add.reduce(e)
        if total != total:
            e, total = np.maximum(np.asarray(out) + 1.0, 0.0), total.dtype.type(1.0)
        top = e > 0.5 * total if total < 2.0 else None
        e *= np.add.reduce(g) / total
        a = np.subtract(g, e, out=e)
        if top is not None and top.any():
            a[top] = -np.add.reduce(np.where(top, 0.0, a))
        return a
    e, total = _exps_and_sums(x, out, axis)
    top = e > 0.5 * total if (total < 2.0).any() else None   # (s > 1/2; S/2 is exact)
    e *= np.add.reduce(g, axis=axis, keepdims=True) / total   # s·G as e·(G/S): one pass
    a = np.subtract(g, e, out=e) if e.dtype == np.result_type(g, e) and e.shape == np.shape(g) else g - e
    if top is None:
        return a
    return np.where(top, -np.add.reduce(np.where(top, 0.0, a), axis=axis, keepdims=True), a)


def log_softmax_jvp(x, out, t, axis=-1):
    """log_softmax's tangent t - sum(s·t) along `axis` (tensor_rules_softmax.jvp_log_
    softmax, which makes this op), s = softmax(x) (its limit relu(out + 1) where it is
    NaN), as d - sum(s·d) with d = t - t_top where an element's s exceeds 1/2 (the
    same, J = I - 1·sᵀ sends 1 to 0): the dominant element's d is 0, where t_top -
    s_top·t_top cancels as s_top nears 1. Such an element exists only where S < 2
    (S the sum of exp(x - max)); the test is e > S/2 (S/2 exact), as log_softmax_vjp's."""
    x, t = np.asarray(x), np.asarray(t)
    e, total = _exps_and_sums(x, out, axis)
    if (total < 2.0).any():   # t_top summed where it is (no array of where(top, t, 0))
        t = t - np.add.reduce(t, axis=axis, keepdims=True, where=e > 0.5 * total, initial=0.0)
    if axis is None or axis in (-1, x.ndim - 1):
        e *= t
        dot = np.add.reduce(e, axis=axis, keepdims=True)
        dot /= total   # sum(s·d) as sum(e·d)/S, as the C loops: no division an element
        if not np.isfinite(dot).all():
            # sum(e·d) overflowed (|d| ~ 1e308: -inf where the exact value is 0), or d
            # holds an inf or NaN: there sum(s·d), as the C rows do (and any other axis)
            e = _exps_and_sums(x, out, axis)[0]
            e /= total
            e *= t
            dot = np.where(np.isfinite(dot), dot, np.add.reduce(e, axis=axis, keepdims=True))
    else:   # as the C loops along another axis (c_tensor_softmax._normalize): s = e/S, then
        e /= total   # sum(s·d), which stays finite where sum(e·d) overflows (|d| ~ 1e308)
        e *= t
        dot = np.add.reduce(e, axis=axis, keepdims=True)
    return np.subtract(t, dot)


def log_softmax_at_parts(x, key, axis=0):
    """What log_softmax(x)[k] of a vector and its gradient share (the stability rules
    write that pick so: softmax_forms.build_log_softmax): softmax(x), one exp pass, with
    element k replaced by log_softmax(x)[k], computed as runtime.log_softmax computes it
    (its bits); with several keys (softmax_forms.share_picks: picks of one vector) each
    element k of `key` so. log_softmax_at reads them; log_softmax_at_vjp the others, s_j.
    (Method calls and no new array but d: at n = 10 each NumPy call is most of the cost.)"""
    x = np.asarray(x)
    k = key[0]
    m = int(x.argmax())
    c = x[m]
    d = _floating(x - c)
    d[m] = 0.0 if c == c else c
    dk = d[k] if len(key) == 1 else [d[j] for j in key]   # (a fancy index cost 2 µs a call)
    np.exp(d, out=d)
    d[m] = 0.0
    total = np.add.reduce(d)   # T, the others' share
    if c == c:
        d[m] = 1.0   # exp(0); a single +inf gives its limit, s = 1 there and 0 elsewhere
    if len(key) == 1:
        value = dk - np.log1p(total)
        d *= 1.0 / (total + 1.0)   # (as the C loop: a division an element cost 0.6 ns there)
        d[k] = value
        return d
    lg = np.log1p(total)
    d *= 1.0 / (total + 1.0)
    for j, dj in zip(key, dk):
        d[j] = dj - lg
    return d


def log_softmax_at(x, parts, key):
    """log_softmax(x)[k], read from log_softmax_at_parts(x) (x only for its derivative);
    with several keys the vector of them, in key's order."""
    return parts[key[0]] if len(key) == 1 else parts[list(key)]


def _key_sum(gs: list) -> float:
    """G, the sum of one adjoint (or tangent) per key, left to right as the C loops."""
    total = gs[0]
    for x in gs[1:]:
        total += x
    return total


def log_softmax_at_vjp(parts, g, key):
    """log_softmax(x)[k]'s adjoint g·(δ_k - s) from parts = log_softmax_at_parts(x): off
    k, 0 - g·s_j (+0 where s_j is 0, as the dense adjoint gives); at k, from the value v
    = log s_k there, 0 - g·expm1(v): 1 - s_k with the digits it has as s_k nears 1
    (relative error ~ε for v of ~ε relative error), NaN where v is NaN, and no pass over
    the others (their sum was one). One pass over parts. With several keys (g one per
    key) the sum of their adjoints, G·(the one-key form) less at each key k_i the other
    keys' share (G - g_i)·s_k: still one pass."""
    if len(key) == 1:
        k = key[0]
        a = np.multiply(parts, g)
        np.subtract(0.0, a, out=a)
        a[k] = 0.0 - g * np.expm1(parts[k])
        return a
    gs = np.asarray(g, dtype=np.float64).tolist()
    total = _key_sum(gs)
    a = np.multiply(parts, total)
    np.subtract(0.0, a, out=a)
    for k, gk in zip(key, gs):   # (scalars, libm's as the C loop's: fancy indexing cost 9 µs)
        v = float(parts[k])
        a[k] = (0.0 - gk * math.expm1(v)) - (total - gk) * math.exp(v)
    return a


def _off_keys_dot(parts, t, key) -> float:
    """sum(s_j·t_j) over the elements not in key (sorted), one dot per stretch between
    keys (_dot): no copy of parts or t."""
    t = np.asarray(t)
    if t.shape != parts.shape:
        t = np.broadcast_to(t, parts.shape)
    out, start = 0.0, 0
    for k in key:
        if k > start:
            out += _dot(parts[start:k], t[start:k])
        start = k + 1
    return out + _dot(parts[start:], t[start:]) if start < len(parts) else out


def _dot(a, b) -> float:
    """a·b of two vectors: BLAS's dot up to 8192 elements (one thread there), einsum's
    loop above, where OpenBLAS starts threads: on a loaded machine they made a dot of
    10^5 cost 1-15 ms, where einsum's took 0.05-0.2."""
    return np.dot(a, b) if len(a) <= 8192 else np.einsum("i,i->", a, b)


def log_softmax_at_jvp(parts, t, key):
    """log_softmax(x)[k]'s tangent t_k - sum(s·t) from parts = log_softmax_at_parts(x),
    as -expm1(v)·t_k less the others' s·t (1 - s_k from the value v there, with its
    digits as s_k nears 1): one pass (a dot over the other elements), where sum(the
    adjoint at 1 times t) took three. With several keys, the vector of them, each
    less the other keys' exp(v)·t too."""
    t = np.asarray(t)
    off = _off_keys_dot(parts, t, key)
    if len(key) == 1:
        k = key[0]
        return (0.0 - np.expm1(parts[k]) * (t[k] if t.shape else t)) - off
    tk = [float(t[k] if t.shape else t) for k in key]
    v = [float(parts[k]) for k in key]
    q = [math.exp(vk) * tkk for vk, tkk in zip(v, tk)]
    qsum = _key_sum(q)
    return np.array([(0.0 - math.expm1(vk) * tkk) - (off + (qsum - qk)) for vk, tkk, qk in zip(v, tk, q)])


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
    own new array (an arithmetic result) or one that only arithmetic reads after this
    (numpy_render's lent wheres): y itself where c holds nowhere (one reduction, where
    np.where is a pass and a new array), else np.where."""
    if isinstance(y, np.ndarray) and y.ndim and np.shape(c) == y.shape and _fits(x, y) and not c.any():
        return y
    return np.where(c, x, y)


def where_rare_kept(c, p):
    """np.where(c, np.where(p == p, p + 0.0, 0.0), p) for a boolean c that is mostly False
    and a p that is the caller's own new float array, read by nothing else: p itself
    where c holds nowhere (one reduction); else p with the points where c holds set to
    p + 0.0 (0.0 where p is NaN), computed at those points only. The + 0.0 is the
    trace's: it keeps p's derivative for the second-order code, and turns -0.0 into 0.0."""
    if (isinstance(c, np.ndarray) and isinstance(p, np.ndarray) and p.ndim and c.shape == p.shape
            and c.dtype == np.bool_ and p.dtype.kind == "f"):
        if not c.any():
            return p
        q = p[c]
        q += 0.0
        q[q != q] = 0.0
        p[c] = q
        return p
    return np.where(c, np.where(p == p, p + 0.0, 0.0), p)


def _fits(x, y) -> bool:
    """Whether np.where(c, x, y) has y's dtype and shape (c of y's shape)."""
    if type(x) is float:   # a constant: NumPy takes y's precision if y is a float array
        return y.dtype.kind == "f"
    return getattr(x, "dtype", None) == y.dtype and np.broadcast_shapes(np.shape(x), y.shape) == y.shape


def reshape(x, shape):
    return np.reshape(x, shape)
