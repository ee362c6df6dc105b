"""What an index adjoint's term reads of a value that broadcasts to the keyed one.

Where it sits: reverse_index (push, an elementwise op's arguments and a where()'s
conditions) and reverse_index_moves (moved, the conditions of a where()'s mask on an
op that moves lanes) read values at the lanes a term (g, keys) holds: each key of the
chain projected onto the value's own axes (`project`), the value indexed so.
"""

from __future__ import annotations

from typing import Optional

from .. import tensor_rules as T

FULL = (None, None, None)


def project(key: tuple, out_shape: tuple, arg_shape: tuple) -> Optional[tuple]:
    """The key that reads, of an argument of shape `arg_shape` that an elementwise op
    broadcasts to `out_shape`, the lanes out[key] reads: an axis the argument lacks
    is dropped, one it has at size 1 is read at 0 (an int) or whole (a slice);
    trailing whole slices are dropped (() : the argument is read whole). None where
    the shapes do not line up so."""
    n, m = len(out_shape), len(arg_shape)
    if m > n:
        return None
    got = []
    for k in range(n - m, n):
        item = key[k] if k < len(key) else FULL
        d, s = arg_shape[k - (n - m)], out_shape[k]
        if d == s:
            got.append(item)
        elif d == 1:
            got.append(0 if type(item) is int else FULL)
        else:
            return None
    while got and got[-1] == FULL:
        got.pop()
    return tuple(got)


def keyed_conds(b, conds: tuple, keys: tuple, shape: tuple, build: bool = True) -> Optional[tuple]:
    """Builder conditions (as reverse_masks_build._mask takes them: of a where()'s mask
    at a value of `shape`) read at the lanes the chain `keys` reads of that value;
    None where a condition does not line up (nothing is built: ask with build=False
    first, before any instruction of the term)."""
    at: dict = {}
    for anyof in conds:
        for each in anyof:
            for v, _ in each:
                if v in at:
                    continue
                s, cs, x = shape, b.shape(v), v
                for key in keys:
                    pk = project(key, s, cs)
                    if pk is None:
                        return None
                    if pk:
                        cs = T.shape_index([cs], {"key": pk})
                        if build:
                            x = read(b, x, pk)
                    s = T.shape_index([s], {"key": key})
                at[v] = x
    return tuple(tuple(tuple((at[v], side) for v, side in each) for each in anyof) for anyof in conds)


def read(b, c: int, key: tuple) -> int:
    """c[key]; where c is a scatter at that very key (a where()'s condition moved to an
    index's argument: reverse_masks_moves), the value it scatters, with no pass over
    the whole."""
    ins = b.instrs[c]
    if ins[0] == "scatter" and _trimmed(dict(ins[2])["key"]) == _trimmed(key):
        x = ins[1][0]
        if b.shape(x) == T.shape_index([ins[3]], {"key": key}):
            return x
    return b.index(c, key=key)


def _trimmed(key: tuple) -> tuple:
    key = tuple(key)
    while key and key[-1] == FULL:
        key = key[:-1]
    return key
