"""Derivative rules of the softmax family: logsumexp, softmax, log_softmax, and the
internal ops their rules and the stability rules make (log_softmax_vjp,
log_softmax_jvp, log_softmax_at_parts, log_softmax_at, log_softmax_at_vjp,
log_softmax_at_jvp).

Where it sits: part of tensor_rules (see its docstring for the rules' two kinds,
jvp and vjp, written with builder calls); tensor_rules imports these back, so the
op table (ops.py, ops_special.py) and reverse_index_moves name them as T.name.
The internal ops are one loop nest each in C (c_tensor_ops) and one helper each in
NumPy (runtime): written out as the trace's own ops, their steps took ten passes
over the slice or more (issue 18's budget; benchmarks/bench_log_softmax.py).
"""

from __future__ import annotations

from .errors import ExprcIndexError, ShapeError
from .tensor_rules import axis_for, total_of


def _softmax_of_lse(b, x, out, attrs):
    """logsumexp's derivative: softmax(x) along the one axis reduced, which subtracts max(x),
    exactly; exp(x - logsumexp(x)) would carry logsumexp's rounding (up to half an ulp of
    max(x), 6e-14 relative at 600) into every element. Over several axes (softmax takes
    one) that exp form."""
    axis = attrs.get("axis")
    axes = tuple(range(len(b.shape(x)))) if axis is None else axis
    if len(axes) == 1:
        return b.apply("softmax", x, axis=axes[0])
    return b.exp(b.sub(x, b.broadcast_to(out, x, axis=axis_for(attrs))))


def jvp_logsumexp(b, tans, args, out, attrs):
    if tans[0] is None:
        return None
    return b.sum(b.mul(tans[0], _softmax_of_lse(b, args[0], out, attrs)), **attrs)


def vjp_logsumexp(b, j, g, args, out, attrs):
    return b.mul(b.broadcast_to(g, args[0], axis=axis_for(attrs)),
                 _softmax_of_lse(b, args[0], out, attrs))


def _softmax_rule(b, x, s, seed, attrs):
    """J·seed, J = diag(s) - s sᵀ along the axis (symmetric: one rule serves both modes),
    as s·(d - sum(s·d)), d = seed - c, c the mean of the seed where x is largest: the same
    for any c (the elements of s sum to 1), and with this c the dominant element's term is
    0, where s·(seed - sum(s·seed)) cancels as that element of s nears 1 (relative error
    above 1e-13 once it exceeds the others by 1.8)."""
    axis = attrs.get("axis")
    top = b.eq(x, b.apply("max", x, axis=axis, keepdims=True))
    c = b.div(b.sum(b.mul(seed, top), axis=axis, keepdims=True), b.sum(top, axis=axis, keepdims=True))
    d = b.sub(seed, c)
    return b.mul(s, b.sub(d, b.sum(b.mul(s, d), axis=axis, keepdims=True)))


def jvp_softmax(b, tans, args, out, attrs):
    return None if tans[0] is None else _softmax_rule(b, args[0], out, tans[0], attrs)


def vjp_softmax(b, j, g, args, out, attrs):
    return _softmax_rule(b, args[0], out, g, attrs)


def _log_softmax_share(b, x, out, axis):
    """(s, top): s = softmax(x), which takes x - max as the value does (exp(out) would
    add the rounding of out = (x - max) - log1p(T) to s's relative error, up to half
    an ulp of out, 5.7e-14 at |out| = 700, on top of x - max's), with its limit where
    it is NaN: a single +inf in the slice, out 0 there and -inf elsewhere, gives
    relu(out + 1) = 1 and 0 (exp(out) without an exp per element); NaN stays NaN.
    top = s > 1/2, the one element that dominates (s > 1/2 holds for one at most: the
    maximum's exp(0) = 1 is in every other's sum), where 1 - s would cancel."""
    s = b.apply("softmax", x, axis=axis)
    s = b.where(b.ne(s, s), b.relu(b.add(out, 1.0)), s)
    return s, b.gt(s, 0.5)


def jvp_log_softmax(b, tans, args, out, attrs):
    """t - sum(s·t) as d - sum(s·d), d = t - t_top (the same: J = I - 1·sᵀ sends 1 to 0):
    the dominant element's d is 0, so its tangent is -sum of the others' s·d, not
    t_top - s_top·t_top - ..., which cancels as s_top nears 1. One op, log_softmax_jvp
    (runtime.log_softmax_jvp, c_tensor_ops.emit_log_softmax_jvp), as the adjoint is:
    these steps as the trace's ops were ten, each a pass over the slice."""
    t = tans[0]
    if t is None:
        return None
    return b.apply("log_softmax_jvp", args[0], out, t, axis=attrs["axis"])


def vjp_log_softmax(b, j, g, args, out, attrs):
    """g - s·sum(g) along the axis; at a dominant element, minus the sum of the others'
    (the adjoint sums to 0: 1ᵀ(I - s·1ᵀ) = 0), which is the others' share of sum(g) less
    their g, where g_top - s_top·sum(g) cancels as s_top nears 1. One op,
    log_softmax_vjp (runtime.log_softmax_vjp, c_tensor_ops.emit_log_softmax_vjp): as
    steps of the trace it was ten passes over the slice in C (value and gradient 1.1-6x
    the naive forms' at 10^3-10^5; benchmarks/bench_log_softmax.py)."""
    return b.apply("log_softmax_vjp", args[0], out, g, axis=attrs["axis"])


def _log_softmax_adjoint(b, top, a, axis):
    """a with its elements at `top` replaced by minus the sum of the others'."""
    return b.where(top, b.neg(b.sum(b.where(top, 0.0, a), axis=axis, keepdims=True)), a)


def _share_rule(b, x, o, s, u, axis):
    """J_s·u = s·(u - sum(s·u)) along the axis (J_s symmetric: both modes), s from
    _log_softmax_share, as s times log_softmax's own tangent at u (log_softmax_jvp, one
    op, which keeps the dominant element's digits as _softmax_rule does). In a Hessian-
    vector product that tangent is the primal log_softmax's, the same instruction:
    _softmax_rule's chain took eight passes more."""
    return b.mul(s, b.apply("log_softmax_jvp", x, o, u, axis=axis))


def _share_tangent(b, x, o, raw, s, tx, to, axis):
    """The tangent of s = softmax(x) (raw, the op; s with its limit) in x (_share_rule)
    and, at a slice's NaN limit (s = relu(o + 1)), relu's tangent in o."""
    ds = _share_rule(b, x, o, s, tx, axis) if tx is not None else 0.0
    limit = b.mul(to, b.gt(b.add(o, 1.0), 0.0)) if to is not None else 0.0
    return b.where(b.ne(raw, raw), limit, ds)


def jvp_log_softmax_vjp(b, tans, args, out, attrs):
    """F(x, o, g) = P(g - s·sum(g)), P the dominant element's replacement (linear, its
    mask constant): dF = F(x, o, dg) - P(ds·sum(g)), ds softmax's tangent (_share_rule,
    which keeps the dominant element's digits), and at a slice's NaN limit (s =
    relu(o + 1)) relu's tangent in o."""
    x, o, g = args
    tx, to, tg = tans
    axis = attrs["axis"]
    parts = [] if tg is None else [b.apply("log_softmax_vjp", x, o, tg, axis=axis)]
    if tx is not None or to is not None:
        raw = b.apply("softmax", x, axis=axis)
        s, top = _log_softmax_share(b, x, o, axis)
        ds = _share_tangent(b, x, o, raw, s, tx, to, axis)
        parts.append(b.neg(_log_softmax_adjoint(b, top, b.mul(ds, b.sum(g, axis=axis, keepdims=True)), axis)))
    return total_of(b, parts) if parts else None


def vjp_log_softmax_vjp(b, j, h, args, out, attrs):
    """The transpose of dF (jvp_log_softmax_vjp) in argument j: in g, (I - 1·sᵀ)·Pᵀh,
    Pᵀh = h - h_top off the dominant element and 0 on it; in x, -sum(g)·J_s·Pᵀh (J_s
    symmetric: _share_rule); o only at the NaN limit (taken as 0 there)."""
    x, o, g = args
    if j == 1:
        return None
    axis = attrs["axis"]
    s, top = _log_softmax_share(b, x, o, axis)
    u = b.where(top, 0.0, b.sub(h, b.sum(b.where(top, h, 0.0), axis=axis, keepdims=True)))
    if j == 2:
        return b.sub(u, b.sum(b.mul(s, u), axis=axis, keepdims=True))
    return b.neg(b.mul(_share_rule(b, x, o, s, u, axis), b.sum(g, axis=axis, keepdims=True)))


# -- log_softmax's tangent as one op --------------------------------------------------------------
def jvp_log_softmax_jvp(b, tans, args, out, attrs):
    """F(x, o, t) = t - 1·(sᵀt) along the axis (log_softmax_jvp): linear in t; in x,
    -sum(ds·t), ds softmax's tangent; in o only at a slice's NaN limit."""
    x, o, t = args
    tx, to, tt = tans
    axis = attrs["axis"]
    parts = [] if tt is None else [b.apply("log_softmax_jvp", x, o, tt, axis=axis)]
    if tx is not None or to is not None:
        s, _ = _log_softmax_share(b, x, o, axis)
        ds = _share_tangent(b, x, o, b.apply("softmax", x, axis=axis), s, tx, to, axis)
        parts.append(b.broadcast_to(b.neg(b.sum(b.mul(ds, t), axis=axis, keepdims=True)), x))
    return total_of(b, parts) if parts else None


def vjp_log_softmax_jvp(b, j, h, args, out, attrs):
    """The transpose of dF (jvp_log_softmax_jvp): in t, (I - s·1ᵀ)h, log_softmax's own
    adjoint (log_softmax_vjp); in x, -sum(h)·J_s·t (J_s symmetric: _share_rule); o
    only at the NaN limit (taken as 0 there)."""
    x, o, t = args
    axis = attrs["axis"]
    if j == 2:
        return b.apply("log_softmax_vjp", x, o, h, axis=axis)
    if j == 1:
        return None
    s, _ = _log_softmax_share(b, x, o, axis)
    return b.neg(b.mul(_share_rule(b, x, o, s, t, axis), b.sum(h, axis=axis, keepdims=True)))


# -- log_softmax(x)[k] of a vector: ops that share one exp pass --------------------------------------
# P = log_softmax_at_parts(x) is softmax(x) with element k replaced by v = log_softmax(x)[k];
# log_softmax_at(x, P) is P[k], its derivative in x that of log_softmax(x)[k] (none in P,
# which it reads as a hint); log_softmax_at_vjp(P, g) is that derivative's transpose,
# g·(δ_k - s): -g·s_j off k, -g·expm1(v) at k; log_softmax_at_jvp(P, t) the tangent,
# t_k - sum(s·t), one dot. The stability rules write such a pick so
# (softmax_forms.build_log_softmax): value and gradient then take one exp pass, where
# log_softmax and log_softmax_vjp took one each (the naive exp(z[k])/sum(exp(z)) takes
# one, which its gradient reuses). Several picks of one vector share one P whose key
# holds all of them (softmax_forms.share_picks): log_softmax_at is then the vector of
# the values (and g and the tangent one element per key), so that value, gradient and
# tangent still take one pass each, whatever the number of picks.
def shape_picks(shapes, attrs):
    """log_softmax_at, log_softmax_at_jvp: a number for one key, a vector of one per key."""
    key = attrs["key"]
    return () if len(key) == 1 else (len(key),)


def checked_pick(result):
    """The shape rule `result` of a pick op (log_softmax_at_parts, _at, _at_vjp, _at_jvp)
    after checking what their C loops index by as it is (x[k], dst[k]): a vector, and a
    key of increasing ints 0 <= k (< n where n is a number), as _vector_pick and
    share_picks make them. A Builder's apply could give k = -1, k = n or a matrix: read
    and written out of bounds (a heap overflow under ASan)."""
    def shape(shapes, attrs):
        x, key = shapes[0], attrs.get("key")
        if len(x) != 1:
            raise ShapeError(f"log_softmax_at: the elements of a vector, not of shape {tuple(x)}")
        if type(key) is not tuple or not key or any(type(k) is not int for k in key) or key[0] < 0 \
                or any(a >= c for a, c in zip(key, key[1:])) or (type(x[0]) is int and key[-1] >= x[0]):
            raise ExprcIndexError(f"log_softmax_at: key {key!r} is not increasing indexes 0 <= k < {x[0]}")
        return result(shapes, attrs)
    return shape


def pick_bounds(arg):
    """Every key of a vector of a named size in range (the keys are >= 0)."""
    def bounds(shapes, attrs):
        dim = shapes[arg][0]
        return [] if isinstance(dim, int) else [(dim, max(attrs["key"]) + 1, arg)]
    return bounds


def _one(b, x, key):
    """1 at x[key], 0 elsewhere; with several keys 1 at each."""
    if len(key) == 1:
        return b.scatter(b.const(1.0), x, key=key)
    return total_of(b, [b.scatter(b.const(1.0), x, key=(k,)) for k in key])


def _picked_share(b, x, P, key):
    """softmax(x) from P: P off the keys, exp(P) at them (limits included: a single +inf
    gives exp(0) = 1 or exp(-inf) = 0 there). Only second derivatives read it."""
    if len(key) == 1:
        return b.where(_one(b, x, key), b.exp(b.index(P, key=key)), P)
    return b.where(_one(b, x, key), b.exp(P), P)


def _each_key(b, x, key, at, rest):
    """rest with element k_i replaced by at's element i (at a number for one key)."""
    if len(key) == 1:
        return b.where(_one(b, x, key), at, rest)
    for i, k in enumerate(key):
        rest = b.where(_one(b, x, (k,)), b.index(at, key=(i,)), rest)
    return rest


def _at_keys(b, g, key):
    """g's elements at the keys: a number for one key, else their vector."""
    if len(key) == 1:
        return b.index(g, key=key)
    return b.apply("stack", *(b.index(g, key=(k,)) for k in key), axis=0)


def _sum_of(b, g, key):
    """G, the sum of the picks' adjoints (g itself for one key)."""
    return g if len(key) == 1 else b.sum(g)


def jvp_log_softmax_at(b, tans, args, out, attrs):
    """sum_j (δ_kj - s_j)·t_j, one op (log_softmax_at_jvp: its 1 - s_k is -expm1(v),
    which keeps its digits as s_k nears 1); where it was the adjoint op at g = 1 dotted
    with t, three passes (1.4-1.75x the naive form's tangent)."""
    if tans[0] is None:
        return None
    return b.apply("log_softmax_at_jvp", args[1], tans[0], key=attrs["key"])


def vjp_log_softmax_at(b, j, g, args, out, attrs):
    return b.apply("log_softmax_at_vjp", args[1], g, key=attrs["key"]) if j == 0 else None


def jvp_log_softmax_at_parts(b, tans, args, out, attrs):
    """P's tangent: log_softmax(x)[k]'s at each key (log_softmax_at_jvp), softmax's
    elsewhere."""
    t = tans[0]
    if t is None:
        return None
    x, key = args[0], attrs["key"]
    at = b.apply("log_softmax_at_jvp", out, t, key=key)
    off = _softmax_rule(b, x, _picked_share(b, x, out, key), t, {"axis": 0})
    return _each_key(b, x, key, at, off)


def vjp_log_softmax_at_parts(b, j, g, args, out, attrs):
    """P's adjoint: g at the keys through log_softmax(x)[k] (log_softmax_at_vjp), the
    others through softmax (its rule, symmetric)."""
    x, key = args[0], attrs["key"]
    mask = _one(b, x, key)
    off = _softmax_rule(b, x, _picked_share(b, x, out, key), b.where(mask, 0.0, g), {"axis": 0})
    return b.add(b.apply("log_softmax_at_vjp", out, _at_keys(b, g, key), key=key), off)


def _at_vjp_slope(b, P, key):
    """∂(log_softmax_at_vjp(P, 1))/∂P, elementwise (the op at g = 1 is -P off k and
    -expm1(P[k]) at k): -1 off the keys, -exp(P[k]) at them; minus ∂s/∂P."""
    if len(key) == 1:
        return b.neg(b.where(_one(b, P, key), b.exp(b.index(P, key=key)), 1.0))
    return b.neg(b.where(_one(b, P, key), b.exp(P), 1.0))


def jvp_log_softmax_at_vjp(b, tans, args, out, attrs):
    """G·(the op at one key with g = 1), elementwise in P: dP·G·slope plus the op at
    dg. In a Hessian-vector product dP[k] is the value's tangent, so that the tangent
    at k is -G·s_k·dv = -G·ds_k, as accurate as dv (a sum of the others' dP would
    cancel)."""
    (P, g), key = args, attrs["key"]
    G = _sum_of(b, g, key)
    return total_of(b, [None if tans[0] is None else b.mul(G, b.mul(tans[0], _at_vjp_slope(b, P, key))),
                      None if tans[1] is None else b.apply("log_softmax_at_vjp", P, tans[1], key=key)])


def vjp_log_softmax_at_vjp(b, j, h, args, out, attrs):
    """In P, G·slope·h (elementwise); in g, the tangent op at h (the adjoint's transpose:
    h_k - sum(s·h) for each key)."""
    (P, g), key = args, attrs["key"]
    if j == 0:
        return b.mul(_sum_of(b, g, key), b.mul(h, _at_vjp_slope(b, P, key)))
    return b.apply("log_softmax_at_jvp", P, h, key=key)


def jvp_log_softmax_at_jvp(b, tans, args, out, attrs):
    """F(P, t) = t_K - sum(s·t): linear in t; in P, -sum(∂s/∂P·dP·t) for every key."""
    (P, t), key = args, attrs["key"]
    parts = [] if tans[1] is None else [b.apply("log_softmax_at_jvp", P, tans[1], key=key)]
    if tans[0] is not None:
        d = b.sum(b.mul(t, b.mul(tans[0], _at_vjp_slope(b, P, key))))
        parts.append(d if len(key) == 1 else b.broadcast_to(d, out))
    return total_of(b, parts) if parts else None


def vjp_log_softmax_at_jvp(b, j, h, args, out, attrs):
    """In t, log_softmax_at_vjp at h; in P, sum(h)·t·(-∂s/∂P)."""
    (P, t), key = args, attrs["key"]
    if j == 1:
        return b.apply("log_softmax_at_vjp", P, h, key=key)
    return b.mul(_sum_of(b, h, key), b.mul(t, _at_vjp_slope(b, P, key)))
