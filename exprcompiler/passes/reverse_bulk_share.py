"""The bulk reverse sweep's sharing: what grad_reverse's builder finds already built.

Where it sits: passes/reverse_bulk_layout.py lays out a reverse sweep per op kind;
the builder that grad_reverse sweeps with hash-conses every instruction and applies
identities that depend on what an adjoint is. This module answers those questions
for the layout, in NumPy over its edges: which template instructions the primal
(or an earlier edge) holds (_hash_cons, keys op·R² + a·R + b; the primal's made
once for its rounds, _PrimalKeys), which adjoint names a primal variable through
copies (_roots, _primal_sources), which copies nothing reads once their readers
are hits (_unread_copies); and for the constant sweep
(passes/reverse_bulk_consts.py), the primal's keys one op at a time (_PrimalTable).
Also: which variables are active, without a sweep where the trace allows (_active),
for the driver (passes/reverse_bulk.py). Whether an adjoint is a negation:
passes/reverse_bulk_negations.py.
"""

from __future__ import annotations

import numpy as np

from ..trace.builder_ops import _COMMUTATIVE
from .reverse import active_set

# The most instructions a template may have (the int32 columns' bound on positions
# counts on it; partials have a few, logaddexp3's softmax with its tie selections ~30)
_MAX_BLOCK = 32


def _const_key(value: float) -> str:
    return repr(float(value))   # (0.0 and -0.0 apart; NaN equal to itself)




def kept_for(cache: dict, template, make):
    """make(template), kept in `cache` by the template's identity for the templates in
    use (a few hundred, met on every call; cleared past 8,192)."""
    hit = cache.get(id(template))
    if hit is not None and hit[0] is template:
        return hit[1]
    if len(cache) >= 8192:
        cache.clear()
    found = make(template)
    cache[id(template)] = (template, found)   # (the template kept alive: its id not reused)
    return found


def _independent(template) -> list:
    """_shareable(template), kept for the templates in use."""
    return kept_for(_SHAREABLE, template, _shareable)


_SHAREABLE: dict = {}


def _shareable(template) -> list:
    """The instructions of a template that the primal (or an earlier edge) may hold:
    [(k, reads G), ...]: those on one or two primal variables or constants (cos(v),
    2·v), its result not counted; and those that read the seed G besides (G·w), where
    G names a primal variable (see _primal_sources), a negation not as the result
    (the layout writes `old − m` of its own)."""
    tinstrs, result = template
    found = []
    for k, (op, refs) in enumerate(tinstrs):
        if not 1 <= len(refs) <= 2 or not all(r[0] in "cusd" for r in refs):
            continue
        if ("s", 0) not in refs:
            if ("t", k) != result:
                found.append((k, False))
        elif ("t", k) != result or op != "neg":
            found.append((k, True))
    return found


def _roots(n, e_i, e_a, seedlike) -> np.ndarray:
    """Each variable's root up the edges in `seedlike` (a single contribution that is
    G itself, so its adjoint is a copy of G's, and names what G names), by pointer
    jumping: a round per doubling of the chains' length."""
    up = np.arange(n)
    up[e_a[seedlike]] = e_i[seedlike]
    while True:
        further = up[up]
        if np.array_equal(further, up):
            return up
        up = further


def _primal_sources(n, up, named) -> np.ndarray:
    """The primal variable that each variable's adjoint names (through copies), -1 if
    none: `named` {variable: primal variable} from the constant sweep and hash-consing
    hits, carried down to the variables whose root (`up`, see _roots) they are."""
    value = np.full(n, -1, np.int64)
    if named:
        value[np.fromiter(named, np.intp, len(named))] = np.fromiter(named.values(), np.int64, len(named))
    return value[up]


def _active(trace, wrt_list, n, cols, is_const) -> np.ndarray:
    """active_set's answer as a mask. Where every input is differentiated and every
    operation reads a variable that is not a constant (a front end's trace: it folds
    operations on constants), every variable but the constants is active (each
    operation reads an input or an earlier operation), found without a sweep (`n`:
    the trace's length)."""
    if {v for _, v in wrt_list} == {v for _, v in trace.inputs}:
        leaf = is_const.copy()   # (index -1, no argument: counted as a constant)
        leaf[[v for _, v in trace.inputs]] = True
        reads = (cols[0] >= 0) & ~is_const[cols[0]] | (cols[1] >= 0) & ~is_const[cols[1]] \
            | (cols[2] >= 0) & ~is_const[cols[2]]
        if (reads | leaf[:n]).all():
            return ~is_const[:n]
    return np.frombuffer(active_set(trace, [v for _, v in wrt_list]), np.uint8).astype(bool)


class _PrimalTable:
    """The primal's hash-consing keys, for the constant sweep's instructions: an op's
    table made from the argument columns when first asked, its keys ints a·R + b + 1
    (b = -1: none; a dict of ints is made in ~60% of the time of one of pairs)."""

    def __init__(self, op_kind, op_id, arg_cols, const_var):
        self.op_kind, self.op_id, self.arg_cols, self.const_var = op_kind, op_id, arg_cols, const_var
        self.R = len(op_kind) + 1
        self.ops = frozenset(op_id)
        self.tables: dict = {}
        self.by_value: dict = {}   # (nonzero, not NaN: the value is an exact key)

    def const(self, value):
        if value and value == value:
            v = self.by_value.get(value, -1)
            if v == -1:
                v = self.by_value[value] = self.const_var.get(_const_key(value))
            return v
        return self.const_var.get(_const_key(value))

    def where(self, args: tuple):
        """The primal's where(c, x, y) of `args` (primal variables), or None."""
        table = self.tables.get("where/3")
        if table is None:
            table = self.tables["where/3"] = {}
            if "where" in self.op_id:
                vs = np.flatnonzero(self.op_kind == self.op_id["where"])
                for v, a, b, c in zip(vs.tolist(), *(col[vs].tolist() for col in self.arg_cols[:3])):
                    table.setdefault((a, b, c), v)
        return table.get(args)

    def __call__(self, op, args):
        table = self.tables.get(op)
        if table is None:
            table = self.tables[op] = {}
            if op in self.op_id:
                vs = np.flatnonzero(self.op_kind == self.op_id[op])
                a, b = self.arg_cols[0][vs].astype(np.int64), self.arg_cols[1][vs].astype(np.int64)
                if op in _COMMUTATIVE:
                    a, b = np.minimum(a, b), np.maximum(a, b)
                keys = (a * self.R + b + 1).tolist()
                table.update(zip(keys, vs.tolist()))
                if len(table) < len(keys):   # (a key twice: the first wins, as in the builder's table)
                    table.clear()
                    for key, v in zip(keys, vs.tolist()):
                        table.setdefault(key, v)
        if len(args) == 1:
            key = args[0] * self.R
        elif len(args) != 2:   # (the table holds one or two arguments of each: never found)
            return None
        elif op in _COMMUTATIVE:
            key = min(args) * self.R + max(args) + 1
        else:
            key = args[0] * self.R + args[1] + 1
        return table.get(key)


def _unread_copies(templates, groups, shared, e_i, e_a, seedlike, hit_copies, g_src, outputs) -> tuple:
    """Which regular edges make a copy that nothing reads: a single contribution that
    is a named copy, of G (`seedlike`) or of what a hash-consing hit found
    (`hit_copies`), whose adjoint names a primal variable and whose every instruction
    that would read it as G is a hash-consing hit (see _lay_out); and how many
    regular edges out of each variable read its adjoint."""
    n = len(g_src)
    readers = []   # (the consumers of the edges that read G: counted at once, not np.add.at's per template)
    for t, idx in groups:
        tinstrs, result = templates[t]
        g_at = [k for k, (_, refs) in enumerate(tinstrs) if ("s", 0) in refs]
        if result == ("s", 0):
            live = np.ones(len(idx), bool)
        elif t in shared and g_at:
            live = shared[t][0][:, g_at].any(axis=1)
        else:
            live = np.full(len(idx), bool(g_at))
        readers.append(e_i[idx[live]])
    reads = np.bincount(np.concatenate(readers), minlength=n).astype(np.int64, copy=False) if readers \
        else np.zeros(n, np.int64)
    del readers
    dead = np.zeros(len(e_i), bool)
    # up the chains, from the last edges of the sweep (the variables read first); a
    # dropped copy of G no longer reads G, a dropped copy of a hit never did (its
    # edge was not counted: its G readers are hits)
    cand = np.flatnonzero((seedlike | hit_copies) & (g_src[e_a] >= 0))[::-1]
    for e, passes_g in zip(cand.tolist(), seedlike[cand].tolist()):
        a = int(e_a[e])
        if reads[a] == 0 and a not in outputs:
            dead[e] = True
            if passes_g:
                reads[int(e_i[e])] -= 1
    return dead, reads


def _hash_cons(instrs, templates, groups, e_i, arg_cols, const_var, R, g_src, primal_keys, dvar=None):
    """Hash-consing of the templates' instructions on primal variables alone, as
    grad_reverse's builder does it: one that the primal has is the primal's variable,
    one that an earlier edge made (in sweep order) is that one; keys (op, arguments,
    a commutative op's in order) as ints, op·R² + a·R + b. Returns ({template: (keep,
    alias, offsets)}, edge, offset), the first three arrays of (the template's edges,
    its instructions): whether an instance is built; if not, the variable it is
    (>= 0, the primal's) or -1 - j (instance j, which was built); where in its edge's
    block a built one goes; the last two per instance j (its edge; where in the
    block): the built instances' places once the blocks' starts are known.
    `primal_keys`: a _PrimalKeys, kept by the caller from one round to the next.
    `dvar`: per primal constant, the variable of its c − 1 (ref ("d", k): a generic
    pow's exponent, reverse_bulk_generic.MinusConstants)."""
    found = []   # (template, its edges, instruction, which of the edges: None for all)
    named = g_src[e_i] >= 0 if (g_src >= 0).any() else None   # (an edge whose G names a primal variable)
    for t, idx in groups:
        if not len(idx):
            continue
        sel = None
        for k, reads_g in _independent(templates[t]):
            if not reads_g:
                found.append((t, idx, k, None))
                continue
            if named is None:
                continue
            if sel is None:
                sel = np.flatnonzero(named[idx])
            if len(sel):
                found.append((t, idx, k, sel))
    if not found:
        return {}, None, None
    code: dict = {}
    keys, orders = [], []
    for t, idx, k, sel in found:
        op, refs = templates[t][0][k]
        ii = e_i[idx] if sel is None else e_i[idx[sel]]
        n_args = len(instrs[int(ii[0])][1])   # (a template's edges are of one op's arity)
        cols = []
        for r in refs:
            if r == ("s", 0):   # (G, as the primal variable it names)
                cols.append(g_src[ii])
            elif r[0] == "c":
                cols.append(np.full(len(idx), const_var[_const_key(r[1])], np.int64))
            elif r[0] == "d":   # (an argument's constant c, as c − 1)
                cols.append(dvar[arg_cols[r[1] - 1][ii]].astype(np.int64))
            elif r[0] == "u":   # (an argument's own argument)
                cols.append(arg_cols[r[2]][arg_cols[r[1] - 1][ii]].astype(np.int64))
            else:   # an argument, or the instruction's own variable (after its arguments)
                cols.append((arg_cols[r[1] - 1][ii] if r[1] - 1 < n_args else ii).astype(np.int64))
        a, b = cols if len(cols) == 2 else (cols[0], np.full(len(ii), R - 1, np.int64))
        if op in _COMMUTATIVE:
            a, b = np.minimum(a, b), np.maximum(a, b)
        keys.append((code.setdefault(op, len(code) + 1) * R + a) * R + b)
        orders.append((idx if sel is None else idx[sel]).astype(np.int64) * (_MAX_BLOCK + 1) + k)
    key = np.concatenate(keys)
    order = np.concatenate(orders)
    del keys, orders
    # the primal's keys, of the ops that the templates make
    cand, p_key, p_first = primal_keys(code, R)
    alias = np.full(len(key), -1, np.int64)
    if len(cand):
        at = np.minimum(np.searchsorted(p_key, key), len(p_key) - 1)
        hit = p_key[at] == key
        alias[hit] = cand[p_first[at[hit]]]
    # among the rest, the first instance of a key (in sweep order) is built
    rest = np.flatnonzero(alias < 0)
    by_key = rest[np.lexsort((order[rest], key[rest]))]
    run = np.ones(len(by_key), bool)
    run[1:] = key[by_key[1:]] != key[by_key[:-1]]
    heads = by_key[run]
    alias[by_key] = -1 - np.repeat(heads, np.diff(np.append(np.flatnonzero(run), len(by_key))))
    alias[heads] = _BUILT
    # per template: keep / alias / offsets, and each instance's edge and offset
    shared: dict = {}
    inst_edge = np.empty(len(key), np.int64)
    inst_offset = np.empty(len(key), np.int64)
    s = 0
    for t, idx, k, sel in found:
        if t not in shared:
            width = len(templates[t][0])
            shared[t] = (np.ones((len(idx), width), bool), np.zeros((len(idx), width), np.int64), None)
        rows = slice(None) if sel is None else sel
        m = len(idx) if sel is None else len(sel)
        part = alias[s:s + m]
        shared[t][0][rows, k] = part == _BUILT
        shared[t][1][rows, k] = part
        s += m
    for t, (keep, al, _) in shared.items():
        shared[t] = (keep, al, np.cumsum(keep, axis=1) - 1)
    s = 0
    for t, idx, k, sel in found:
        m = len(idx) if sel is None else len(sel)
        inst_edge[s:s + m] = idx if sel is None else idx[sel]
        inst_offset[s:s + m] = shared[t][2][:, k] if sel is None else shared[t][2][sel, k]
        s += m
    return shared, inst_edge, inst_offset


class _PrimalKeys:
    """The primal's hash-consing keys of the ops that the templates make (`code`: op
    -> its code, from 1), sorted, for _hash_cons: (the primal variables of those ops,
    their keys sorted and distinct, the first variable of each); kept for the next
    round, which asks for the same ops nearly always (~30 ms at 10^6 text)."""

    def __init__(self, op_kind, op_id, arg_cols):
        self.op_kind, self.op_id, self.arg_cols = op_kind, op_id, arg_cols
        self.last = None   # ((code's items, R), the answer)

    def __call__(self, code: dict, R: int) -> tuple:
        asked = (tuple(code.items()), R)
        if self.last is not None and self.last[0] == asked:
            return self.last[1]
        by_kind = np.zeros(len(self.op_id), np.int64)   # (an op's code by its kind: 0, none)
        for op, c in code.items():
            if op in self.op_id:
                by_kind[self.op_id[op]] = c
        p_code = by_kind[self.op_kind]
        cand = np.flatnonzero(p_code)
        p_key = p_first = None
        if len(cand):
            arg_cols = self.arg_cols
            a = arg_cols[0][cand].astype(np.int64)
            b = arg_cols[1][cand].astype(np.int64)
            b[b < 0] = R - 1
            commutative = np.zeros(len(code) + 1, bool)   # (by op code: not np.isin, ~100 µs a call)
            commutative[[c for op, c in code.items() if op in _COMMUTATIVE]] = True
            turn = commutative[p_code[cand]] & (b < a)
            a, b = np.where(turn, b, a), np.where(turn, a, b)
            p_key, p_first = np.unique((p_code[cand] * R + a) * R + b, return_index=True)
        self.last = (asked, (cand, p_key, p_first))
        return self.last[1]


_BUILT = -(1 << 62)   # (an instance that is built: no alias)
_MAX_ROUNDS = 8   # (hash-consing rounds, each on what the last one's hits named: one or two)
