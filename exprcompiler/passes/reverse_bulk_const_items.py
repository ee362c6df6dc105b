"""The constant sweep's items laid out: which are read, where each goes, written.

Where it sits: passes/reverse_bulk_consts.py sweeps the constant adjoints (the seed
cascade) and makes items; passes/reverse_bulk_layout.py then asks this half of the
sweep (`ConstantItems`, ConstantSweep's base class) for each Python edge's block size
(`blocks`: what nothing reads is dropped, as grad_reverse's finish drops it: copies of
constants that every use folded; and each new constant goes where it is first read),
gives the blocks their starts by its cumsum (`place`), and has the items written
(`put`). It reads the items' refs as columns (_columns: blocks, place and put make no
Python loop per item; session 37: those three 0.90 -> 0.61 µs an operation at 10^5
text, CPU medians alternating with the loops they replaced in one process).

A ref is (P, v): primal variable v; (Q, k): item k; (K, value): a constant; (E, e):
the adjoint after regular edge e (the layout's).
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from ..trace.ir import _new_tuple
from ..trace.ir_trace import Instr
from .reverse_bulk_order import stable_order

P, Q, K, E = 0, 1, 2, 3


class ConstantItems:
    """The items of a constant sweep, laid out: `blocks`, then `place`, then `put`.
    The sweep sets ops, args, labels, edge, src (an item each), arity, kinds, xs (its
    refs, flat: see _columns), result ({python edge: (ref, constant value or None)}),
    mine (its edges, a mask) and _k_var ({}: see var)."""

    def blocks(self, const_var: dict, const_key, roots) -> np.ndarray:
        """Drops what nothing reads (roots: the refs the layout reads, each with the
        edge after which it is read), puts each new constant before its first reader;
        returns each python edge's block size (the seed's: self.seed_size). The items'
        refs as columns (_columns), read here and by put: no Python loop per item."""
        n_items = len(self.ops)
        arity, first_arg, kinds, xs = self._columns = _columns(self.arity, self.kinds, self.xs)
        del self.arity, self.kinds, self.xs
        owner = np.repeat(np.arange(n_items), arity)
        root = np.zeros(n_items, bool)
        root[[r[1] for r, _ in roots if r[0] == Q]] = True
        live = _live(owner, kinds, xs, root)
        # constants, in item order: a new one where first read (the roots' first)
        at_k = np.flatnonzero(kinds == K)
        at_k = at_k[live[owner[at_k]]]
        consts: dict = {}   # a new constant's key -> its item
        before: list = []   # (the new constants' first readers, in order; -1: the roots')
        edge = self.edge
        for r, e in roots:   # (read by the layout after edge e: in its block)
            if r[0] == K and self._new_const(consts, const_var, const_key, r[1], e):
                before.append(-1)
        for k, x in zip(owner[at_k].tolist(), xs[at_k].tolist()):
            if self._new_const(consts, const_var, const_key, x, edge[k]):
                before.append(k)
        order = np.flatnonzero(live)
        if consts:
            at = np.array(before, np.int64)
            order = np.insert(order, np.searchsorted(order, np.maximum(at, 0)) * (at >= 0),
                              np.arange(n_items, n_items + len(consts)))
        self._consts, self._const_var, self._const_key = consts, const_var, const_key
        self.edge_np = np.array(edge, np.int64)
        sizes = np.bincount(self.edge_np[order] + 1, minlength=len(self.mine) + 1)
        self.order = order
        self.seed_size = int(sizes[0])
        return sizes[1:]

    def _new_const(self, consts: dict, const_var: dict, const_key, value, edge) -> bool:
        """An item for a constant of `value` read in `edge`'s block, if no variable
        has its key yet (then True)."""
        key = const_key(value)
        if key in const_var or key in consts:
            return False
        consts[key] = len(self.ops)
        self.src.append((Q, len(self.ops)))
        self.ops.append("const")
        self.args.append(value)
        self.labels.append(None)
        self.edge.append(edge)
        return True

    def place(self, start, seed_start, total) -> None:
        """Each item's variable from its block's start; the python edges' totals."""
        order = self.order
        edges = self.edge_np[order]
        by_edge = np.argsort(edges, kind="stable")   # (a root's constant was put first)
        edges = edges[by_edge]
        heads = np.flatnonzero(np.concatenate(([True], edges[1:] != edges[:-1]))) if len(edges) else edges
        rank = np.arange(len(edges)) - np.repeat(heads, np.diff(np.append(heads, len(edges))))
        starts = np.full(len(edges), seed_start, np.int64)   # (edge -1: the seed's block)
        starts[edges >= 0] = start[edges[edges >= 0]]
        pos = np.full(len(self.ops), -1, np.int64)   # (-1: a dead item, which nothing reads)
        pos[order[by_edge]] = starts + rank
        self.pos_np = pos   # (not a list: read for a few items, a Python int each made and freed)
        result = self.result
        if result:
            # (all at once: a Python edge's E ref is a regular edge's total, not written here)
            refs = list(map(itemgetter(0), result.values()))
            total[np.fromiter(result, np.int64, len(result))] = self._resolved(
                np.fromiter(map(itemgetter(0), refs), np.int8, len(refs)),
                np.fromiter(map(itemgetter(1), refs), np.float64, len(refs)), total)

    def var(self, r, total) -> int:
        kind, x = r
        if kind == P:
            return x
        if kind == Q:
            return int(self.pos_np[x])
        if kind == K:
            # (nonzero, not NaN: the value is an exact key; else its repr, as const_var's)
            v = self._k_var.get(x) if x and x == x else None
            if v is None:
                key = self._const_key(x)
                v = self._const_var.get(key)
                v = v if v is not None else int(self.pos_np[self._consts[key]])
                if x and x == x:
                    self._k_var[x] = v
            return v
        return int(total[x])

    def _resolved(self, kinds: np.ndarray, xs: np.ndarray, total) -> np.ndarray:
        """The variables of refs (a column of them: their kinds, and their x as floats;
        as var gives them), in NumPy but for constants'."""
        got = np.where(kinds == K, 0.0, xs).astype(np.int64)   # (P: the variable itself)
        at = kinds == Q
        got[at] = self.pos_np[got[at]]
        at = kinds == E
        got[at] = total[got[at]]
        at = np.flatnonzero(kinds == K)
        if len(at):
            var = self.var
            got[at] = [var((K, x), total) for x in xs[at].tolist()]
        return got.astype(np.int32)

    def put(self, out, n: int, label_of: np.ndarray, total) -> int:
        """The items, in place (`out`: NewInstrs; its constants as tuples, the rest as
        columns, so that a later pass reads every new instruction alike), and their
        labels' primal variables in `label_of` (see __init__); returns how many."""
        arity, first_arg, kinds, xs = self._columns
        n_items, order, pos, ops = len(arity), self.order, self.pos_np, self.ops
        for k in order[order >= n_items].tolist():   # (the new constants: after the items)
            p = pos[k] - n
            out.new[p] = _new_tuple(Instr, ("const", (), (("value", self.args[k]),), ()))
            out.written[p] = True
        items = order[order < n_items]
        # (by op and arity, each group in item order, the groups by their first item)
        names = {op: c for c, op in enumerate(dict.fromkeys(ops))}
        code = np.fromiter(map(names.__getitem__, ops), np.int64, len(ops))[items] * 4 + arity[items]
        by_code = stable_order(code)
        items, code = items[by_code], code[by_code]
        heads = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1]))) if len(code) else code
        groups = np.split(items, heads[1:])
        for group in sorted(groups, key=lambda g: int(g[0])) if len(items) else ():
            k = int(group[0])
            out.put(pos[group], ops[k],
                    [self._resolved(kinds[first_arg[group] + j], xs[first_arg[group] + j], total)
                     for j in range(int(arity[k]))])
        labels = np.array(self.labels, np.float64)[order]   # (None: NaN)
        named = ~np.isnan(labels)
        if named.any():
            label_of[pos[order[named]] - n] = labels[named].astype(np.int64)
        return len(order)


def _columns(arity: list, kinds: list, xs: list) -> tuple:
    """The items' refs as columns, from the lists that _item and run write as the
    items are made (reading the refs' tuples afterwards, scattered in memory, took
    ~12 ms at 10^5 text): (arity, first_arg, kinds, xs): item k's refs are at
    [first_arg[k]:][:arity[k]], their kinds and their x (as floats: K's value, else a
    variable, an item, an edge: exact below 2^53)."""
    arity = np.array(arity, np.int64)
    return arity, np.cumsum(arity) - arity, np.array(kinds, np.int8), np.array(xs, np.float64)


def _live(owner: np.ndarray, kinds: np.ndarray, xs: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Which items a root reads, through the items' refs (an item reads earlier
    ones): those left once every item that nothing left reads is peeled off, a
    frontier at a time in NumPy while it is wide, then one at a time."""
    n_items = len(root)
    at_q = np.flatnonzero(kinds == Q)
    q_owner, q_arg = owner[at_q], xs[at_q].astype(np.int64)
    del at_q
    readers = np.bincount(q_arg, minlength=n_items)
    dead = (readers == 0) & ~root
    q_count = np.bincount(q_owner, minlength=n_items)
    q_first = np.cumsum(q_count) - q_count
    frontier = np.flatnonzero(dead)
    while len(frontier) > 64:
        counts = q_count[frontier]
        if not counts.sum():
            return ~dead
        idx = np.repeat(q_first[frontier] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        hit = q_arg[idx]
        readers -= np.bincount(hit, minlength=n_items)
        hit.sort()   # (not np.unique: its first call in a process imports numpy.ma, 8-18 ms)
        hit = hit[np.concatenate(([True], hit[1:] != hit[:-1]))]
        frontier = hit[(readers[hit] == 0) & ~root[hit] & ~dead[hit]]
        dead[frontier] = True
    stack = frontier.tolist()
    if stack:
        readers, q_arg, q_first, q_count = readers.tolist(), q_arg.tolist(), q_first.tolist(), q_count.tolist()
        while stack:
            k = stack.pop()
            for a in q_arg[q_first[k]:q_first[k] + q_count[k]]:
                readers[a] -= 1
                if not readers[a] and not root[a] and not dead[a]:
                    dead[a] = True
                    stack.append(a)
    return ~dead
