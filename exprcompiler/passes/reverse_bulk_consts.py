"""The bulk reverse sweep's constant adjoints (the seed cascade), in sweep order.

Where it sits: passes/reverse_bulk_layout.py lays out the edges of a reverse sweep
per op kind; the edges whose seed G is a constant it leaves to this module. The output's
v̄ is the constant 1, and add, sub and neg carry constants on (±1 through sums and
differences, folded where two meet): grad_reverse's builder folds those, and 1·w
is w, −1·w is −w, so such an edge's instructions depend on G's value, not only on
its op. They are a minority (a fifth of the adjoints on the text family) reached
from the output, so they are swept here in Python, consumers from the output down
(the highest first), each edge as the builder makes it: its partial recorded once per
(op, argument, constant arguments, G's value) on a Builder whose G is a named
constant (the builder's own folds and identities apply), the sum with the old
adjoint folded or built as adjoint_sweep builds it, named as it names it. Then
what nothing reads is dropped (grad_reverse's finish drops it: copies of constants
that every use folded), new constants go where they are first read, and each
edge's block of instructions gets its place from the layout's cumsum. The sweep is
Python (each edge's instructions depend on G's value and on what came before); what
follows it reads the items' refs as columns (_columns: blocks, place and put make
no Python loop per item; session 37: those three 0.90 -> 0.61 µs an operation at
10^5 text, CPU medians alternating with the loops they replaced in one process).
The sweep writes those columns as it makes the items (reading the refs' tuples
afterwards cost more than the appends), walks each consumer's edges by its range
and the consumers to sweep by a byte each (rfind: no heap), and makes most items
inline (session 37, B5, at 10^5 text: run + blocks 1.15 + 0.46 -> 1.07 + 0.23 µs
an operation; SymPy: run as fast, blocks 0.48 -> 0.24; CPU medians of 30-40
rounds alternating with the old module in one process, load 4-5).

A ref is (P, v): primal variable v; (Q, k): item k made here; (K, value): a
constant; (E, e): the adjoint after regular edge e (the layout's).
"""

from __future__ import annotations

import math
from operator import itemgetter

import numpy as np

from ..trace.ir import _new_tuple
from ..trace.ir_trace import Instr

P, Q, K, E = 0, 1, 2, 3


def _neg_zero(value) -> bool:
    return value is not None and value == 0.0 and math.copysign(1.0, value) < 0


def _alone(tinstrs) -> tuple:
    """Which of a template's instructions are on primal variables and constants alone
    (the primal may have them, as the builder's hash-consing finds); kept for the
    templates in use (met on every call)."""
    hit = _ALONE.get(id(tinstrs))
    if hit is not None and hit[0] is tinstrs:
        return hit[1]
    if len(_ALONE) >= 8192:
        _ALONE.clear()
    alone = tuple(all(r[0] in "cu" or (r[0] == "s" and r[1] > 0) for r in refs) for _, refs in tinstrs)
    _ALONE[id(tinstrs)] = (tinstrs, alone)   # (kept alive: its id not reused)
    return alone


_ALONE: dict = {}


class ConstantSweep:
    """The edges out of constant adjoints: `run`, then `blocks`, then `place`."""

    def __init__(self, trace, o, e_i, e_a, e_t, prev_edge, next_edge, templates, const_template, labelled,
                 primal=None):
        # labelled[a]: whether v̄ of primal variable a is labelled (an item's label is that
        # a, made v̄_a only with the others' in bar_columns: no Label made per edge)
        self.trace, self.o, self.labelled = trace, o, labelled
        self.ops, self.args, self.labels, self.edge = [], [], [], []
        self.src: list = []         # item -> what it names: a copy's source (through copies), else itself
        self.arity, self.kinds, self.xs = [], [], []   # (each item's refs, flat: see _columns)
        self.result: dict = {}      # python edge -> (ref, constant value or None)
        self._k_var: dict = {}      # a constant's value -> its variable (see var)
        self.e_i, self.e_a, self.e_t, self.prev, self.next = e_i, e_a, e_t, prev_edge, next_edge
        self.templates, self.const_template = templates, const_template
        self.primal = primal   # (op, variables) -> the primal's variable of that key, or None

    def _in_primal(self, op, args):
        """The primal variable that the builder's hash-consing would give for op(args),
        or None: args are primal variables, constants the primal has, or copies of them."""
        primal = self.primal
        if op not in primal.ops:
            return None
        found = []
        for r in args:
            if r[0] == Q:
                r = self.src[r[1]]
            if r[0] == P:
                found.append(r[1])
            elif r[0] == K:
                v = primal.const(r[1])
                if v is None:
                    return None
                found.append(v)
            else:
                return None
        return primal(op, found)

    def _op_of(self, ref):
        if ref[0] == Q:
            return self.ops[ref[1]]
        if ref[0] == P:
            return self.trace.instrs[ref[1]][0]
        return None

    def _negated(self, ref):
        """x when `ref` names −x (through copies: the builder's NEG flag), else None."""
        if ref[0] == Q:
            ref = self.src[ref[1]]
        if ref[0] == P:
            ins = self.trace.instrs[ref[1]]
            while ins[0] == "copy":
                ref = (P, ins[1][0])
                ins = self.trace.instrs[ref[1]]
        if self._op_of(ref) == "neg":
            return self.args[ref[1]][0] if ref[0] == Q else (P, self.trace.instrs[ref[1]][1][0])
        return None

    def run(self, seed_template, neg_template) -> np.ndarray:
        """Sweeps the constant adjoints; returns which edges it made (a mask)."""
        # (memoryviews: Python ints read where needed, no list of every edge made; the
        # region is a few edges on some traces, a quarter of them on others)
        e_i, e_a, e_t, prev, nxt = (memoryview(np.ascontiguousarray(x))
                                    for x in (self.e_i, self.e_a, self.e_t, self.prev, self.next))
        n_edges = len(e_i)
        # each consumer's edges, lo[i]:hi[i] (a consumer's edges are a run of the sweep order)
        lo = np.zeros(len(self.trace.instrs), np.int64)
        hi = np.zeros(len(self.trace.instrs), np.int64)
        if n_edges:
            heads = np.flatnonzero(np.concatenate(([True], self.e_i[1:] != self.e_i[:-1])))
            lo[self.e_i[heads]] = heads
            hi[self.e_i[heads]] = np.append(heads[1:], n_edges)
        lo, hi = memoryview(lo), memoryview(hi)
        templates, const_template = self.templates, self.const_template
        o, instrs, labelled, result, primal = self.o, self.trace.instrs, self.labelled, self.result, self.primal
        ops, args, labels, edges, src = self.ops, self.args, self.labels, self.edge, self.src
        arity, kinds, xs = self.arity, self.kinds, self.xs
        appends = (src.append, ops.append, args.append, labels.append, edges.append, arity.append,
                   kinds.append, xs.append)

        def item(op, targs, label, edge) -> tuple:
            """A new item (k: (Q, k)), its refs written as columns too (see _columns)."""
            src_, ops_, args_, labels_, edges_, arity_, kinds_, xs_ = appends
            k = len(ops)
            if op == "copy":
                r = targs[0]
                src_(src[r[1]] if r[0] == Q else r)
            else:
                src_((Q, k))
            ops_(op)
            args_(targs)
            labels_(label)
            edges_(edge)
            arity_(len(targs))
            for kind, x in targs:
                kinds_(kind)
                xs_(x)
            return (Q, k)

        seed = self.seed = item("copy", ((K, 1.0),), o if labelled[o] else None, -1)
        negated, in_primal = self._negated, self._in_primal
        named = self.named = {}   # a -> the primal variable that its adjoint names (see primal_results)
        final = self.final = {}   # a -> its adjoint, made here by its last contribution
        g_of = {o: (seed, 1.0)}
        # (to sweep: a byte each, the next the highest below the last, found by rfind in C:
        # an argument comes before its consumer; a heap's push and pop cost more)
        pending = bytearray(len(instrs))
        pending[o] = 1

        made, arg_vars, gref, i = [], (), None, -1   # (the edge's, read by ref)

        def ref(r):
            """A template's ref, for the edge being swept."""
            if r[0] == "t":
                return made[r[1]]
            if r[0] == "c":
                return (K, float(r[1]))
            if r[1] == 0:
                return gref
            if r[0] == "u":   # (an argument's own argument)
                return (P, instrs[arg_vars[r[1] - 1]][1][r[2]])
            return (P, arg_vars[r[1] - 1] if r[1] - 1 < len(arg_vars) else i)

        plans: dict = {}   # (template, G's value) -> its recording (G nonzero, not NaN: exact keys)
        i = o + 1
        while True:
            i = pending.rfind(1, 0, i)
            if i < 0:
                break
            gref, c = g_of.pop(i)
            # (what a copy of G names, and its refs' columns: the same for each of i's edges)
            gk, gx = gref
            gsrc = src[gx] if gk == Q else gref
            gnamed = gsrc[1] if gsrc[0] == P else None
            for k in range(lo[i], hi[i]):
                a, t = e_a[k], templates[e_t[k]]
                if t is seed_template and prev[k] < 0:
                    # (most of them: v̄_a = G, a named copy)
                    total = gref
                    if labelled[a]:
                        total = (Q, len(ops))
                        src.append(gsrc)
                        ops.append("copy")
                        args.append((gref,))
                        labels.append(a)
                        edges.append(k)
                        arity.append(1)
                        kinds.append(gk)
                        xs.append(gx)
                    result[k] = (total, c)
                    if nxt[k] < 0:
                        g_of[a] = (total, c)
                        pending[a] = 1
                        final[a] = total
                        if gnamed is not None:
                            named[a] = gnamed
                    continue
                mark = len(ops)
                if t is seed_template:
                    cref, cval = gref, c
                elif t is neg_template:
                    cval = -c
                    cref = (K, cval)
                else:
                    et = e_t[k]
                    plan = plans.get((et, c)) if c else None
                    if plan is None:
                        tinstrs, res = const_template(et, c)
                        plan = (tinstrs, res, _alone(tinstrs) if primal is not None else (False,) * len(tinstrs))
                        if c and c == c:
                            plans[et, c] = plan
                    tinstrs, res, alone = plan
                    arg_vars = instrs[i][1]
                    if tinstrs:
                        made = []   # each template instruction's ref (see ref): an item, or the primal's hit
                        for (op, refs), own in zip(tinstrs, alone):
                            targs = tuple(map(ref, refs))
                            hit = in_primal(op, targs) if own else None
                            made.append((P, hit) if hit is not None else item(op, targs, None, k))
                    cref = ref(res)
                    cval = cref[1] if cref[0] == K else c if cref == gref else None
                    if cref[0] == P and instrs[cref[1]][0] == "const":   # (a constant argument)
                        cval = instrs[cref[1]].value
                p = prev[k]
                if p < 0:
                    total, tval = cref, cval
                else:
                    oref, oval = result[p] if p in result else ((E, p), None)
                    if oval is not None and cval is not None:
                        tval = oval + cval   # (the builder's fold: IEEE, as NumPy's)
                        total = (K, tval)
                    else:
                        tval = None
                        # (the builder's x + (−0.0) -> x, −0.0 + x -> x, −0.0 − m -> −m)
                        if self._op_of(cref) == "neg":   # (adjoint_sweep's old − m)
                            m = self.args[cref[1]][0] if cref[0] == Q else (P, instrs[cref[1]][1][0])
                            total = cref if _neg_zero(oval) else item("sub", (oref, m), None, k)
                        elif _neg_zero(cval):
                            total = oref
                        elif _neg_zero(oval):
                            total = cref
                        else:
                            x = negated(cref)
                            if x is not None:
                                total = item("sub", (oref, x), None, k)
                            else:
                                x = negated(oref)
                                total = item("add", (oref, cref), None, k) if x is None \
                                    else item("sub", (cref, x), None, k)
                tk, tx = total
                if labelled[a]:
                    if tk == Q and tx >= mark and labels[tx] is None and ops[tx] not in ("copy", "const", "input"):
                        labels[tx] = a
                    else:   # (a named copy: item's, inline)
                        copied, total = total, (Q, len(ops))
                        src.append(src[tx] if tk == Q else copied)
                        ops.append("copy")
                        args.append((copied,))
                        labels.append(a)
                        edges.append(k)
                        arity.append(1)
                        kinds.append(tk)
                        xs.append(tx)
                        tk, tx = total
                result[k] = (total, tval)
                if nxt[k] < 0:
                    # (a's last contribution: a swept next if a constant; what it names noted)
                    if tval is not None:
                        g_of[a] = (total, tval)
                        pending[a] = 1
                    final[a] = total
                    s = src[tx] if tk == Q else total
                    if s[0] == P:
                        named[a] = s[1]
        # (every variable marked is swept: its edges are this sweep's)
        self.mine = mine = np.frombuffer(pending, np.bool_)[self.e_i]
        return mine

    def primal_results(self) -> dict:
        """{a: v} where a's adjoint, made here by its last contribution, names primal
        variable v (through copies)."""
        return self.named

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
        self.pos_np, self.pos = pos, pos.tolist()
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
            return self.pos[x]
        if kind == K:
            # (nonzero, not NaN: the value is an exact key; else its repr, as const_var's)
            v = self._k_var.get(x) if x and x == x else None
            if v is None:
                key = self._const_key(x)
                v = self._const_var.get(key)
                v = v if v is not None else self.pos[self._consts[key]]
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
        items = items[np.argsort(code, kind="stable")]
        code.sort(kind="stable")
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
