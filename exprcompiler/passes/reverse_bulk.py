"""The reverse sweep of a large scalar trace in bulk: per op kind over NumPy columns.

Where it sits: beside passes/reverse.py (grad_reverse), for the gradient of a
front end's trace of scalars. Today's sweep makes one Builder call per new
instruction (hash-consing, identities); this one records each op kind's partial
ONCE on placeholders (a template: a few instructions over the seed G, the
arguments and the result) and instantiates it for every instruction of that kind
at once: blocks in descending consumer order, positions by a cumsum of block
sizes, argument columns gathered with NumPy, tuples made by C-level maps.

STATUS: not a drop-in for grad_reverse: nearer its trace (text family at 10^5
operations: +1.6% instructions, was +6.1%; deep +1), not yet equal. What it does
as grad_reverse's builder does: (a) the seed's cascade, the edges out of constant
adjoints (v̄ = 1 and what sums and differences carry of it), swept in Python in
passes/reverse_bulk_consts.py, each partial recorded for G's value, so 1·v is v,
1 + 1 is 2, and what only those read is dropped; (b) a partial's instructions on
primal variables alone (cos(v), 2·v) hash-consed against the primal's and each
other (_hash_cons). What it does not: (c) no −(−v) -> v, (−a)·b -> −(a·b),
old + v̄ -> old − m for a negated v̄ or v̄ − m for a negated old, c·(k·v) -> (c·k)·v;
(d) no hash-consing of instructions that read G (a copy of a primal variable as G
meets the primal's products: deep's +1); (e) new constants of the regular edges'
templates come right after the primal. What it keeps: every contribution is the same
operations on the same values, summed into each adjoint in the same order
(consumers descending, last argument first; `old + (−m)` written `old − m`,
as grad_reverse writes it), so the gradient has the same bits at every point
(the identities are exact, but for a NaN's sign bit, and for c·(k·v) under over-
or underflow of k·v); every adjoint carries grad_reverse's v̄ label. Returns
None where it does not cover a trace (the caller takes grad_reverse): shapes,
options, an op without scalar partials, a partial that builds something other
than scalar operations, inputs not first, dead code, an output that is also an
argument, an adjoint that flows nowhere (x**0's: a structural zero).

Cost: the constant adjoints' Python sweep takes a quarter of the text family's
edges: at 10^5 operations the pass is 4.5 µs an operation against grad_reverse's
7.3 (1.6x; without (a) and (b) it was 2.6 µs, 2.9x); on deep 2.2 against 6.2.
benchmarks/bench_reverse_bulk.py --why counts what grad_reverse does differently.

Memory: int32 columns (int8 argument numbers), arrays dropped once used, and each
instruction put in its place as it is made, the constant sweep's items dropped
before the regular edges' are made: at 10^5 text operations the pass's traced peak
is below grad_reverse's (723 against 812 bytes an operation).
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Optional, Sequence

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC, negated_seed, seed
from ..trace.builder_ops import _COMMUTATIVE
from ..trace.ir import Builder, Trace, _new_tuple, gc_paused
from ..trace.ir_trace import Instr
from .replay import derived_labels, fresh_name, labels_of, scalar_output, wrt_vars
from .reverse import active_set
from .reverse_bulk_consts import ConstantSweep

_OP_OF, _ARGS_OF, _ATTRS_OF, _SHAPE_OF = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
_IS_CONST = frozenset(("const",))
_LEAVES = frozenset(("input", "const"))

# A template: (instructions, result). An instruction is (op name, refs); a ref is
# ("s", k): slot k (0 the seed G, 1..m the arguments, m + 1 the result), ("c", value):
# a constant, ("t", k): the template's instruction k. result is a ref, or the whole
# template None (a structural zero: no contribution).
_SEED_TEMPLATE = ((), ("s", 0))
# The most instructions a template may have (the int32 columns' bound on positions
# counts on it; partials have a few)
_MAX_BLOCK = 16
_NEG_TEMPLATE = ((("neg", (("s", 0),)),), ("t", 0))


class _Unsupported(Exception):
    """A partial built something the bulk sweep does not lay out."""


def _template(op, j: int, pattern: tuple, g=None):
    """_record's template, kept across calls (a Builder and a partial's calls for each
    op kind: at 10² operations a fifth of the sweep). Keyed by the op's definition
    itself, so a table entry replaced (by a test) records its own."""
    key = (id(op), j, _const_key_or_none(g), *map(_const_key_or_none, pattern))
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    template = _record(op, j, pattern, g)
    if len(_TEMPLATES) >= 4096:   # (many constant exponents: the cache stays small)
        _TEMPLATES.clear()
    _TEMPLATES[key] = (op, template)
    return template


_TEMPLATES: dict = {}


def _const_key_or_none(value):
    return None if value is None else _const_key(value)


def _record(op, j: int, pattern: tuple, g_value=None):
    """Partial j of `op` on placeholders, arguments that are constants in `pattern`
    (their values) given as those constants: a template (see above). With `g_value`,
    the seed G is a named copy of that constant (an adjoint of the seed's cascade),
    so the builder's folds and identities on it apply."""
    partial = op.vjp.partials[j]
    if partial is seed:
        return _SEED_TEMPLATE
    if partial is negated_seed:
        return _NEG_TEMPLATE
    b = Builder(pull_negations=True)
    g = b.input("g") if g_value is None else b.name(b.const(g_value), "g")
    args = [b.input(f"x{k}") if v is None else b.const(v) for k, v in enumerate(pattern)]
    out = b.input("out")
    slots = {g: ("s", 0), out: ("s", len(args) + 1)}
    for k, a in enumerate(args):
        slots.setdefault(a, ("s", k + 1))
    first = len(b.instrs)
    c = partial(b, g, *args, out)
    if c is None:
        return None
    refs: dict = {}
    instrs = []

    def ref(v):
        if v in slots:
            return slots[v]
        if v in refs:
            return refs[v]
        ins = b.instrs[v]
        if ins.op == "const":
            return ("c", ins.value)
        if v < first or ins.op in ("input", "copy") or ins.attrs or ins.shape:
            raise _Unsupported(ins.op)
        arg_refs = tuple(map(ref, ins.args))   # (arguments first: topological)
        r = refs[v] = ("t", len(instrs))
        instrs.append((ins.op, arg_refs))
        return r
    # (a recursion as deep as the partial's expression: a few levels)
    result = ref(c)
    # ref() appends an instruction after its arguments, so the list is in a valid
    # order; it is also the builder's order, since each partial builds its result last
    return tuple(instrs), result


def _const_key(value: float) -> str:
    return repr(float(value))   # (0.0 and -0.0 apart; NaN equal to itself)


@gc_paused()
def grad_reverse_bulk(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Optional[Trace]:
    """The gradient of a single-output scalar trace, swept in bulk, or None where
    this sweep does not cover `trace` (see the module's docstring for what it
    returns: grad_reverse's values and labels, not its instructions)."""
    name, o = scalar_output(trace)
    wrt_list = wrt_vars(trace, wrt)
    instrs = trace.instrs
    n = len(instrs)
    if not trace._all_live or any(map(_SHAPE_OF, instrs)) or len(trace.outputs) != 1:
        return None
    inputs = trace.inputs
    if [v for _, v in inputs] != list(range(len(inputs))):
        return None   # (finish would put them first: another numbering)
    ops = list(map(_OP_OF, instrs))
    arg_lists = list(map(_ARGS_OF, instrs))
    if max(map(len, arg_lists), default=0) > 3:
        return None   # (columns for up to three arguments: where(c, x, y))
    for i in compress(range(n), map(bool, map(_ATTRS_OF, instrs))):
        if ops[i] not in _LEAVES:
            return None
    active = active_set(trace, [v for _, v in wrt_list])
    bar_labels = derived_labels(trace.labels, "bar", None, labels_of(trace))
    # positions are int32: n primal instructions, then at most 3 edges an instruction of
    # at most _MAX_BLOCK + 1 instructions each, and a few constants (past ~4·10^7: None)
    if n * (3 * _MAX_BLOCK + 8) >= 2 ** 31:
        return None
    # argument k of each instruction (-1: none), a row each, from the flat list of arguments
    counts = np.fromiter(map(len, arg_lists), np.int32, n)
    flat = np.fromiter(chain.from_iterable(arg_lists), np.int32, int(counts.sum()))
    starts = np.cumsum(counts, dtype=np.int32) - counts
    arg_rows = np.full((3, n), -1, np.int32)
    for k in range(3):
        has = counts > k
        arg_rows[k, has] = flat[starts[has] + k]
    del counts, flat, starts
    cols = list(arg_rows)

    # -- each instruction's kind: its op, and the values of constant arguments (a
    # partial may look at them: x**2); the edges of a kind, recorded once ----------
    cval = {i: _const_key(instrs[i].value) for i in compress(range(n), map(_IS_CONST.__contains__, ops))}
    const_values = {i: instrs[i].value for i in cval}
    op_id = {op: k for k, op in enumerate(dict.fromkeys(ops))}
    kind = np.fromiter(map(op_id.__getitem__, ops), np.int32, n)
    kinds: list = list(op_id)   # kind id -> (op, arguments' constant keys) or op
    is_const = np.zeros(n + 1, bool)   # (index -1: no argument)
    if cval:
        is_const[np.fromiter(cval, np.intp, len(cval))] = True
    with_const = np.flatnonzero(is_const[cols[0]] | is_const[cols[1]] | is_const[cols[2]])
    pattern_id: dict = {}
    for i in with_const.tolist():
        key = (ops[i], *[cval.get(a) for a in arg_lists[i]])
        k = pattern_id.get(key)
        if k is None:
            k = pattern_id[key] = len(kinds)
            kinds.append(key)
        kind[i] = k
    templates: list = []
    specs: list = []   # template id -> (op, argument number, constant arguments)
    active_np = np.frombuffer(active, np.uint8).astype(bool)
    parts_i, parts_j, parts_t = [], [], []
    zeros = False   # a structural zero somewhere: then not every active variable is reached
    try:
        by_kind = np.argsort(kind, kind="stable")   # (instructions grouped by kind, in order)
        bounds = np.searchsorted(kind[by_kind], np.arange(len(kinds) + 1)).tolist()
        for k in range(len(kinds)):
            members = by_kind[bounds[k]:bounds[k + 1]]
            if not len(members) or ops[members[0]] in _LEAVES:
                continue
            edges = _edges_of(ops[members[0]], arg_lists[members[0]], const_values, templates, specs)
            if edges is False or any(len(templates[t][0]) > _MAX_BLOCK for _, t in edges):
                return None
            zeros |= len(edges) < len(arg_lists[members[0]])
            members = members[active_np[members]]
            for j, t in edges:
                hit = members[active_np[cols[j][members]]]
                parts_i.append(hit)
                parts_j.append(np.full(len(hit), j, np.int8))
                parts_t.append(np.full(len(hit), t, np.int32))
    except _Unsupported:
        return None
    del by_kind, kind, active_np
    # the edges, in the sweep's order: consumers descending, last argument first
    # (int32 columns, int8 argument numbers: at 10^6 operations each column of
    # edges is 10 MB, not 20)
    e_i = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int32)
    e_j = np.concatenate(parts_j) if parts_j else np.zeros(0, np.int8)
    e_t = np.concatenate(parts_t) if parts_t else np.zeros(0, np.int32)
    del parts_i, parts_j, parts_t
    order = np.argsort(-(e_i * 3 + e_j), kind="stable")
    e_i, e_j, e_t = e_i[order], e_j[order], e_t[order]
    del order
    if zeros:
        # Where a partial is a structural zero (x**0), an adjoint may never be
        # reached: only the edges out of reached variables count (irregular: Python)
        keep = _reached_edges(o, n, e_i.tolist(), arg_rows[e_j, e_i].tolist())
        e_i, e_j, e_t = e_i[keep], e_j[keep], e_t[keep]
        # an adjoint reached with no edge out (x**0's) is dead code, and what only it
        # used: grad_reverse's finish takes it out; not laid out here
        flows = np.zeros(n, bool)
        flows[e_i] = True
        ends = np.zeros(n, bool)
        ends[arg_rows[e_j, e_i]] = True
        if (ends & ~flows & (np.array(ops) != "input")).any():
            return None
    elif not active[o]:
        e_i, e_j, e_t = e_i[:0], e_j[:0], e_t[:0]
    e_a = arg_rows[e_j, e_i]
    del e_j
    if (e_a == o).any():
        return None   # (the output is also an argument: its seed and contributions summed; not laid out)
    return _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, cols,
                   "copy" in op_id)


def _reached_edges(o: int, n: int, e_i: list, e_a: list) -> np.ndarray:
    """Which edges (in sweep order) leave a variable that has an adjoint."""
    reached = bytearray(n)
    reached[o] = 1
    keep = bytearray(len(e_i))
    for k, (i, a) in enumerate(zip(e_i, e_a)):
        if reached[i]:
            keep[k] = reached[a] = 1
    return np.frombuffer(keep, np.uint8).astype(bool)


def _edges_of(op: str, args: tuple, const_values: dict, templates: list, specs: list):
    """((argument number, template id), ...) of an instruction `op(args)`, last
    argument first, without structural zeros; False if the op has no scalar partials."""
    opdef = _ops.OPS.get(op)
    partials = getattr(getattr(opdef, "vjp", None), "partials", None)
    if opdef is None or opdef.arity == VARIADIC or partials is None or len(partials) != len(args):
        return False
    pattern = tuple(const_values.get(a) for a in args)
    edges = []
    for j in range(len(args) - 1, -1, -1):
        if partials[j] is None:
            continue
        template = _template(opdef, j, pattern)
        if template is None:
            continue
        templates.append(template)
        specs.append((opdef, j, pattern))
        edges.append((j, len(templates) - 1))
    return tuple(edges)


def _independent(template) -> list:
    """The instructions of a template that read neither the seed G nor another of its
    instructions (one or two primal variables or constants: cos(v), 2·v), its result
    not counted: [k, ...]."""
    tinstrs, result = template
    return [k for k, (op, refs) in enumerate(tinstrs)
            if ("t", k) != result and 1 <= len(refs) <= 2
            and all(r[0] == "c" or (r[0] == "s" and r[1] > 0) for r in refs)]


def _hash_cons(instrs, templates, groups, e_i, arg_cols, const_var, R):
    """Hash-consing of the templates' instructions on primal variables alone, as
    grad_reverse's builder does it: one that the primal has is the primal's variable,
    one that an earlier edge made (in sweep order) is that one; keys (op, arguments,
    a commutative op's in order) as ints, op·R² + a·R + b. Returns ({template: (keep,
    alias, offsets)}, edge, offset), the first three arrays of (the template's edges,
    its instructions): whether an instance is built; if not, the variable it is
    (>= 0, the primal's) or -1 - j (instance j, which was built); where in its edge's
    block a built one goes; the last two per instance j (its edge; where in the
    block): the built instances' places once the blocks' starts are known."""
    found = [(t, idx, k) for t, idx in groups if len(idx) for k in _independent(templates[t])]
    if not found:
        return {}, None, None
    code: dict = {}
    keys, orders = [], []
    for t, idx, k in found:
        op, refs = templates[t][0][k]
        ii = e_i[idx]
        n_args = len(instrs[int(ii[0])][1])   # (a template's edges are of one op)
        cols = []
        for r in refs:
            if r[0] == "c":
                cols.append(np.full(len(idx), const_var[_const_key(r[1])], np.int64))
            else:   # an argument, or the instruction's own variable (after its arguments)
                cols.append((arg_cols[r[1] - 1][ii] if r[1] - 1 < n_args else ii).astype(np.int64))
        a, b = cols if len(cols) == 2 else (cols[0], np.full(len(idx), R - 1, np.int64))
        if op in _COMMUTATIVE:
            a, b = np.minimum(a, b), np.maximum(a, b)
        keys.append((code.setdefault(op, len(code) + 1) * R + a) * R + b)
        orders.append(idx.astype(np.int64) * (_MAX_BLOCK + 1) + k)
    key = np.concatenate(keys)
    order = np.concatenate(orders)
    del keys, orders
    # the primal's keys, of the ops that the templates make
    codes = defaultdict(int, code)
    p_code = np.fromiter(map(codes.__getitem__, map(_OP_OF, instrs)), np.int64, len(instrs))
    cand = np.flatnonzero(p_code)
    alias = np.full(len(key), -1, np.int64)
    if len(cand):
        a = arg_cols[0][cand].astype(np.int64)
        b = arg_cols[1][cand].astype(np.int64)
        b[b < 0] = R - 1
        turn = np.isin(p_code[cand], [c for op, c in code.items() if op in _COMMUTATIVE]) & (b < a)
        a, b = np.where(turn, b, a), np.where(turn, a, b)
        p_key, p_first = np.unique((p_code[cand] * R + a) * R + b, return_index=True)
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
    for t, idx, k in found:
        if t not in shared:
            width = len(templates[t][0])
            shared[t] = (np.ones((len(idx), width), bool), np.zeros((len(idx), width), np.int64), None)
        part = alias[s:s + len(idx)]
        shared[t][0][:, k] = part == _BUILT
        shared[t][1][:, k] = part
        s += len(idx)
    for t, (keep, al, _) in shared.items():
        shared[t] = (keep, al, np.cumsum(keep, axis=1) - 1)
    s = 0
    for t, idx, k in found:
        inst_edge[s:s + len(idx)] = idx
        inst_offset[s:s + len(idx)] = shared[t][2][:, k]
        s += len(idx)
    return shared, inst_edge, inst_offset


_BUILT = -(1 << 62)   # (an instance that is built: no alias)


def _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, arg_cols,
             primal_copies: bool) -> Trace:
    """The new instructions after the primal ones, from the edges (in sweep order):
    edge k is argument e_a[k] of instruction e_i[k], its partial template e_t[k]."""
    instrs = trace.instrs
    n = len(instrs)
    E = len(e_i)

    # constants the new instructions use: the primal's, or new ones first after it
    const_var = {k: v for v, k in cval.items()}
    new_consts: list = []

    def const(value):
        k = _const_key(value)
        var = const_var.get(k)
        if var is None:
            var = const_var[k] = n + len(new_consts)
            new_consts.append(float(value))
        return var
    # edges grouped by argument, in sweep order within a group (a stable sort): each
    # edge's previous and next on its argument (-1: none)
    order = np.argsort(e_a, kind="stable")
    same = e_a[order[1:]] == e_a[order[:-1]]   # (edge order[k + 1] is not its argument's first)
    later, earlier = order[1:][same], order[:-1][same]
    del order, same
    prev_edge = np.full(E, -1, np.int64)
    prev_edge[later] = earlier
    next_edge = np.full(E, -1, np.int64)
    next_edge[earlier] = later
    del later, earlier
    first = prev_edge < 0               # the first contribution to its argument?

    # the edges out of constant adjoints (the seed's cascade): swept in Python
    cs = ConstantSweep(trace, o, e_i, e_a, e_t, prev_edge, next_edge, templates,
                       lambda t, c: _template(*specs[t], g=c), bar_labels)
    try:
        py = cs.run(_SEED_TEMPLATE, _NEG_TEMPLATE)
    except _Unsupported:   # (a partial recorded for G's value builds what no template holds)
        return None
    reg = np.flatnonzero(~py)
    for t in np.unique(e_t[reg]).tolist():   # (a kind's template with no edge adds no constant)
        for _, refs in templates[t][0]:
            for r in refs:
                if r[0] == "c":
                    const(r[1])
    zero = None
    reached = np.zeros(n, bool)
    reached[e_a] = True
    reached[o] = True
    if not all(reached[v] for _, v in wrt_list):
        zero = const(0.0)
    # what the layout reads of the Python edges: an adjoint a regular edge sums into,
    # or reads as its G, or a gradient output
    reg_out = np.zeros(n, bool)
    reg_out[e_i[reg]] = True
    wrt_set = {v for _, v in wrt_list}
    roots = [(cs.seed, -1)] if o in wrt_set else []
    nxt, ea = memoryview(next_edge), memoryview(np.ascontiguousarray(e_a))   # (ints read, no lists)
    for e, (r, value) in cs.result.items():
        x = nxt[e]
        if x >= 0 and not py[x]:
            if value is not None and value == 0.0 and math.copysign(1.0, value) < 0:
                first[x] = True   # (−0.0 + c is c, −0.0 − m is −m: as if it came first)
            else:
                roots.append((r, e))
        elif x < 0 and (reg_out[ea[e]] or ea[e] in wrt_set):
            roots.append((r, e))
    py_sizes = cs.blocks(const_var, _const_key, roots)
    seed_start = n + len(new_consts)
    base = seed_start + cs.seed_size

    # per template: its size, whether its result is its own last instruction, a negation
    sizes = np.array([len(t[0]) for t in templates], np.int32)
    fresh = np.array([t[1][0] == "t" for t in templates], bool)
    neg_last = np.array([t[1][0] == "t" and t[0][t[1][1]][0] == "neg" for t in templates], bool)
    s_t = sizes[e_t]
    as_sub = ~first & neg_last[e_t] & ~py    # old − m: the negation is not built
    block = np.where(py, py_sizes, np.where(first, s_t + ~fresh[e_t], s_t + 1 - as_sub)).astype(np.int32)
    del s_t, py_sizes
    by_template = reg[np.argsort(e_t[reg], kind="stable")]
    bounds = np.searchsorted(e_t[by_template], np.arange(len(templates) + 1)).tolist()
    groups = [(t, by_template[bounds[t]:bounds[t + 1]]) for t in range(len(templates))]
    # a partial's instructions on primal variables alone: hash-consed, as the builder does
    shared, inst_edge, inst_offset = ({}, None, None) if primal_copies else _hash_cons(
        instrs, templates, groups, e_i, arg_cols, const_var, base + 1)
    for t, idx in groups:
        if t in shared:
            block[idx] -= (~shared[t][0]).sum(axis=1, dtype=np.int32)
    total = np.cumsum(block, dtype=np.int32)   # the adjoint after each contribution
    total += base - 1
    start = total - block + 1
    size = base - n + int(block.sum())
    del block
    cs.place(start, seed_start, total)   # (a Python edge's total: where its adjoint is)
    # v̄ of each variable at the end: its last contribution's total; the previous
    # total of a later contribution: the one before it on its argument
    adj = np.full(n, -1, np.int32)
    adj[o] = cs.pos[cs.seed[1]]   # (-1: dead)
    last = np.flatnonzero(next_edge < 0)
    adj[e_a[last]] = total[last]
    prev = np.where(first, -1, total[np.maximum(prev_edge, 0)]).astype(np.int32)
    del last, prev_edge, next_edge

    # labels: v̄_a on each regular contribution's total (index -1: None); the Python
    # edges' items carry their own
    label_of = np.full(size, -1, np.int32)
    label_of[total[reg] - n] = e_a[reg]
    labels = list(map((bar_labels + [None]).__getitem__, label_of.tolist()))
    del label_of, e_a

    # The instructions, each put in place as it is made (no list of them all in
    # block order, nor a permutation of it: the peak at 10^6 operations)
    new: list = [None] * size
    written = np.zeros(size, bool)

    def put(pos, op, argcols):
        written[pos - n] = True
        # (any() of the Nones list.__setitem__ returns: a C-level loop that keeps nothing)
        any(map(new.__setitem__, (pos - n).tolist(),
                map(_new_tuple, repeat(Instr), zip(repeat(op), zip(*argcols), repeat(()), repeat(())))))
        return len(pos)

    placed = len(new_consts)
    new[:placed] = [_new_tuple(Instr, ("const", (), (("value", v),), ())) for v in new_consts]
    written[:placed] = True
    placed += cs.put(new, written, n, labels, total)
    del cs   # (its items and refs: not alive while the regular edges are made)
    # where each first instance of a shared instruction is (the others read it)
    firsts = start[inst_edge] + inst_offset if shared else None
    for t, idx in groups:
        if not len(idx):
            continue
        tinstrs, result = templates[t]
        ii = e_i[idx]
        st = start[idx]
        cols = {("s", 0): adj[ii]}   # (the seed G: the consumer's adjoint)
        at = [st + k for k in range(len(tinstrs))]   # each instruction's variable
        kept = [slice(None)] * len(tinstrs)
        if t in shared:
            keep, alias, offsets = shared[t]
            for k in range(len(tinstrs)):
                at[k] = st + offsets[:, k]
                if not keep[:, k].all():
                    kept[k] = keep[:, k]
                    hit = alias[:, k]
                    built = firsts[np.where(keep[:, k] | (hit >= 0), 0, -1 - hit)]   # (an earlier instance)
                    at[k] = np.where(keep[:, k], at[k], np.where(hit >= 0, hit, built))

        def column(r):
            if r[0] == "t":
                return at[r[1]]
            if r[0] == "c":
                return np.full(len(idx), const_var[_const_key(r[1])], np.int32)
            if r not in cols:   # an argument's column, or the result's slot (after the arguments)
                k = r[1] - 1
                cols[r] = arg_cols[k][ii] if k < len(instrs[ii[0]][1]) else ii
            return cols[r]
        sub = as_sub[idx]
        for k, (op, refs) in enumerate(tinstrs):
            keep = kept[k]
            if k == len(tinstrs) - 1 and neg_last[t]:
                keep = ~sub      # (the negation of an `old − m` is not built; never shared)
            pos = at[k][keep]
            if len(pos):
                placed += put(pos, op, [column(r)[keep].tolist() for r in refs])
        # what closes each contribution: a copy (first, result not fresh), add or sub
        res = column(result)
        if tinstrs and result[0] == "t" and neg_last[t]:
            m = column(tinstrs[result[1]][1][0])
        else:
            m = res
        fi, before, ends = first[idx], prev[idx], total[idx]
        for mask, op, cols2 in ((fi & ~fresh[t], "copy", (res,)),
                                (~fi & sub, "sub", (before, m)),
                                (~fi & ~sub, "add", (before, res))):
            if mask.any():
                placed += put(ends[mask], op, [c[mask].tolist() for c in cols2])
    if placed != size or not written.all():
        raise AssertionError("bulk sweep: positions are not a permutation")   # (a bug, not bad input)

    outputs = [(name, o)]
    taken = {name}
    for nm, v in wrt_list:
        av = int(adj[v])
        outputs.append((fresh_name(f"{nm}.bar", taken), av if av >= 0 else zero))
    return Trace(chain(instrs, new), chain(trace.labels, labels), outputs, None,
                 _inputs=trace.inputs, _all_live=True)
