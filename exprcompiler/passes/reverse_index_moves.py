"""Index adjoints moved through ops that move lanes, in the reverse sweep of tensors.

Where it sits: called by reverse_index.IndexTerms.step (inside passes/reverse.
adjoint_sweep) for an op of MOVES whose adjoint is only terms (g, keys): index
adjoints kept sparse (see reverse_index.py). The dense adjoint there would be
scatter(g) through the op's VJP, zero outside the lanes the key reads, then times
the partials upstream: 0·inf = NaN in lanes no output reads (sum(sqrt(X), axis=0)[1]
at X = 0 in another column; (sqrt(X) @ W)[1], NaN in W̄ from sqrt(X)'s other rows).

Instead each term's chain of keys is composed into one key of the output (`one_key`)
and mapped to a key of each argument that it reads, its adjoint moved with it:
transpose, the axes reversed; reshape, per group of axes whose sizes multiply alike,
an element or a C-order block (`_groups`, `_block`), else runs of keys of the
argument, each a term (reverse_index_reshape: a reversed or strided block, a column
of a flattened matrix, lanes across rows); stack and concatenate, the parts
the key selects, the adjoint cut to each; broadcast_to, the key projected, the
adjoint summed down; sum and mean over an axis, that axis restored whole, the
adjoint broadcast along it; max, min, logsumexp over an axis and softmax,
log_softmax along one, that axis read whole and the op's VJP taken at the key;
matmul, out[r, c] = x[r] @ y[:, c], its VJP on the indexed arguments (the other
argument read at the key's rows or columns only), and outer alike; diagonal and diag,
a lane each (diag's lanes off its diagonal: no contribution). An argument the key reads whole
takes a dense contribution. A where()'s mask on an edge (reverse_masks_build) is
applied to each term at its keyed lanes, its conditions indexed alike; a term that
reads no lane (an empty slice) contributes nothing. Where a key does not map so
(two slices of a named dimension, a key of every lane, a reshape's lanes in more
than MAX_PIECES runs, a condition that does not line up), the caller materializes
the terms as before: the mapping is decided for every term before any instruction
is built, so that path is the old one, instruction for instruction. Values are the
dense sweep's wherever that one is finite (summation order aside: a product over
the kept rows is not a BLAS call over all of them).
"""

from __future__ import annotations

import math
from typing import Optional

from .. import tensor_rules as T
from .reverse_index_keyed import keyed_conds
from .reverse_index_reshape import MAX_PIECES, pieces, slice_item
from .reverse_masks_build import mask_built

FULL = (None, None, None)


def _normal(item, d):
    """An item with its int made non-negative and its slice normal (`slice_item`), where the
    dimension is a number; as it is on a named one."""
    if type(d) is not int:
        return item
    if type(item) is int:
        return item % d   # (in range: the index's shape rule checked it)
    return slice_item(range(d)[slice(*item)], d)


def one_key(keys: tuple, shape: tuple) -> Optional[tuple]:
    """The chain x[k1][k2]... as one key of x (shape `shape`), an item per axis, normal;
    None where two slices meet on a named dimension, or a slice reads nothing."""
    key = (FULL,) * len(shape)
    for k in keys:
        got, it = [], iter(k)
        for item, d in zip(key, shape):
            if type(item) is int:
                got.append(item)
                continue
            new = next(it, FULL)
            if item == FULL:
                got.append(_normal(new, d))
            elif new == FULL:
                got.append(item)
            elif type(d) is not int:
                return None
            else:
                r = range(d)[slice(*item)]
                got.append(r[new] if type(new) is int else slice_item(r[slice(*new)], d))
        key = tuple(got)
    return None if None in key else key


def trim_key(key: tuple) -> tuple:
    """A key without its trailing whole slices (() : the whole argument)."""
    n = len(key)
    while n and key[n - 1] == FULL:
        n -= 1
    return tuple(key[:n])


def _at(b, x: int, key: tuple) -> int:
    short = trim_key(key)
    return b.index(x, key=short) if short else x


def _as_is(b, g, args, out):
    return g


def _kept(key: tuple) -> int:
    """How many axes a key keeps (its slices)."""
    return sum(type(item) is not int for item in key)


def _cut(q: int, p) -> object:
    """The part of the adjoint at p (an int or a slice) along its axis q."""
    return lambda b, g, args, out: b.index(g, key=(FULL,) * q + (p,))


# Each rule: (key of the output, argument shapes, output shape, attrs) -> [(argument j,
# its key, move(b, g, args, out): the adjoint at that key)], or None (no simple map).
# Pure: a term that does not map leaves no instruction behind (the dense path as before).
def _transpose(key, shapes, out_shape, attrs):
    return [(0, key[::-1], lambda b, g, args, out: b.transpose(g) if len(b.shape(g)) > 1 else g)]


def _reduction(mean: bool):
    def rule(key, shapes, out_shape, attrs):
        axes = attrs.get("axis")
        if axes is None:   # (all axes: a scalar, or ones kept, read whole)
            return None
        keep, it = attrs.get("keepdims", False), iter(key)
        arg_key, put = [], []
        for a in range(len(shapes[0])):
            item = next(it) if keep or a not in axes else None   # (None: an axis the sum removed)
            if a in axes and type(item) is not tuple:   # (not in g: put back; a kept one read
                put.append(_kept(arg_key))              # by a slice is in g, at size 1)
            arg_key.append(FULL if a in axes else item)

        def move(b, g, args, out):
            if mean:   # (divided first, as vjp_mean: the count meets the small adjoint)
                g = b.div(g, T._count(b, args[0], out))
            return b.broadcast_to(g, _at(b, args[0], arg_key), axis=tuple(put) or None)
        return [(0, tuple(arg_key), move)]
    return rule


def _groups(xs: tuple, os: tuple) -> Optional[list]:
    """Reshape's axes (of x, of the output) in groups whose sizes multiply alike, size-1
    axes left out: [(x axes, output axes)]; one axis each where the sizes are equal (a
    named dimension only so). None where there are none such (a zero size)."""
    xa = [a for a, d in enumerate(xs) if d != 1]
    oa = [a for a, d in enumerate(os) if d != 1]
    out, i, j = [], 0, 0
    while i < len(xa) and j < len(oa):
        i2, j2, p, q = i + 1, j + 1, xs[xa[i]], os[oa[j]]
        while p != q:
            if type(p) is not int or type(q) is not int or not p or not q:
                return None
            if p < q and i2 < len(xa):
                p, i2 = p * xs[xa[i2]], i2 + 1
            elif p > q and j2 < len(oa):
                q, j2 = q * os[oa[j2]], j2 + 1
            else:
                return None
        out.append((xa[i:i2], oa[j:j2]))
        i, j = i2, j2
    return out if i == len(xa) and j == len(oa) else None


def _block(items: list, dims: list) -> Optional[tuple]:
    """The lanes (lo, hi) that items (ints, then one slice of step 1, then whole ones)
    read of a C-order block of `dims`, or None (lanes not contiguous)."""
    lo, size, k = 0, 1, 0
    while k < len(items) and type(items[k]) is int:
        lo, k = lo * dims[k] + items[k], k + 1
    rest = dims[k:]
    if k < len(items):
        start, stop, step = items[k] if items[k] != FULL else (0, dims[k], None)
        if step is not None or any(item != FULL for item in items[k + 1:]):
            return None
        stop = dims[k] if stop is None else stop
        lo, size, rest = lo * dims[k] + start, stop - start, dims[k + 1:]
    for d in rest:
        lo, size = lo * d, size * d
    return lo, lo + size


def _unravel(flat: int, dims: list) -> list:
    out = []
    for d in reversed(dims):
        flat, k = divmod(flat, d)
        out.append(k)
    return out[::-1]


def _reshape(key, shapes, out_shape, attrs):
    groups = _groups(shapes[0], out_shape)
    if groups is None:
        return None
    got = _reshape_block(key, shapes[0], out_shape, groups)
    # (lanes that are no block: a reversed or strided block, or runs of blocks)
    return got if got is not None else pieces(key, shapes[0], out_shape, groups)


def _reshape_block(key, xs, out_shape, groups):
    arg_key = [FULL] * len(xs)   # (x's size-1 axes read whole)
    for xa, oa in groups:
        if len(xa) == len(oa) == 1:
            arg_key[xa[0]] = key[oa[0]]
            continue
        items, dims = [key[a] for a in oa], [xs[a] for a in xa]
        lanes = _block(items, [out_shape[a] for a in oa])
        if lanes is None:
            return None
        lo, hi = lanes
        if all(type(item) is int for item in items):
            got = _unravel(lo, dims)
        else:   # the block as ints, a slice, then whole axes: the first split that fits
            for t in range(len(dims)):
                inner = math.prod(dims[t + 1:])
                a, z = divmod(lo, inner), divmod(hi, inner)
                if not a[1] and not z[1] and a[0] // dims[t] == (z[0] - 1) // dims[t]:
                    got = _unravel(a[0] // dims[t], dims[:t]) + \
                        [slice_item(range(a[0] % dims[t], (z[0] - 1) % dims[t] + 1), dims[t])] + [FULL] * (len(dims) - t - 1)
                    break
            else:
                return None
        for a, item in zip(xa, got):
            arg_key[a] = item
    arg_key = tuple(arg_key)
    want, have = T.shape_index([xs], {"key": arg_key}), T.shape_index([out_shape], {"key": key})
    if want == have:
        return [(0, arg_key, _as_is)]
    if sum(type(d) is not int for d in want) > 1:
        return None
    return [(0, arg_key, lambda b, g, args, out: b.reshape(g, shape=T.literal_shape(want)))]


def _stack(key, shapes, out_shape, attrs):
    a = attrs["axis"]
    item, arg_key = key[a], key[:a] + key[a + 1:]
    if type(item) is int:
        return [(item, arg_key, _as_is)]
    q = _kept(key[:a])
    return [(j, arg_key, _cut(q, p)) for p, j in enumerate(range(len(shapes))[slice(*item)])]


def _concatenate(key, shapes, out_shape, attrs):
    a = attrs["axis"]
    item, q, plan, off = key[a], _kept(key[:a]), [], 0
    r = None if type(item) is int else range(out_shape[a])[slice(*item)]
    for j, shape in enumerate(shapes):
        n, lo = shape[a], off
        off += n
        if r is None:
            if lo <= item < off:
                plan.append((j, key[:a] + (item - lo,) + key[a + 1:], _as_is))
            continue
        # the positions [p0, p1) of r that fall in [lo, off): r runs one way
        if r.step > 0:
            p0, p1 = len(range(r.start, lo, r.step)), len(range(r.start, off, r.step))
        else:
            p0, p1 = len(range(r.start, off - 1, r.step)), len(range(r.start, lo - 1, r.step))
        p0, p1 = min(p0, len(r)), min(p1, len(r))
        if p0 < p1:
            part = r[p0:p1]
            mine = slice_item(range(part.start - lo, part.stop - lo, part.step), n)
            move = _as_is if (p0, p1) == (0, len(r)) else _cut(q, (p0, p1, None))
            plan.append((j, key[:a] + (mine,) + key[a + 1:], move))
    return plan


def _broadcast_to(key, shapes, out_shape, attrs):
    xs, n = shapes[0], len(out_shape)
    axis = attrs.get("axis")
    axis = range(n - len(xs)) if axis is None else (axis,) if type(axis) is int else axis
    dims, arg_key, summed = iter(xs), [], []
    for a, item in enumerate(key):
        kept = type(item) is not int
        if a in axis:   # (an axis x lacks: g's, where kept, summed away)
            if kept:
                summed.append(_kept(key[:a]))   # (its place among g's axes)
            continue
        d = next(dims)
        arg_key.append(item if d == out_shape[a] else 0 if not kept else FULL)

    def move(b, g, args, out):
        ref = _at(b, args[0], arg_key)
        return g if b.shape(g) == b.shape(ref) else b.sum_to(g, ref, axis=tuple(summed) or None)
    return [(0, tuple(arg_key), move)]


def _matmul(key, shapes, out_shape, attrs):
    """out[r, c] = x[r] @ y[:, c]: matmul's VJP on the indexed arguments."""
    if not out_shape:
        return None
    keys = ((key[0],) if len(shapes[0]) == 2 else (), (FULL, key[-1]) if len(shapes[1]) == 2 else ())

    def move(j):
        def rule(b, g, args, out):
            xy = [_at(b, x, k) for x, k in zip(args, keys)]
            if j == 0 and len(b.shape(xy[0])) == 1 and len(b.shape(xy[1])) == 2:
                return b.matmul(xy[1], g)   # (y g, not g yᵀ: no transpose of y)
            return T.vjp_matmul(b, j, g, xy, None, {})
        return rule
    return [(0, keys[0], move(0)), (1, keys[1], move(1))]


def _outer(key, shapes, out_shape, attrs):
    """outer(x, y)[i, j] = outer(x[i], y[j]): x̄[i] = g·y[j] summed over j, ȳ[j] alike."""
    i, j = key

    def move(k):
        def rule(b, g, args, out):
            x, y = _at(b, args[0], (i,)), _at(b, args[1], (j,))
            if k == 0:
                return b.mul(g, y) if type(j) is int else b.matmul(g, y)
            return b.mul(g, x) if type(i) is int else b.matmul(x, g)
        return rule
    return [(0, (i,), move(0)), (1, (j,), move(1))]


def _across(vjp, reduces: bool):
    """max, min, logsumexp over axes (`reduces`), softmax, log_softmax along one: the
    axes they mix read whole, their VJP taken on the argument and output at the key
    (the axes renumbered: an int before them drops one). A softmax's adjoint keyed
    within its axis is scattered along it (zeros there are its own: bounded partials)."""
    def rule(key, shapes, out_shape, attrs):
        if reduces:
            axes, keep = attrs.get("axis"), attrs.get("keepdims", False)
            if axes is None:   # (all axes: read whole)
                return None
        else:
            axes, keep = (attrs["axis"],), True
        # a kept axis the key drops (its int 0): read as a slice, g given it back
        dropped = [a for a in axes if reduces and keep and type(key[a]) is int]
        key = tuple(FULL if a in dropped else item for a, item in enumerate(key))
        lost = tuple(_kept(key[:a]) for a in dropped)   # (their places in out[key])
        it, arg_key, at = iter(key), [], []
        for a in range(len(shapes[0])):
            item = next(it) if keep or a not in axes else FULL
            if a in axes:
                at.append(_kept(arg_key))
                item = FULL
            arg_key.append(item)
        if not trim_key(arg_key):   # (read whole: the dense path, as it was)
            return None
        cut = tuple(arg_key) != key and not reduces   # (a softmax keyed within its axis)
        own = {"axis": tuple(at), "keepdims": True} if reduces and keep else {"axis": tuple(at) if reduces else at[0]}

        def move(b, g, args, out):
            x, o = _at(b, args[0], arg_key), _at(b, out, arg_key if not reduces else key)
            if cut:
                g = b.scatter(g, o, key=trim_key((FULL,) * at[0] + (key[axes[0]],)))
            if lost:
                g = b.broadcast_to(g, o, axis=lost)
            return vjp(b, 0, g, [x], o, own)
        return [(0, tuple(arg_key), move)]
    return rule


def _lanes(item, d) -> range:
    return range(item, item + 1) if type(item) is int else range(d)[slice(*item)]


def _diagonal(key, shapes, out_shape, attrs):
    """diagonal(x)[k] = x[k, k]: a lane each (a slice's lanes are no key of x), up to
    MAX_PIECES."""
    item = key[0]
    if type(item) is int:
        return [(0, (item, item), _as_is)]
    if type(out_shape[0]) is not int:   # (a slice of a named size: its lanes unknown)
        return None
    r = _lanes(item, out_shape[0])
    if len(r) > MAX_PIECES:
        return None
    return [(0, (k, k), _cut(0, p)) for p, k in enumerate(r)]


def _diag(key, shapes, out_shape, attrs):
    """diag(v)[i, j] = v[i] where i == j, else a structural 0: v's lanes on the key's
    diagonal, a lane each, up to MAX_PIECES (none: no contribution)."""
    (i, j), n = key, out_shape[0]
    if type(n) is not int:   # (a named size: -1 and 2 may be one lane; a slice's lanes unknown)
        return [(0, (i,), _as_is)] if i == j and type(i) is int else None
    ri, rj = _lanes(i, n), _lanes(j, n)
    common = [k for k in ri if k in rj]
    if len(common) > MAX_PIECES:
        return None
    at = [p for p in ((i, j)) if type(p) is not int]   # (g's axes: the slices')
    plan = []
    for k in common:
        pos = tuple(r.index(k) for r, p in zip((ri, rj), (i, j)) if type(p) is not int)
        plan.append((0, (k,), _as_is if not at else lambda b, g, args, out, pos=pos: b.index(g, key=pos)))
    return plan


MOVES = {"transpose": _transpose, "sum": _reduction(False), "mean": _reduction(True), "reshape": _reshape,
         "stack": _stack, "concatenate": _concatenate, "broadcast_to": _broadcast_to, "matmul": _matmul,
         "outer": _outer,
         "max": _across(T.vjp_extreme, True), "min": _across(T.vjp_extreme, True),
         "logsumexp": _across(T.vjp_logsumexp, True), "softmax": _across(T.vjp_softmax, False),
         "log_softmax": _across(T.vjp_log_softmax, False), "diagonal": _diagonal, "diag": _diag}


def moved(b, terms: list, opname: str, args: list, out: int, attrs: dict, active: list,
          masks: Optional[dict] = None) -> Optional[dict]:
    """The terms of a lane-moving op's adjoint (MOVES) moved to its arguments: for each
    active argument j, (dense part or None, terms), as `push`'s; None where a term's
    key does not map (the caller materializes them all, as before). `masks`: argument
    j -> (pre, builder conditions) of a where()'s mask on its edge (reverse_masks_build:
    pre, on the adjoint the op takes, here each term's at its keyed lanes; else on the
    contribution, scalar conditions)."""
    rule, shapes, out_shape = MOVES[opname], [b.shape(x) for x in args], b.shape(out)
    pre = [conds for p, conds in (masks or {}).values() if p and conds]
    plans = []
    for g, keys in terms:
        if 0 in b.shape(g):   # (a key that reads no lane: no contribution, where the
            continue          # dense one was scatter(g) = 0 times the partials, NaN at inf)
        key = one_key(keys, out_shape)
        if key is None or all(item == FULL or d == 1 for item, d in zip(key, out_shape)):
            return None   # (a key of every lane, y[0, 0] of a 1×1: no zero to keep out)
        plan = rule(key, shapes, out_shape, attrs)
        if plan is None or any(None in k for _, k, _ in plan):
            return None
        if any(keyed_conds(b, conds, keys, out_shape, build=False) is None for conds in pre):
            return None   # (a condition that does not line up with the keyed lanes)
        plans.append((g, keys, plan))
    got: dict = {}
    for g, keys, plan in plans:
        kept: dict = {}   # (the term's adjoint masked, per mask)
        for j, key, move in plan:
            if not active[j]:
                continue
            p, conds = (masks or {}).get(j, (False, ()))
            if p and conds:
                if id(conds) not in kept:
                    kept[id(conds)] = mask_built(b, g, keyed_conds(b, conds, keys, out_shape))
                c = move(b, kept[id(conds)], args, out)
            else:
                c = move(b, g, args, out)
                if conds:
                    c = mask_built(b, c, conds)
            dense, new = got.setdefault(j, [None, []])
            short = trim_key(key)
            if short:
                new.append((c, (short,)))
            else:
                got[j][0] = c if dense is None else b.add(dense, c)
    return got
