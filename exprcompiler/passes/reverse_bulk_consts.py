"""The bulk reverse sweep's constant adjoints (the seed cascade), in sweep order.

Where it sits: passes/reverse_bulk_layout.py lays out the edges of a reverse sweep
per op kind; the edges whose seed G is a constant it leaves to this module. The output's
v̄ is the constant 1, and add, sub and neg carry constants on (±1 through sums and
differences, folded where two meet): grad_reverse's builder folds those, and 1·w
is w, −1·w is −w, so such an edge's instructions depend on G's value, not only on
its op. They are a minority (a fifth of the adjoints on the text family) reached
from the output, so they are swept here in Python, consumers from the output down
(a heap), each edge as the builder makes it: its partial recorded once per
(op, argument, constant arguments, G's value) on a Builder whose G is a named
constant (the builder's own folds and identities apply), the sum with the old
adjoint folded or built as adjoint_sweep builds it, named as it names it. Then
what nothing reads is dropped (grad_reverse's finish drops it: copies of constants
that every use folded), new constants go where they are first read, and each
edge's block of instructions gets its place from the layout's cumsum.

A ref is (P, v): primal variable v; (Q, k): item k made here; (K, value): a
constant; (E, e): the adjoint after regular edge e (the layout's).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
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

    def _item(self, op, args, label, edge) -> tuple:
        ref = (Q, len(self.ops))
        if op == "copy":
            a = args[0]
            ref = self.src[a[1]] if a[0] == Q else a
        self.src.append(ref)
        self.ops.append(op)
        self.args.append(args)
        self.labels.append(label)
        self.edge.append(edge)
        return (Q, len(self.ops) - 1)

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
        # each consumer's first edge (a consumer's edges are a run of the sweep order)
        lo = np.full(len(self.trace.instrs), n_edges, np.int64)
        if n_edges:
            heads = np.flatnonzero(np.concatenate(([True], self.e_i[1:] != self.e_i[:-1])))
            lo[self.e_i[heads]] = heads
        lo = memoryview(lo)
        mine = bytearray(n_edges)
        item, templates, const_template = self._item, self.templates, self.const_template
        plans: dict = {}   # (template, G's value) -> its recording (G nonzero, not NaN: exact keys)
        o, instrs, labelled, result, primal = self.o, self.trace.instrs, self.labelled, self.result, self.primal
        seed = self._item("copy", ((K, 1.0),), o if labelled[o] else None, -1)
        self.seed = seed
        ops, args, labels, edges, src = self.ops, self.args, self.labels, self.edge, self.src
        negated, in_primal = self._negated, self._in_primal
        named = self.named = {}   # a -> the primal variable that its adjoint names (see primal_results)
        final = self.final = {}   # a -> its adjoint, made here by its last contribution
        g_of = {o: (seed, 1.0)}
        heap = [-o]

        def last(a, total, tval):
            """a's last contribution made its adjoint `total` (of value tval, None: not a
            constant): swept next if a constant, and what it names noted."""
            if tval is not None:
                g_of[a] = (total, tval)
                heappush(heap, -a)
            final[a] = total
            s = src[total[1]] if total[0] == Q else total
            if s[0] == P:
                named[a] = s[1]

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

        while heap:
            i = -heappop(heap)
            gref, c = g_of.pop(i)
            k = lo[i]
            while k < n_edges and e_i[k] == i:
                mine[k] = 1
                a, t = e_a[k], templates[e_t[k]]
                if t is seed_template and prev[k] < 0:
                    # (most of them: v̄_a = G, a named copy; _item and the general path inline)
                    total = gref
                    if labelled[a]:
                        total = (Q, len(ops))
                        src.append(src[gref[1]] if gref[0] == Q else gref)
                        ops.append("copy")
                        args.append((gref,))
                        labels.append(a)
                        edges.append(k)
                    result[k] = (total, c)
                    if nxt[k] < 0:
                        last(a, total, c)
                    k += 1
                    continue
                mark = len(ops)
                if t is seed_template:
                    cref, cval = gref, c
                elif t is neg_template:
                    cval = -c
                    cref = (K, cval)
                else:
                    plan = plans.get((e_t[k], c)) if c else None
                    if plan is None:
                        tinstrs, res = const_template(e_t[k], c)
                        plan = (tinstrs, res, _alone(tinstrs) if primal is not None else (False,) * len(tinstrs))
                        if c and c == c:
                            plans[e_t[k], c] = plan
                    tinstrs, res, alone = plan
                    arg_vars = instrs[i][1]
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
                if labelled[a]:
                    if (total[0] == Q and total[1] >= mark and labels[total[1]] is None
                            and ops[total[1]] not in ("copy", "const", "input")):
                        labels[total[1]] = a
                    else:
                        total = item("copy", (total,), a, k)
                result[k] = (total, tval)
                if nxt[k] < 0:
                    last(a, total, tval)
                k += 1
        self.mine = mine = np.frombuffer(mine, np.uint8).astype(bool)
        return mine

    def primal_results(self) -> dict:
        """{a: v} where a's adjoint, made here by its last contribution, names primal
        variable v (through copies)."""
        return self.named

    def blocks(self, const_var: dict, const_key, roots) -> np.ndarray:
        """Drops what nothing reads (roots: the refs the layout reads, each with the
        edge after which it is read), puts each new constant before its first reader;
        returns each python edge's block size (the seed's: self.seed_size)."""
        n_items = len(self.ops)
        live = bytearray(n_items)
        consts: dict = {}   # a new constant's key -> its item
        for r, _ in roots:
            if r[0] == Q:
                live[r[1]] = 1
        args = self.args
        for k in range(n_items - 1, -1, -1):
            if live[k]:
                for r in args[k]:
                    if r[0] == Q:
                        live[r[1]] = 1
        # constants, in item order: a new one where first read
        order: list = []   # the live items (and new constants' items), in order
        self.const_ref = {}

        def need(value, edge):
            key = const_key(value)
            if key in const_var or key in consts:
                return
            consts[key] = len(self.ops)
            self.src.append((Q, len(self.ops)))
            self.ops.append("const")
            self.args.append(value)
            self.labels.append(None)
            self.edge.append(edge)
            order.append(consts[key])
        for r, edge in roots:
            if r[0] == K:   # (read by the layout after `edge`: in its block)
                need(r[1], edge)
        for k in range(n_items):
            if live[k]:
                for r in args[k]:
                    if r[0] == K:
                        need(r[1], self.edge[k])
                order.append(k)
        self._consts, self._const_var, self._const_key = consts, const_var, const_key
        sizes = np.bincount(np.array([self.edge[k] + 1 for k in order], np.int64),
                            minlength=len(self.mine) + 1) if order else np.zeros(len(self.mine) + 1, np.int64)
        self.order = order
        self.seed_size = int(sizes[0])
        return sizes[1:]

    def place(self, start, seed_start, total) -> None:
        """Each item's variable from its block's start; the python edges' totals."""
        edges = np.array([self.edge[k] for k in self.order], np.int64)
        by_edge = np.argsort(edges, kind="stable")   # (a root's constant was put first)
        edges = edges[by_edge]
        heads = np.flatnonzero(np.concatenate(([True], edges[1:] != edges[:-1]))) if len(edges) else edges
        rank = np.arange(len(edges)) - np.repeat(heads, np.diff(np.append(heads, len(edges))))
        starts = np.full(len(edges), seed_start, np.int64)   # (edge -1: the seed's block)
        starts[edges >= 0] = start[edges[edges >= 0]]
        pos = [-1] * len(self.ops)
        for k, p in zip(np.array(self.order, np.int64)[by_edge].tolist(), (starts + rank).tolist()):
            pos[k] = p
        self.pos = pos
        for e, (r, _) in self.result.items():   # (-1: a dead item, which nothing reads)
            total[e] = self.var(r, total)

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

    def put(self, out, n: int, label_of: np.ndarray, total) -> int:
        """The items, in place (`out`: NewInstrs; its constants as tuples, the rest as
        columns, so that a later pass reads every new instruction alike), and their
        labels' primal variables in `label_of` (see __init__); returns how many."""
        pos, ops, args, item_labels = self.pos, self.ops, self.args, self.labels
        var = self.var
        new, written = out.new, out.written
        by_op: dict = {}   # (op, arity) -> its items

        pos_np = np.array(pos, np.int64)

        def resolved(refs: list) -> np.ndarray:
            """The variables of refs (a column of them), in NumPy but for constants'."""
            kinds = np.fromiter(map(itemgetter(0), refs), np.int8, len(refs))
            xs = np.fromiter(map(itemgetter(1), refs), np.float64, len(refs))   # (K's: a value)
            got = np.where(kinds == K, 0.0, xs).astype(np.int64)   # (P: the variable itself)
            at = kinds == Q
            got[at] = pos_np[got[at]]
            at = kinds == E
            got[at] = total[got[at]]
            at = np.flatnonzero(kinds == K)
            if len(at):
                got[at] = [var((K, x), total) for x in xs[at].tolist()]
            return got.astype(np.int32)
        for k in self.order:
            op = ops[k]
            if op == "const":
                p = pos[k] - n
                new[p] = _new_tuple(Instr, ("const", (), (("value", args[k]),), ()))
                written[p] = True
            else:
                got = by_op.get((op, len(args[k])))
                if got is None:
                    got = by_op[op, len(args[k])] = []
                got.append(k)
        for (op, arity), items in by_op.items():
            refs = list(map(args.__getitem__, items))
            out.put(np.array(list(map(pos.__getitem__, items)), np.int64), op,
                    [resolved(list(map(itemgetter(j), refs))) for j in range(arity)])
        order = self.order
        named = [k for k in order if item_labels[k] is not None]
        if named:
            label_of[np.array(list(map(pos.__getitem__, named)), np.int64) - n] = list(map(item_labels.__getitem__,
                                                                                            named))
        return len(order)
