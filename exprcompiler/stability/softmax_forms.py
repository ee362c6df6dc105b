"""The stability rules' patterns and replacements for the softmax family: softmax,
log_softmax, and the differences of x and logsumexp(x) (issue 18).

Where it sits: beside patterns.py (the other rules' patterns); rules.py's table refers
to these as S.name. The same conventions: a pattern is (b, args, attrs) -> the matched
variables or None, a guard (b, *matched) -> whether the replacement is provably the
same function, a build (b, *matched) -> the replacement, made only through builder
calls; the rewriter (rewrite.py) drops a replacement whose shape is not the one it
replaces. Picking elements (index) commutes with everything matched here: log is
elementwise, and logsumexp(x) is one number wherever a pick is allowed (over all of x).
share_picks is not a rule: rewrite.stabilize runs it on the rewritten primal, where it
sees every pick of a vector at once.
"""

from __future__ import annotations

import math

from . import match as m
from .patterns import zero_minus


def picked(b, v):
    """(u, key) when v = u[key], else (v, None)."""
    n = m.node(b, v)
    return (n.args[0], dict(n.attrs)["key"]) if n.op == "index" else (v, None)


def reduction_axes(b, x, options) -> list:
    """The axes of x, sorted, that a reduction with these options (axis, keepdims) runs
    along: all of them for axis=None."""
    ndim = len(m.node(b, x).shape)
    axis = options.get("axis")
    axes = range(ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return sorted({k % ndim for k in axes}) if ndim else []


def one_axis(b, x, options):
    """The one axis of x that a reduction with these options (axis, keepdims) runs
    along, when its result broadcasts back along it: over the whole of a vector, or
    along one axis kept; else None."""
    axes = reduction_axes(b, x, options)
    if len(axes) != 1 or (len(m.node(b, x).shape) > 1 and not options.get("keepdims")):
        return None
    return axes[0]


def whole(b, x, options) -> bool:
    """The reduction runs over every axis of x: its result is one number, so that
    (x - it)[key] = x[key] - it whatever the key."""
    ndim = len(m.node(b, x).shape)
    return ndim > 0 and len(reduction_axes(b, x, options)) == ndim


# -- softmax ------------------------------------------------------------------------------------
def _exp_part(b, v, e, x):
    """() when v is e = exp(x) itself, (key,) when v is some of its elements, exp(x[key])
    or exp(x)[key]; else None."""
    if m.same(b, v, e):
        return ()
    u, key = picked(b, v)
    if key is not None and m.same(b, u, e):
        return (key,)
    inner = m.arg(b, v, "exp")
    u, key = picked(b, inner) if inner is not None else (None, None)
    return (key,) if key is not None and m.same(b, u, x) else None


def softmax_ratio(b, a, attrs):
    """exp(x) / sum(exp(x)), or w·exp(x) / sum(exp(x)), along one axis -> (x, the axis,
    w or None, None): over the whole of a vector, or along an axis kept (keepdims), so
    that each slice is divided by its own sum (exp(X)/sum(exp(X), axis=1) without
    keepdims divides by the wrong sums: not matched). Over a vector the numerator may
    pick elements, exp(x[key]) or exp(x)[key] -> (x, 0, w, key): softmax(x)[key]."""
    n = m.node(b, a[1])
    if n.op != "sum" or m.arg(b, n.args[0], "exp") is None:
        return None
    e = n.args[0]   # exp(x)
    x = m.arg(b, e, "exp")
    w, part = None, _exp_part(b, a[0], e, x)
    if part is None:
        factors = m.args(b, a[0], "mul")
        for i, j in ((0, 1), (1, 0)) if factors is not None else ():
            part = _exp_part(b, factors[i], e, x)
            if part is not None:
                w = factors[j]
                break
        if part is None:
            return None
    options = dict(n.attrs)
    axis = one_axis(b, x, options)
    if axis is None or (part and (not whole(b, x, options) or n.shape != ())):
        return None   # (a pick divides by one number: the sum of all of x, not kept as (1,))
    return x, axis, w, (part[0] if part else None)


def build_softmax(b, x, axis, w, key):
    s = b.apply("softmax", x, axis=axis)
    s = s if key is None else b.apply("index", s, key=key)
    return s if w is None else b.mul(w, s)


# -- log(softmax(x)) ----------------------------------------------------------------------------
def log_of_softmax(b, a, attrs):
    """log(softmax(x, axis)) or log(softmax(x, axis)[key]) -> (x, the axis, the key or
    None): the log is elementwise, so picking the elements first or last is the same."""
    v, key = picked(b, a[0])
    x = m.arg(b, v, "softmax")
    return None if x is None else (x, dict(m.node(b, v).attrs)["axis"], key)


def build_log_softmax(b, x, axis, key):
    """log(softmax(x)) along `axis` as the op log_softmax: (x - c) - log1p(T), c = max(x),
    T the sum of exp(x - c) over the other elements (not rounded into 1 + T, so the
    value keeps its digits where the maximum dominates and is finite where exp
    underflows), and derivative rules (tensor_rules.vjp_log_softmax) that give the
    dominant element's derivative as the others' share of the softmax, not as
    1 - softmax, which cancels as it dominates (relative error 1e-16/T). One op, where
    these steps written out as ops took 14 and their derivative as many again. One
    element of a vector, log_softmax(x)[k], is the value of log_softmax_at(x, P), P =
    log_softmax_at_parts(x) (softmax(x) with element k replaced by that value): its
    gradient, g·(δ_k - s), reads P, so value and gradient take one exp pass, as the
    naive exp(x[k])/sum(exp(x)) does (log_softmax and its adjoint took one each: 1.3-2x
    the naive form; benchmarks/bench_log_softmax.py). Several picks of one x then
    share one P (share_picks, after the rewrite)."""
    k = _vector_pick(b, x, key)
    if k is not None:
        return b.apply("log_softmax_at", x, b.apply("log_softmax_at_parts", x, key=k, axis=0), key=k)
    out = b.apply("log_softmax", x, axis=axis)
    return out if key is None else b.apply("index", out, key=key)


def _vector_pick(b, x, key):
    """(k,) with 0 <= k when x is a vector and key picks its element k (a negative k of
    a named size stays an index of log_softmax: the C loops would need it as n - k)."""
    shape = m.node(b, x).shape
    if key is None or len(shape) != 1 or len(key) != 1 or type(key[0]) is not int:
        return None
    k, n = key[0], shape[0]
    if type(n) is int:
        return (k % n,)
    return (k,) if k >= 0 else None


# -- several picks of one vector: one P for all ---------------------------------------------------
SHARED_FROM = 2   # picks of one vector that share one P (benchmarks/bench_log_softmax.py --picks)
SHARE_REASON = ("log_softmax(x)[k] at several k of one vector took an exp pass each; one pick op whose key "
                "holds them all takes one pass for all of them, with the same values")


def pick_groups(trace) -> dict:
    """x -> [(P, the value read from it, its key)] for the picks build_log_softmax
    wrote (one key each, P read by that value only), in trace order, where x has
    SHARED_FROM or more of them of distinct keys."""
    instrs, uses = trace.instrs, {}
    # (most traces hold no pick: no map of uses for them, 8.5 of the 322 ms of a
    # 28k-instruction primal's stabilize)
    if sum(ins.op == "log_softmax_at_parts" for ins in instrs) < SHARED_FROM:
        return {}
    for i, ins in enumerate(instrs):
        for a in ins.args:
            uses.setdefault(a, []).append(i)
    for _, v in trace.outputs:
        uses.setdefault(v, []).append(-1)
    groups: dict = {}
    for i, ins in enumerate(instrs):
        if ins.op != "log_softmax_at_parts" or len(dict(ins.attrs)["key"]) != 1:
            continue
        readers = uses.get(i, [])
        if len(readers) != 1 or readers[0] < 0:
            continue
        at = instrs[readers[0]]
        if at.op != "log_softmax_at" or at.args != (ins.args[0], i) or at.attrs != (("key", dict(ins.attrs)["key"]),):
            continue
        groups.setdefault(ins.args[0], []).append((i, readers[0], dict(ins.attrs)["key"][0]))
    return {x: g for x, g in groups.items() if len({k for _, _, k in g}) >= SHARED_FROM
            and len({k for _, _, k in g}) == len(g)}


def share_picks(trace):
    """The trace with the picks log_softmax(x)[k] of one vector x (build_log_softmax
    writes each as log_softmax_at(x, P) of its own P = log_softmax_at_parts(x), one exp
    pass each) reading one P whose key holds all of them: log_softmax_at(x, P) is then
    the vector of the values, each pick an element of it, and value, gradient and
    tangent take one pass each whatever the number of picks, where k picks took k
    (and adds of their adjoints: 1.2-2x the naive form at three picks). Run after the
    primal rewrite (rewrite.stabilize); a trace without such picks is returned as it
    is."""
    groups = pick_groups(trace)
    if not groups:
        return trace
    from ..passes.replay import replay
    from ..trace.ir import Builder, primal_labels

    b = Builder()
    rewrite: dict = {}
    for x, picks in groups.items():
        keys = tuple(sorted(k for _, _, k in picks))
        shared: list = []

        def parts(i, vmap, x=x, keys=keys, shared=shared):
            P = b.apply("log_softmax_at_parts", vmap[x], key=keys, axis=0)
            shared.append(b.apply("log_softmax_at", vmap[x], P, key=keys))
            return P

        def value(i, vmap, pos=None, shared=shared):
            mark = b.mark()
            return b.name(b.index(shared[0], key=(pos,)), trace.labels[i], since=mark)
        rewrite[min(p for p, _, _ in picks)] = parts
        for P, at, k in picks:
            rewrite.setdefault(P, None)
            rewrite[at] = lambda i, vmap, pos=keys.index(k), value=value: value(i, vmap, pos)
    vmap = replay(b, trace, rewrite=rewrite)
    numbered = trace.labels == primal_labels(trace.instrs)
    return b.finish([(n, vmap[v]) for n, v in trace.outputs], input_order=list(trace.input_names),
                    number=numbered, source=trace.source)


_SCALE_SIDES = {"mul": ((0, 1), (1, 0)), "div": ((1, 0),)}   # (the constant's, the softmax's)


def log_of_scaled_softmax(b, a, attrs):
    """log(c·softmax(x)), log(softmax(x)·c) or log(softmax(x)/c), c a scalar constant,
    with elements picked before or after the scaling -> (x, the axis, the key or None,
    c, whether c divides). (The guard, positive_scale, proves log(c·s) = log c + log s.)"""
    v, key = picked(b, a[0])
    n = m.node(b, v)
    for ci, si in _SCALE_SIDES.get(n.op, ()):
        c = n.args[ci]
        if b.const_value(c) is None or m.node(b, c).shape != ():
            continue
        s, inner = picked(b, n.args[si])
        x = m.arg(b, s, "softmax")
        if x is None or (key is not None and inner is not None):
            continue
        return x, dict(m.node(b, s).attrs)["axis"], key if key is not None else inner, c, n.op == "div"
    return None


def positive_scale(b, x, axis, key, c, divided) -> bool:
    """c finite and above 0: then log(c·s) = log(c) + log(s) for every s >= 0 (log 0 = -inf
    on both sides). A negative c is NaN either way, and 0, inf and NaN gain nothing:
    left as written."""
    value = b.const_value(c)
    return math.isfinite(value) and value > 0


def build_scaled_log_softmax(b, x, axis, key, c, divided):
    out = build_log_softmax(b, x, axis, key)
    log_c = b.apply("log", c)   # of a scalar constant: the builder folds it into one
    return b.sub(out, log_c) if divided else b.add(log_c, out)


# -- x - logsumexp(x), logsumexp(x) - x -----------------------------------------------------------
def _logsumexp_of(b, p, q):
    """(x, the logsumexp's options, the key or None) when q = logsumexp(x, ...) and p is
    x, or x[key] where logsumexp runs over all of x into one number (kept as an array of
    one, (1,) or (1, 1), it would broadcast x[key] to another shape); else None."""
    n = b.instrs[b.source_of(q)]   # (m.node inline: asked of every subtraction in a trace)
    if n.op != "logsumexp":
        return None
    x, options = n.args[0], dict(n.attrs)
    u, key = (p, None) if m.same(b, p, x) else picked(b, p)
    if not m.same(b, u, x) or (key is not None and (not whole(b, x, options) or n.shape != ())):
        return None
    return x, options, key


def _along_one_axis(b, p, q):
    found = _logsumexp_of(b, p, q)
    axis = one_axis(b, found[0], found[1]) if found is not None else None
    return None if axis is None else (found[0], axis, found[2])


def minus_logsumexp(b, a, attrs):
    """x - logsumexp(x) over a vector (or x[key] - logsumexp(x)), or along one axis kept
    -> (x, the axis, the key or None)."""
    return _along_one_axis(b, a[0], a[1])


def logsumexp_minus(b, a, attrs):
    """logsumexp(x) - x (or - x[key]), the negated form (cross-entropy's) -> as
    minus_logsumexp."""
    return _along_one_axis(b, a[1], a[0])


def build_neg_log_softmax(b, x, axis, key):
    """0 - log_softmax(x): +0 where the value is 0 (a lone element), as the naive form."""
    return zero_minus(b, build_log_softmax(b, x, axis, key))


def logsumexp_difference_over_a_block(b, a, attrs):
    """x - logsumexp(x) or logsumexp(x) - x where logsumexp runs over several axes of x
    that are all of x (axis=None), or that are adjacent and kept (keepdims) -> (x, the
    shape with those axes as one, that axis, the key or None, negated). Only for shapes
    of known sizes: reshape needs them (a named dimension is left as written)."""
    for p, q, negated in ((a[0], a[1], False), (a[1], a[0], True)):
        found = _logsumexp_of(b, p, q)
        if found is None:
            continue
        x, options, key = found
        shape, axes = m.node(b, x).shape, reduction_axes(b, x, options)
        if len(axes) < 2 or axes != list(range(axes[0], axes[-1] + 1)):
            continue   # one axis: the rules above; axes apart (0 and 2 of three) would need a transpose
        if not all(type(d) is int and d > 0 for d in shape):
            continue
        if not whole(b, x, options) and not options.get("keepdims"):
            continue   # (X - logsumexp(X, axis=(1, 2)) subtracts one sum from another slice)
        lo, hi = axes[0], axes[-1] + 1
        return x, shape[:lo] + (math.prod(shape[lo:hi]),) + shape[hi:], lo, key, negated
    return None


def build_log_softmax_over_a_block(b, x, shape, axis, key, negated):
    """log_softmax of x reshaped so that the block is one axis, reshaped back (a reshape
    is a view, no copy, in NumPy and in C's tensor loops)."""
    flat = b.apply("reshape", x, shape=shape)
    out = b.apply("reshape", b.apply("log_softmax", flat, axis=axis), shape=tuple(b.shape(x)))
    out = out if key is None else b.apply("index", out, key=key)
    return zero_minus(b, out) if negated else out


__all__ = ["picked", "reduction_axes", "one_axis", "whole", "softmax_ratio", "build_softmax", "log_of_softmax",
           "build_log_softmax", "log_of_scaled_softmax", "positive_scale", "build_scaled_log_softmax",
           "minus_logsumexp", "logsumexp_minus", "build_neg_log_softmax", "logsumexp_difference_over_a_block",
           "build_log_softmax_over_a_block", "share_picks"]
