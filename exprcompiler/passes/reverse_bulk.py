"""The reverse sweep of a large scalar trace in bulk: per op kind over NumPy columns.

Where it sits: beside passes/reverse.py (grad_reverse), for the gradient of a
front end's trace of scalars. Today's sweep makes one Builder call per new
instruction (hash-consing, identities); this one records each op kind's partial
ONCE on placeholders (a template: a few instructions over the seed G, the
arguments and the result) and instantiates it for every instruction of that kind
at once: blocks in descending consumer order, positions by a cumsum of block
sizes, argument columns gathered with NumPy, tuples made by C-level maps.

STATUS: not a drop-in for grad_reverse. It builds no hash-consing and applies no
builder identities, so its trace has more instructions (+6% on the text family,
+0.01% on deep) and is not grad_reverse's: (a) the seed is kept, v̄_k = 1 and
1 · v products (grad_reverse folds them, and so also names fewer copies);
(b) a partial's subexpressions of primal variables (cos(v), square(v), 2 · v) are
not shared with the primal's or between blocks, nor are g · w products that
two blocks make alike (x·w + y·w); (c) no −(−v) -> v, (−a)·b -> −(a·b),
old + v̄ -> old − m for a negated v̄, c·(k·v) -> (c·k)·v; (d) new constants
come right after the primal. What it keeps: every contribution is the same
operations on the same values, summed into each adjoint in the same order
(consumers descending, last argument first; `old + (−m)` written `old − m`,
as grad_reverse writes it), so the gradient has the same bits at every point
(the identities are exact, but for a NaN's sign bit, and for c·(k·v) under over-
or underflow of k·v); every adjoint carries grad_reverse's v̄ label. Returns
None where it does not cover a trace (the caller takes grad_reverse): shapes,
options, an op without scalar partials, a partial that builds something other
than scalar operations, inputs not first, dead code, an output that is also an
argument, an adjoint that flows nowhere (x**0's: a structural zero).

Why not the seed cascade alone: on the text family a tenth of grad_reverse's
builder calls are not built as written (a fold, an identity, a hash-consing hit),
spread evenly over the whole sweep, and a fifth of its adjoints are constants
(±1 carried through sums and differences), a tenth negations: an identical bulk
sweep needs templates chosen by what the adjoint G and the arguments are
(a constant, a negation, a copy of a primal variable), not only by op and
constant arguments (benchmarks/bench_reverse_bulk.py --why counts them).

Memory: int32 columns (int8 argument numbers), arrays dropped once used, and each
instruction put in its place as it is made: at 10^6 text operations the pass's
peak is below grad_reverse's.
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Optional, Sequence

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC, negated_seed, seed
from ..trace.ir import Builder, Trace, _new_tuple, gc_paused
from ..trace.ir_trace import Instr
from .replay import derived_labels, fresh_name, labels_of, scalar_output, wrt_vars
from .reverse import active_set

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


def _template(op, j: int, pattern: tuple):
    """_record's template, kept across calls (a Builder and a partial's calls for each
    op kind: at 10² operations a fifth of the sweep). Keyed by the op's definition
    itself, so a table entry replaced (by a test) records its own."""
    key = (id(op), j, *map(_const_key_or_none, pattern))
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    template = _record(op, j, pattern)
    if len(_TEMPLATES) >= 4096:   # (many constant exponents: the cache stays small)
        _TEMPLATES.clear()
    _TEMPLATES[key] = (op, template)
    return template


_TEMPLATES: dict = {}


def _const_key_or_none(value):
    return None if value is None else _const_key(value)


def _record(op, j: int, pattern: tuple):
    """Partial j of `op` on placeholders, arguments that are constants in `pattern`
    (their values) given as those constants: a template (see above)."""
    partial = op.vjp.partials[j]
    if partial is seed:
        return _SEED_TEMPLATE
    if partial is negated_seed:
        return _NEG_TEMPLATE
    b = Builder(pull_negations=True)
    g = b.input("g")
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
            edges = _edges_of(ops[members[0]], arg_lists[members[0]], const_values, templates)
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
    return _lay_out(trace, o, name, wrt_list, bar_labels, templates, e_i, e_a, e_t, cval, cols)


def _reached_edges(o: int, n: int, e_i: list, e_a: list) -> np.ndarray:
    """Which edges (in sweep order) leave a variable that has an adjoint."""
    reached = bytearray(n)
    reached[o] = 1
    keep = bytearray(len(e_i))
    for k, (i, a) in enumerate(zip(e_i, e_a)):
        if reached[i]:
            keep[k] = reached[a] = 1
    return np.frombuffer(keep, np.uint8).astype(bool)


def _edges_of(op: str, args: tuple, const_values: dict, templates: list):
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
        edges.append((j, len(templates) - 1))
    return tuple(edges)


def _lay_out(trace, o, name, wrt_list, bar_labels, templates, e_i, e_a, e_t, cval, arg_cols) -> Trace:
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
    # the seed: dead where no gradient flows from the output (grad_reverse drops it)
    seeded = bool((e_i == o).any()) or o in [v for _, v in wrt_list]
    if seeded:
        const(1.0)
    for t in np.unique(e_t).tolist():   # (a kind's template with no edge adds no constant)
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
    seed_var = n + len(new_consts)   # v̄ of the output: a named copy of the constant 1
    base = seed_var + seeded

    # per template: its size, whether its result is its own last instruction, a negation
    sizes = np.array([len(t[0]) for t in templates], np.int32)
    fresh = np.array([t[1][0] == "t" for t in templates], bool)
    neg_last = np.array([t[1][0] == "t" and t[0][t[1][1]][0] == "neg" for t in templates], bool)
    # edges grouped by argument, in sweep order within a group (a stable sort)
    order = np.argsort(e_a, kind="stable")
    same = e_a[order[1:]] == e_a[order[:-1]]   # (edge order[k + 1] is not its argument's first)
    later = order[1:][same]
    first = np.ones(E, bool)            # the first contribution to its argument?
    first[later] = False
    s_t = sizes[e_t]
    as_sub = ~first & neg_last[e_t]     # old − m: the negation is not built
    block = np.where(first, s_t + ~fresh[e_t], s_t + 1 - as_sub)
    del s_t
    total = np.cumsum(block, dtype=np.int32)   # the adjoint after each contribution
    total += base - 1
    start = total - block + 1
    del block
    # v̄ of each variable at the end: its last contribution's total; the previous
    # total of a later contribution: the one before it on its argument
    adj = np.full(n, -1, np.int32)
    adj[o] = seed_var
    last = order[np.flatnonzero(np.concatenate((~same, [True])))] if E else order
    adj[e_a[last]] = total[last]
    prev = np.full(E, -1, np.int32)
    prev[later] = total[order[:-1][same]]
    del order, same, later, last

    # labels: v̄_a on each contribution's total, the output's on the seed (index -1: None)
    size = (int(total[-1]) + 1 if E else base) - n
    label_of = np.full(size, -1, np.int32)
    label_of[total - n] = e_a
    if seeded:
        label_of[seed_var - n] = o
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

    placed = base - n
    new[:placed] = ([_new_tuple(Instr, ("const", (), (("value", v),), ())) for v in new_consts]
                    + [_new_tuple(Instr, ("copy", (const(1.0),), (), ()))] * seeded)
    written[:placed] = True
    by_template = np.argsort(e_t, kind="stable")
    bounds = np.searchsorted(e_t[by_template], np.arange(len(templates) + 1)).tolist()
    for t, (tinstrs, result) in enumerate(templates):
        idx = by_template[bounds[t]:bounds[t + 1]]
        if not len(idx):
            continue
        ii = e_i[idx]
        st = start[idx]
        cols = {("s", 0): adj[ii]}   # (the seed G: the consumer's adjoint)

        def column(r):
            if r[0] == "t":
                return st + r[1]
            if r[0] == "c":
                return np.full(len(idx), const_var[_const_key(r[1])], np.int32)
            if r not in cols:   # an argument's column, or the result's slot (after the arguments)
                k = r[1] - 1
                cols[r] = arg_cols[k][ii] if k < len(instrs[ii[0]][1]) else ii
            return cols[r]
        sub = as_sub[idx]
        for k, (op, refs) in enumerate(tinstrs):
            keep = slice(None)
            if k == len(tinstrs) - 1 and neg_last[t]:
                keep = ~sub      # (the negation of an `old − m` is not built)
            pos = (st + k)[keep]
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
