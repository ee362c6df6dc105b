"""The bulk reverse sweep's scaled products: c·G -> (c·k)·y where G names k·y.

Where it sits: passes/reverse_bulk_layout.py has put every new instruction as
columns (NewInstrs); before the gradient's columns are made, this pass applies the one
identity of grad_reverse's builder that changes rounding and that the per-kind
templates cannot see: a product of a power of two c and a variable G that names a
product k·y with a constant is (c·k)·y (identities._scale_constant). One rounding
where c·(k·y) has two: they differ where k·y under- or overflows (the subnormal
range rounds absolutely). A template records c·G on a placeholder G, and what G is
depends on the edge (a regular contribution k·G', a constant sweep's item, a primal
product that a hash-consing hit named), so the products are found here, on the
instructions: a filter in NumPy (products of a power of two whose other argument
names, through copies, a product with a constant: ~0.1% of the new instructions on
the text family), then each in position order, as the builder meets them (a fold
may feed the next one: 0.5·(0.5·G') is 0.25·G'). What then reads nothing and is no
output is dropped, as grad_reverse's finish drops it (G, its copies, an unread
constant; their readers counted for the few variables asked, _Readers); c·k is
put right before its first reader where no constant of its value comes earlier
(the builder makes it there); a folded product that the builder's hash-consing
finds built is that one, and c·k = 1 makes it y (a named adjoint: a copy of it);
the new instructions' places are moved (a Moved, which NewInstrs.columns
and bar_columns read: the columns are not copied to move them).

Not covered (fold_scaled returns False, the caller takes grad_reverse): c·k = −1
(−y: the identities on negations go on), a y that names a negation (the builder
pulls an unlabelled one out of the product; one that is y is summed as old − m)
or a constant.
"""

from __future__ import annotations

import math
from itertools import compress

import numpy as np

from ..trace.identities import scales_exactly
from .reverse_bulk_share import _const_key


class _NotCovered(Exception):
    pass


def fold_scaled(out, n: int, instrs, cval: dict, arg_cols, op_kind, op_id, outputs, labelled,
                unread=()) -> object:
    """Folds c·G into (c·k)·y among `out`'s instructions (positions n..), the
    primal's `instrs` (`cval` its constants, `arg_cols` its argument columns,
    `op_kind`/`op_id` its ops); `outputs`: the positions read as outputs;
    `labelled(v)`: whether variable v carries a label; `unread`: variables that lost
    a reader before (the layout's: dropped with the folds' if nothing reads them).
    Returns None where nothing changed, False where a fold is not covered, else the
    old -> new position map (an array: a dropped instruction's entry is not
    meaningful; out.moved says where each instruction goes)."""
    unread = [v for v in unread if v >= n]
    if unread:   # (most are still read: then nothing to renumber for them)
        at = np.array(sorted(set(unread)), np.int64)
        unread = [v for v in at[~_read(_used_rows(out), at, n + len(out.code))].tolist() if v not in outputs]

    def unchanged():
        return _drop_and_renumber(out, n, unread, [], [], outputs) if unread else None
    mul_code = out.ops.get("mul")
    if mul_code is None:
        return unchanged()
    code, arity, A = out.code, out.arity, out.args
    S = len(code)
    # constants (the primal's, and the new region's, which are made as tuples) and
    # copies, over all positions
    const_at = {v: float(k) for v, k in cval.items()}
    tuples = np.flatnonzero(code < 0)
    new = out.new
    for q in tuples.tolist():
        ins = new[q]
        if ins is not None and ins[0] == "const":
            const_at[n + q] = float(ins[2][0][1])
    is_c = np.zeros(n + S, bool)
    if const_at:
        is_c[np.fromiter(const_at, np.intp, len(const_at))] = True
    copy_code = out.ops.get("copy", -2)
    p_copy = op_kind == op_id["copy"] if "copy" in op_id else np.zeros(n, bool)
    is_copy = np.concatenate((p_copy, code == copy_code))
    col0 = np.concatenate((arg_cols[0], A[0]))

    def through(x):
        while True:
            step = is_copy[x]
            if not step.any():
                return x
            x = np.where(step, col0[x], x)

    # every product's arguments' sources (through copies), primal then new; those of
    # one constant (k·y) are what a fold looks into, and what hash-consing may find
    p_mul = op_kind == op_id["mul"] if "mul" in op_id else np.zeros(n, bool)
    P, N = np.flatnonzero(p_mul), np.flatnonzero((code == mul_code) & (arity == 2))
    s0 = through(np.concatenate((arg_cols[0][P], A[0, N])))
    s1 = through(np.concatenate((arg_cols[1][P], A[1, N])))
    c0 = is_c[s0]
    one = c0 != is_c[s1]
    where = np.concatenate((P, n + N))[one]
    s0, s1, c0 = s0[one], s1[one], c0[one]
    scaled = np.zeros(n + S, bool)
    scaled[where] = True
    is_mul = np.concatenate((p_mul, code == mul_code))
    # the filter: new products of a power of two c and a G that names a k·y
    new_ones = np.flatnonzero(where >= n)
    cvar = np.where(c0, s0, s1)[new_ones]
    distinct = np.unique(cvar, return_index=True)[0]   # (with an index: numpy.ma not imported)
    scales = np.array([scales_exactly(const_at[v]) and abs(const_at[v]) != 1.0 for v in distinct.tolist()], bool)
    ok = scales[np.searchsorted(distinct, cvar)] if len(distinct) else np.zeros(0, bool)
    new_ones = new_ones[ok]
    m = where[new_ones[scaled[np.where(c0, s1, s0)[new_ones]]]] - n
    del P, N, one, scaled, new_ones, cvar, distinct, scales, ok
    if not len(m):
        return unchanged()
    neg_code = out.ops.get("neg", -2)
    p_neg = op_kind == op_id["neg"] if "neg" in op_id else np.zeros(n, bool)

    def source(v: int) -> int:   # (through copies and aliases)
        while v < n + S and is_copy[v]:
            v = int(col0[v])
        return v

    def args_of(v: int) -> tuple:
        if v < n:
            return int(arg_cols[0][v]), int(arg_cols[1][v])
        return int(A[0, v - n]), int(A[1, v - n])

    def value(v: int):
        return const_at.get(source(v))

    def scaled(c: float, other: int):
        """The builder's mul(c, other) after a fold, as far as its identities go:
        (c, y), or (1.0, y) where it is y. (A loop, not a recursion: a recursive
        closure is a reference cycle, which would keep this pass's arrays alive
        until the next collection.)"""
        while True:
            s = source(other)
            if s in const_at:
                raise _NotCovered   # (a product of constants: folded)
            if (p_neg[s] if s < n else code[s - n] == neg_code) and (c == 1.0 or not labelled(s)):
                raise _NotCovered   # (an unlabelled negation is pulled out of a product; −m is summed as old − m)
            if c == -1.0:
                raise _NotCovered   # (−y: the identities on negations go on)
            if c == 1.0 or not (scales_exactly(c) and s < n + S and is_mul[s]):
                return c, other
            for k, y in _pairs(args_of(s)):
                kv = value(k)
                if kv is not None and math.isfinite(c * kv):
                    c, other = c * kv, y
                    break
            else:
                return c, other

    known = {}   # a constant's key -> its position (an inserted one: n + S + j)
    for v, c in const_at.items():
        known.setdefault(_const_key(c), v)
    products = _Products(n + S, where, s0, s1)
    inserted = []   # (before which relative position, value)
    lost = list(unread)   # variables that lost a reader
    aliased = []   # (relative position, the variable it is)
    try:
        for rel in m.tolist():
            a, b = int(A[0, rel]), int(A[1, rel])
            c_first = value(a) is not None
            c, other = (value(a), b) if c_first else (value(b), a)
            folded = None
            s = source(other)
            if s >= n + S or not is_mul[s]:   # (what G names changed: an earlier fold's alias)
                continue
            for k, y in _pairs(args_of(s)):
                kv = value(k)
                if kv is not None and math.isfinite(c * kv):
                    folded = scaled(c * kv, y)
                    break
            if folded is None:
                continue
            lost += (a, b)
            ck, y = folded
            var = known.get(_const_key(ck))
            if var is not None and n + rel <= var < n + S:
                var = None   # (one comes later: a new one before this reader)
            # what the builder's hash-consing finds: an earlier product of these sources
            hit = y if ck == 1.0 else None if var is None else products.find(source(var), source(y), n + rel)
            if hit is not None:
                if labelled(n + rel):   # (a named adjoint: a copy of what was found)
                    code[rel], arity[rel], A[:, rel] = out.ops.setdefault("copy", len(out.ops)), 1, (hit, 0, 0)
                else:   # (read where it is read: dropped)
                    arity[rel], A[:, rel] = 0, 0
                    aliased.append((rel, hit))
                is_copy[n + rel], col0[n + rel] = True, hit
                products.changed[n + rel] = None
                continue
            if var is None:
                var = known[_const_key(ck)] = n + S + len(inserted)
                const_at[var] = ck
                inserted.append((rel, ck))
            A[0, rel], A[1, rel] = var, y
            products.rewritten(n + rel, source(var), source(y))
    except _NotCovered:
        return False
    if not lost:
        return None
    return _drop_and_renumber(out, n, lost, inserted, aliased, outputs)


class _Products:
    """The builder's hash-consing of products, for the few folded ones (a constant
    and y: only a product of one constant may be one): those products' keys (their
    arguments' sources, in order) sorted once; those rewritten here kept aside
    (their old keys no longer hold)."""

    def __init__(self, size, where, a, b):
        self.R = R = 2 * (size + 1)   # (past every position, an inserted constant's too)
        keys = np.minimum(a, b).astype(np.int64) * R + np.maximum(a, b)
        order = np.argsort(keys, kind="stable")   # (within a key, in position order)
        self.keys, self.where = keys[order], where[order]
        self.changed: dict = {}   # position -> its new key
        self.by_key: dict = {}   # a rewritten product's key -> its position (the first)

    def find(self, a: int, b: int, before: int):
        key = min(a, b) * self.R + max(a, b)
        found = self.by_key.get(key)
        j = int(np.searchsorted(self.keys, key))
        while j < len(self.keys) and self.keys[j] == key:
            v = int(self.where[j])
            if v >= before:
                break
            if v not in self.changed:
                return v if found is None else min(v, found)
            j += 1
        return found

    def rewritten(self, v: int, a: int, b: int) -> None:
        key = min(a, b) * self.R + max(a, b)
        self.changed[v] = key
        self.by_key.setdefault(key, v)


def _pairs(args: tuple) -> tuple:
    """(constant candidate, the other) in the order _scale_constant tries them."""
    return (args[0], args[1]), (args[1], args[0])


def _used_rows(out) -> np.ndarray:
    """out's argument rows that some instruction uses (a third only for where(c, x,
    y)); an unused slot holds 0, an input's position, in the rows given too."""
    return out.args[:max(int(out.arity.max(initial=0)), 1)]


def _read(A: np.ndarray, at: np.ndarray, size: int) -> np.ndarray:
    """Whether some argument in `A` is each of `at` (distinct, sorted; below `size`):
    the arguments that are picked out by a mask, not a count of every variable's
    readers (np.bincount over millions of arguments: ~0.1 µs an operation at 10^6)."""
    wanted = np.zeros(size, bool)
    wanted[at] = True
    hits = A[wanted[A]]
    hits.sort()
    j = np.minimum(np.searchsorted(hits, at), len(hits) - 1)
    return hits[j] == at if len(hits) else np.zeros(len(at), bool)


def _drop_and_renumber(out, n: int, lost: list, inserted: list, aliased: list, outputs):
    """Drops what reads nothing (from `lost`, up its arguments) and the `aliased`
    (relative position, the variable it is: its readers read that), puts the
    inserted constants in; returns the old -> new position map."""
    code, arity, A = out.code, out.arity, _used_rows(out)
    S, J = len(code), len(inserted)
    amap = None
    if aliased:
        amap = np.arange(n + S + J)
        for rel, v in aliased:   # (in position order: what v is, is settled)
            amap[n + rel] = amap[v]
        A[...] = amap[A]
        outputs = [None if v is None else int(amap[v]) for v in outputs]
    outs = set(int(v) for v in outputs if v is not None and v >= 0)
    dead = np.zeros(S + J, bool)   # (relative positions, then the inserted constants)
    for rel, _ in aliased:
        dead[rel] = True
    # (what nothing reads, peeled off up the arguments: the same whatever the order; in
    # rounds, the readers of a round's variables counted at once)
    readers = _Readers(A) if lost else None
    work = list(lost)
    while work:
        readers.ask([v for v in work if v >= n])
        reads, later = readers.reads, []
        while work:
            v = work.pop()
            if v < n or dead[v - n] or v in outs:
                continue
            left = reads.get(v)
            if left is None:   # (an argument of one dropped this round)
                later.append(v)
                continue
            if left:
                continue
            dead[v - n] = True
            q = v - n
            for k in range(int(arity[q]) if q < S else 0):
                readers.take(int(A[k, q]))
                work.append(int(A[k, q]))
        work = later
    # (int32, as positions are (the driver's bound), and no temporary column: at 10^6
    # text each new megabyte's first touch costs ~1-3 ms, the kernel's huge pages)
    keep, kept_ins = ~dead[:S], ~dead[S:]
    kept_before = np.cumsum(keep, dtype=np.int32)
    kept_before -= keep
    at = np.array([r for r, _ in inserted], np.int64)[kept_ins]
    new_rel = kept_before.copy()
    for r in at.tolist():   # (a few: one a new constant's value)
        new_rel[r:] += 1
    ins_rel = kept_before[at] + np.arange(len(at))
    pos_map = np.zeros(n + S + J, np.int32)   # (a dropped instruction's entry: not meaningful)
    pos_map[:n] = np.arange(n, dtype=np.int32)
    np.add(new_rel, n, out=pos_map[n:n + S])
    pos_map[n + S:][kept_ins] = n + ins_rel
    for rel, _ in aliased:
        pos_map[n + rel] = pos_map[amap[n + rel]]
    A[...] = pos_map[A]   # (the arguments' new places: nothing held while made)
    out.moved = Moved(keep, new_rel, kept_before[at],
                      list(zip(ins_rel.tolist(), compress((v for _, v in inserted), kept_ins.tolist()))))
    return pos_map


class _Readers:
    """How many argument slots read a variable, asked for a round of variables at a
    time (`ask`, then `reads`), less those taken: from one sorted copy of the
    arguments. (np.bincount over them all scatters a count per variable over an array
    of every position: a cache miss each, ~0.13 µs an operation at 10^6 text, for a
    few thousand variables asked.) An unused argument slot holds 0, an input's
    position: counted, never asked."""

    def __init__(self, A: np.ndarray):
        self.sorted = np.sort(A, axis=None)
        self.reads: dict = {}
        self.taken: dict = {}   # (taken before it was asked)

    def ask(self, vs: list) -> None:
        vs = sorted(set(vs).difference(self.reads))
        if vs:
            at = np.array(vs, self.sorted.dtype)   # (of its dtype: not the sorted copy converted)
            found = np.searchsorted(self.sorted, at, "right") - np.searchsorted(self.sorted, at, "left")
            taken = self.taken
            self.reads.update((v, c - taken.pop(v, 0)) for v, c in zip(vs, found.tolist()))

    def take(self, v: int) -> None:
        if v in self.reads:
            self.reads[v] -= 1
        else:
            self.taken[v] = self.taken.get(v, 0) + 1


class Moved:
    """Where fold_scaled moved the new instructions (read by NewInstrs.columns and
    bar_columns, so the columns are not copied to be moved; their arguments are
    already the new places): `keep`, the relative positions kept; `new_rel`, their
    new places; `where`, the inserted constants' places among the kept; `consts`,
    [(new place, value)] of the inserted constants."""

    __slots__ = ("keep", "new_rel", "where", "consts", "size")

    def __init__(self, keep, new_rel, where, consts):
        self.keep, self.new_rel, self.where, self.consts = keep, new_rel, where, consts
        self.size = int(keep.sum()) + len(consts)

    def columns(self, column: np.ndarray, fill) -> np.ndarray:
        """A per-position column moved (an inserted constant's entry `fill`)."""
        return np.insert(column[self.keep], self.where, fill)

    def listed(self, items: list) -> list:
        """A per-position list moved (an inserted constant's entry None)."""
        moved = list(compress(items, self.keep.tolist()))
        for dst, _ in self.consts:
            moved.insert(dst, None)
        return moved

    def keyed(self, items: dict) -> dict:
        """{relative position: x} moved, the dropped positions' left out."""
        at = np.fromiter(items, np.int64, len(items))
        alive = self.keep[at]
        return dict(zip(self.new_rel[at[alive]].tolist(), compress(items.values(), alive.tolist())))


def replay_folds(op_kind, op_id, cols, is_const, const_values, pattern_of) -> bool:
    """Whether grad_reverse's replay would fold a product of the primal c·(k·v) into
    (c·k)·v (its builder's _scale_constant, with c a power of two): then its primal
    is not the trace as written and its bits may differ (k·v under- or overflowing),
    so the bulk sweep, which keeps the primal as written, is not taken. `pattern_of`:
    the driver's argument patterns, whose ("mul", p, k) entries are the primal's
    products of a constant k ≠ ±1 and a variable."""
    if "mul" not in op_id or not pattern_of:
        return False
    c0 = is_const[cols[0]]
    sel = np.flatnonzero((op_kind == op_id["mul"]) & (c0 != is_const[cols[1]]))
    c0 = c0[sel]
    other = np.where(c0, cols[1][sel], cols[0][sel])
    if "copy" in op_id:   # (the replay's builder looks through copies)
        is_copy = op_kind == op_id["copy"]
        while is_copy[other].any():
            other = np.where(is_copy[other], cols[0][other], other)
    scaled = np.zeros(len(op_kind), bool)
    at = [v for v, entry in pattern_of.items() if type(entry) is tuple and entry[0] == "mul"]
    if not at:
        return False
    scaled[at] = True
    hit = scaled[other]
    for c, v in zip(np.where(c0, cols[0][sel], cols[1][sel])[hit].tolist(), other[hit].tolist()):
        c = const_values[c]
        if scales_exactly(c) and math.isfinite(c * pattern_of[v][2]):
            return True
    return False
