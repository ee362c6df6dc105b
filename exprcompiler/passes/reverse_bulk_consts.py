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
adjoint folded or built as adjoint_sweep builds it, named as it names it. The sweep
is Python (each edge's instructions depend on G's value and on what came before);
its items are then laid out by passes/reverse_bulk_const_items.py (ConstantSweep's
base: what nothing reads dropped, new constants where first read, each edge's block
placed), which reads the items' refs as columns. The sweep writes those columns as
it makes the items (reading the refs' tuples afterwards cost more than the appends),
walks each consumer's edges by its range and the consumers to sweep by a byte each
(rfind: no heap), and makes most items inline (session 37, B5, at 10^5 text: run
+ blocks 1.15 + 0.46 -> 1.07 + 0.23 µs an operation; SymPy: run as fast, blocks
0.48 -> 0.24; CPU medians of 30-40 rounds alternating with the old module in one
process, load 4-5). Session 38 (C7) tried B4's bulk pre-pass for the single seed
contributions (v̄_a a copy of G, first and only: 19.6k of the 36.9k edges at 10^5
text): their trees found in NumPy, their consumers visited only for their other
edges, the copies made as columns at the end, numbered apart and sorted into edge
order. Not kept: the bulk sweep's instructions moved by under ±1% (callgrind, 10^4
and 10^5 text), as the results, adjoints and names the layout reads are still one
Python object each, and the pre-pass reads the whole trace.

A ref is (P, v): primal variable v; (Q, k): item k made here; (K, value): a
constant; (E, e): the adjoint after regular edge e (the layout's). A generic kind's
template (reverse_bulk_generic._class_template) reads its instruction's constants c
as c − 1 (("d", k)) and G·c (("p", k)): made here as the constants the builder folds.
"""

from __future__ import annotations

import math

import numpy as np

from ..trace.ir_trace import instructions
from .reverse_bulk_const_items import E, K, P, Q, ConstantItems

__all__ = ["E", "K", "P", "Q", "ConstantSweep"]


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
    alone = tuple(all(r[0] in "cudp" or (r[0] == "s" and r[1] > 0) for r in refs) for _, refs in tinstrs)
    _ALONE[id(tinstrs)] = (tinstrs, alone)   # (kept alive: its id not reused)
    return alone


_ALONE: dict = {}


class ConstantSweep(ConstantItems):
    """The edges out of constant adjoints: `run`, then (ConstantItems) `blocks`,
    `place`, `put`."""

    def __init__(self, trace, o, e_i, e_a, e_t, prev_edge, next_edge, templates, const_template, labelled,
                 primal=None, generic=frozenset()):
        # labelled[a]: whether v̄ of primal variable a is labelled (an item's label is that
        # a, made v̄_a only with the others' in bar_columns: no Label made per edge)
        self.trace, self.o, self.labelled = trace, o, labelled
        self.instrs = instructions(trace)   # (a primal held as columns: single items read, no tuple made)
        self.ops, self.args, self.labels, self.edge = [], [], [], []
        self.src: list = []         # item -> what it names: a copy's source (through copies), else itself
        self.arity, self.kinds, self.xs = [], [], []   # (each item's refs, flat: see _columns)
        self.result: dict = {}      # python edge -> (ref, constant value or None)
        self._k_var: dict = {}      # a constant's value -> its variable (see var)
        self.e_i, self.e_a, self.e_t, self.prev, self.next = e_i, e_a, e_t, prev_edge, next_edge
        self.templates, self.const_template = templates, const_template
        # (templates of generic kinds, reverse_bulk_generic.py: recorded per instruction's arguments)
        self.generic = generic
        self.primal = primal   # (op, variables) -> the primal's variable of that key, or None
        self.mask_cols = None   # (the conditions of the masked edges' wheres: reverse_bulk_masks.py)

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
            return self.instrs[ref[1]][0]
        return None

    def _negated(self, ref):
        """x when `ref` names −x (through copies: the builder's NEG flag), else None."""
        if ref[0] == Q:
            ref = self.src[ref[1]]
        if ref[0] == P:
            ins = self.instrs[ref[1]]
            while ins[0] == "copy":
                ref = (P, ins[1][0])
                ins = self.instrs[ref[1]]
        if self._op_of(ref) == "neg":
            return self.args[ref[1]][0] if ref[0] == Q else (P, self.instrs[ref[1]][1][0])
        return None

    def run(self, seed_template, neg_template) -> np.ndarray:
        """Sweeps the constant adjoints; returns which edges it made (a mask)."""
        # (memoryviews: Python ints read where needed, no list of every edge made; the
        # region is a few edges on some traces, a quarter of them on others)
        e_i, e_a, e_t, prev, nxt = (memoryview(np.ascontiguousarray(x))
                                    for x in (self.e_i, self.e_a, self.e_t, self.prev, self.next))
        n_edges = len(e_i)
        # each consumer's edges, lo[i]:hi[i] (a consumer's edges are a run of the sweep order)
        lo = np.zeros(len(self.trace), np.int64)
        hi = np.zeros(len(self.trace), np.int64)
        if n_edges:
            heads = np.flatnonzero(np.concatenate(([True], self.e_i[1:] != self.e_i[:-1])))
            lo[self.e_i[heads]] = heads
            hi[self.e_i[heads]] = np.append(heads[1:], n_edges)
        lo, hi = memoryview(lo), memoryview(hi)
        templates, const_template, generic = self.templates, self.const_template, self.generic
        # (an edge whose contribution is G itself, and its argument's first: a byte each)
        is_seed = np.array([t is seed_template for t in templates] + [False], bool)
        plain = memoryview(is_seed[self.e_t] & (self.prev < 0))
        o, instrs, labelled, result, primal = self.o, self.instrs, self.labelled, self.result, self.primal
        ops, args, labels, edges, src = self.ops, self.args, self.labels, self.edge, self.src
        arity, kinds, xs = self.arity, self.kinds, self.xs
        appends = (src.append, ops.append, args.append, labels.append, edges.append, arity.append,
                   kinds.append, xs.append)
        src_a, ops_a, args_a, labels_a, edges_a, arity_a, kinds_a, xs_a = appends

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
        g_of = {o: (seed, 1.0)}
        # (to sweep: a byte each, the next the highest below the last, found by rfind in C:
        # an argument comes before its consumer; a heap's push and pop cost more)
        pending = bytearray(len(instrs))
        pending[o] = 1

        made, arg_vars, gref, i, k = [], (), None, -1, -1   # (the edge's, read by ref)
        mask_cols = self.mask_cols
        wheres: dict = {}   # a where's arguments' sources -> its item: the builder hash-conses a mask's

        def ref(r):
            """A template's ref, for the edge being swept."""
            if r[0] == "t":
                return made[r[1]]
            if r[0] == "c":
                return (K, float(r[1]))
            if r[1] == 0 and r[0] == "s":
                return gref
            if r[0] == "u":   # (an argument's own argument)
                return (P, instrs[arg_vars[r[1] - 1]][1][r[2]])
            if r[0] == "m":   # (a masked edge's condition: reverse_bulk_masks.py)
                return (P, int(mask_cols[r[1]][k]))
            if r[0] == "d":   # (x**c's c − 1 of the argument's own c: a generic kind's template)
                return (K, instrs[arg_vars[r[1] - 1]].value - 1.0)
            if r[0] == "p":   # (G·c of the argument's own c, folded: a generic kind's template)
                return (K, c * instrs[arg_vars[r[1] - 1]].value)
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
            g_args = (gref,)
            for k in range(lo[i], hi[i]):
                a = e_a[k]
                if plain[k]:
                    # (most of them: v̄_a = G, a named copy)
                    if labelled[a]:
                        total = (Q, len(ops))
                        src_a(gsrc)
                        ops_a("copy")
                        args_a(g_args)
                        labels_a(a)
                        edges_a(k)
                        arity_a(1)
                        kinds_a(gk)
                        xs_a(gx)
                    else:
                        total = gref
                    result[k] = made_c = (total, c)
                    if nxt[k] < 0:
                        g_of[a] = made_c
                        pending[a] = 1
                        if gnamed is not None:
                            named[a] = gnamed
                    continue
                t = templates[e_t[k]]
                mark = len(ops)
                if t is seed_template:
                    cref, cval = gref, c
                elif t is neg_template:
                    cval = -c
                    cref = (K, cval)
                else:
                    et = e_t[k]
                    arg_vars = instrs[i][1]
                    pkey = (et, c) if et not in generic else (et, c, arg_vars)
                    plan = plans.get(pkey) if c else None
                    if plan is None:
                        tinstrs, res = const_template(et, c, arg_vars)
                        plan = (tinstrs, res, _alone(tinstrs) if primal is not None else (False,) * len(tinstrs))
                        if c and c == c:
                            plans[pkey] = plan
                    tinstrs, res, alone = plan
                    if tinstrs:
                        made = []   # each template instruction's ref (see ref): an item, or the primal's hit
                        for (op, refs), own in zip(tinstrs, alone):
                            targs = tuple(map(ref, refs))
                            if mask_cols is not None and op == "where":
                                made.append(self._where(wheres, targs, refs, k, item))
                                continue
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
                    s = src[tx] if tk == Q else total
                    if s[0] == P:
                        named[a] = s[1]
        # (every variable marked is swept: its edges are this sweep's)
        self.mine = mine = np.frombuffer(pending, np.bool_)[self.e_i]
        return mine

    def _where(self, wheres: dict, targs: tuple, refs: tuple, k: int, item) -> tuple:
        """A where's ref, in a trace with masked edges: a mask's found where the builder
        finds it (made before, by sources through copies; the primal's), each kept."""
        src = self.src
        key = tuple(src[r[1]] if r[0] == Q else r for r in targs)
        if any(r[0] == "m" for r in refs):
            # (on constants alone, copies of them included, the builder folds it: a
            # condition a constant, where(2 > 0, ...), and G one)
            values = [x if kind == K else self.instrs[x].value if kind == P and self.instrs[x][0] == "const"
                      else None for kind, x in key]
            if None not in values:
                return (K, values[1] if values[0] != 0 else values[2])
            got = wheres.get(key)
            if got is None and self.primal is not None and all(r[0] in (P, K) for r in key):
                vs = tuple(x if kind == P else self.primal.const(x) for kind, x in key)
                hit = None if None in vs else self.primal.where(vs)
                got = None if hit is None else (P, hit)
            if got is not None:
                return got
        made = item("where", targs, None, k)
        wheres.setdefault(key, made)
        return made

    def finals(self, asked) -> dict:
        """{a: its adjoint} for the variables `asked` whose last contribution this sweep
        made (read off `result` for a few variables: not a dict of every one kept)."""
        ends = np.flatnonzero(self.next < 0)
        last = np.full(len(self.trace), -1, np.int64)
        last[self.e_a[ends]] = ends
        result = self.result
        found = {}
        for a, k in zip(asked, last[np.fromiter(asked, np.intp, len(asked))].tolist()):
            if k in result:
                found[a] = result[k][0]
        return found

    def primal_results(self) -> dict:
        """{a: v} where a's adjoint, made here by its last contribution, names primal
        variable v (through copies)."""
        return self.named
