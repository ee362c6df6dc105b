"""Index adjoints moved through a reshape whose key reads no block of its argument.

Where it sits: reverse_index_moves._reshape asks `pieces` when a key of a reshape's
output does not map to one key of its argument the simple way (an element or a C-order
block per group of axes): reshape(sqrt(x), (2, 3))[1, ::-1] (a block, reversed),
reshape(X, (12,))[1::3] (a column of X (4, 3)), reshape(transpose(sqrt(X)), (12,))[3:7]
(the end of one row and the start of the next). The dense adjoint there (scatter(g),
then the reshape's VJP) met the partials of lanes no output reads: 0·inf = NaN.

The lanes a key reads of a group of axes, in C order, are a strided view: an offset and
(count, stride) dims (`_view`). Such a view is one key of the argument's group when
the view of that key is the same sequence: views are compared in a canonical form
(dims of one lane dropped, a dim merged into the next outer one where they continue
each other), which is unique for a sequence. `_fit` builds the candidate key dim by
dim, innermost first, on the axis whose stride divides the dim's (a dim that runs off
the end of its axis is split where it wraps), then checks it so. A view that is no
key is cut into runs that are (`_runs`: greedily the longest run of its outermost dim
that fits, trying the ends of the argument's blocks; the inner dims, where no run
fits, recursively), at most MAX_PIECES in all groups together, else None (the dense
path). Each piece is a term of the argument: its part of g (g's lanes of each group
flattened, cut, reshaped to the piece's shape). Sizes must be numbers.
"""

from __future__ import annotations

import math
from typing import Optional

from .. import tensor_rules as T

FULL = (None, None, None)
# At most this many terms from one term of a reshape's output (each is pushed on
# through every op upstream): past it, the dense path.
MAX_PIECES = 8


def _strides(dims) -> list:
    out, s = [], 1
    for d in reversed(dims):
        out.append(s)
        s *= d
    return out[::-1]


def _canon(dims) -> tuple:
    """(count, stride) dims, outermost first, in canonical form (see the docstring)."""
    out: list = []
    for n, s in reversed([(n, s) for n, s in dims if n > 1]):   # (innermost first)
        if out and s == out[-1][0] * out[-1][1]:
            out[-1] = (n * out[-1][0], out[-1][1])
        else:
            out.append((n, s))
    return tuple(out[::-1])


def _view(items, dims) -> tuple:
    """(offset, dims) of the lanes that items (ints and normal slices) read of `dims`."""
    offset, vd = 0, []
    for item, d, s in zip(items, dims, _strides(dims)):
        if type(item) is int:
            offset += item * s
        else:
            r = range(d)[slice(*item)]
            offset += r.start * s
            vd.append((len(r), r.step * s))
    return offset, vd


def slice_item(r: range, d: int):
    """The slice item that reads the lanes `r` of a dimension of size d (FULL: all of
    them, in order); None for no lane (an empty slice)."""
    if not r:
        return None
    if r.start == 0 and r.step == 1 and len(r) == d:
        return FULL
    stop = r.start + r.step * len(r)
    return (r.start, stop if stop >= 0 else None, None if r.step == 1 else r.step)


def _fit(offset: int, vdims, dims) -> Optional[list]:
    """Items of `dims` that read the view (offset, vdims) in its order, or None."""
    want = _canon(vdims)
    strides = _strides(dims)
    coords, rest = [], offset
    for s in strides:
        c, rest = divmod(rest, s)
        coords.append(c)
    items: list = list(coords)
    work = list(want)   # (innermost last: popped first)
    last = len(dims)
    while work:
        n, st = work.pop()
        a = next((k for k in range(len(dims) - 1, -1, -1) if strides[k] <= abs(st) < strides[k] * dims[k]
                  or (k == 0 and strides[k] <= abs(st))), None)
        if a is None or a >= last or st % strides[a]:
            return None
        s, c, d = st // strides[a], coords[a], dims[a]
        if 0 <= c + s * (n - 1) < d:
            items[a], last = slice_item(range(c, c + s * n, s), d), a
            continue
        m = d // abs(s)
        if d % abs(s) or n % m or a == 0 or not 0 <= c + s * (m - 1) < d:
            return None
        items[a], last = slice_item(range(c, c + s * m, s), d), a
        outer = (n // m, strides[a - 1] if s > 0 else -strides[a - 1])
        if work and work[-1][1] == outer[0] * outer[1]:
            outer = (outer[0] * work.pop()[0], outer[1])
        work.append(outer)
    got = _view(items, dims)
    return items if got[0] == offset and _canon(got[1]) == want else None


def _runs(offset: int, vdims: list, dims, budget: int) -> Optional[list]:
    """The view cut into pieces (items of `dims`, lanes), each a key, in order; None
    past `budget` pieces."""
    items = _fit(offset, vdims, dims)
    if items is not None:
        return [(items, _count(vdims))]
    if not vdims or budget <= 1:
        return None
    (n, st), rest = vdims[0], list(vdims[1:])
    out, i0, blocks = [], 0, [math.prod(dims[k:]) for k in range(1, len(dims))]
    while i0 < n:
        o = offset + i0 * st
        ends = {n}
        for size in blocks:   # (to the end of the argument's block that o is in)
            base = o // size * size
            r = -(-(base + size - o) // st) if st > 0 else (o - base) // -st + 1
            ends.add(min(n, i0 + r))
        for i1 in sorted(ends, reverse=True):
            items = _fit(o, [(i1 - i0, st)] + rest, dims)
            if items is not None:
                out.append((items, (i1 - i0) * _count(rest)))
                i0 = i1
                break
        else:
            sub = _runs(o, rest, dims, budget - len(out))
            if sub is None:
                return None
            out += sub
            i0 += 1
        if len(out) > budget:
            return None
    return out


def _count(vdims) -> int:
    return math.prod(n for n, _ in vdims)


def pieces(key: tuple, xs: tuple, out_shape: tuple, groups: list) -> Optional[list]:
    """reshape's rule (reverse_index_moves.MOVES) where the key is no block of x: the
    [(0, key of x, move)] of its pieces, or None (sizes named, past MAX_PIECES)."""
    if not all(type(d) is int for d in xs + out_shape):
        return None
    per_group, lanes = [], []
    for xa, oa in groups:
        items = [key[a] for a in oa]
        offset, vdims = _view(items, [out_shape[a] for a in oa])
        got = _runs(offset, vdims, [xs[a] for a in xa], MAX_PIECES)
        if got is None:
            return None
        per_group.append(got)
        lanes.append(_count(vdims))
    combos: list = [([], [])]   # (items per group, lane range per group)
    for got in per_group:
        new = []
        for items, cuts in combos:
            p = 0
            for its, n in got:
                new.append((items + [its], cuts + [(p, p + n)]))
                p += n
        combos = new
        if len(combos) > MAX_PIECES:
            return None
    whole = tuple(len(got) == 1 for got in per_group)
    plan = []
    for items, cuts in combos:
        arg_key = [FULL] * len(xs)
        for (xa, _), its in zip(groups, items):
            for a, item in zip(xa, its):
                arg_key[a] = item
        arg_key = tuple(arg_key)
        cut = tuple(FULL if w else (p0, p1, None) for w, (p0, p1) in zip(whole, cuts))
        plan.append((0, arg_key, _move(tuple(lanes), cut, T.shape_index([xs], {"key": arg_key}))))
    return plan


def _move(lanes: tuple, cut: tuple, want: tuple):
    """g's part for a piece: g's lanes of each group flattened, cut, shaped as x[key]."""
    def move(b, g, args, out):
        if any(c != FULL for c in cut):
            if b.shape(g) != lanes:
                g = b.reshape(g, shape=lanes)
            g = b.index(g, key=cut)
        return g if b.shape(g) == want else b.reshape(g, shape=want)
    return move
