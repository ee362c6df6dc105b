"""The reverse sweep of a large scalar trace in bulk: per op kind over NumPy columns.

Where it sits: beside passes/reverse.py (grad_reverse), for the gradient of a
front end's trace of scalars. Today's sweep makes one Builder call per new
instruction (hash-consing, identities); this one records each op kind's partial
ONCE on placeholders (a template: a few instructions over the seed G, the
arguments and the result) and instantiates it for every instruction of that kind
at once: blocks in descending consumer order, positions by a cumsum of block
sizes, argument columns gathered with NumPy, tuples made by C-level maps.

STATUS: grad_reverse's trace on the deep family (10^3-10^5 operations), not yet on
text and SymPy (10^5 text: +0.43% instructions, SymPy +0.52%; session 33: +1.5%,
before that +6.1%), so not wired in. What it does as grad_reverse's builder does: (a) the seed's cascade,
the edges out of constant adjoints (v̄ = 1 and what sums and differences carry of
it), swept in Python in passes/reverse_bulk_consts.py, each partial recorded for
G's value, so 1·v is v, 1 + 1 is 2, what only those read is dropped, and what the
primal has (sin(v) in cos's partial) is the primal's; (b) a partial's instructions
on primal variables alone (cos(v), 2·v), and on a G that names a primal variable
(G = copy of v, G·w = the primal's v·w), hash-consed against the primal's and each
other (_hash_cons); a copy that nothing reads then is dropped; (c) the identities
that look into an argument (c·(k·v) -> (c·k)·v, an unlabelled negation pulled out
of a product): the kinds are told apart by their arguments' shape and each is
recorded on a placeholder of that shape (_argument_patterns); (d) on negated
adjoints (each adjoint's class, _negations): a first contribution −m and a second
c, not a negation, is c − m (the negation dropped); a later contribution that is
a negated G (−x) is old − x (G's negation dropped if nothing else reads it).
What it does not yet (benchmarks/bench_reverse_bulk.py --why counts it; some
cases in tests/test_reverse_bulk.py's comments): −(−v) -> v where G is a
negation; a negated G from the constant sweep, or a chain of copies of one; the
sums where one side is a constant sweep's and the other a regular edge's (the
constant sweep reads a regular total as opaque); c·G -> (c·k)·y where G is k·y;
hash-consing of instructions that read a G naming a sweep variable (x·G twice,
G copies of one variable); new constants of the regular edges' templates come
right after the primal (grad_reverse makes them where first read). What it keeps:
every contribution is the same operations on the same values, summed into each
adjoint in the same order (consumers descending, last argument first; `old + (−m)`
written `old − m`, as grad_reverse writes it), so the gradient has the same bits at
every point (the identities are exact, but for a NaN's sign bit, and for
c·(k·v) under over- or underflow of k·v); every adjoint carries grad_reverse's v̄
label. Returns None where it does not cover a trace (the caller takes
grad_reverse): shapes, options, an op without scalar partials, a partial that
builds something other than scalar operations, inputs not first, dead code, an
output that is also an argument, an adjoint that flows nowhere (x**0's: a
structural zero).

Cost: the constant adjoints' Python sweep takes a quarter of the text family's
edges: at 10^5 operations the pass is ~5.4 µs an operation against grad_reverse's
~8-9 (CPU, median of 7 alternating rounds, load ~6; without (a) and (b) it was
2.6 µs); on deep 2.5 against 7.3. benchmarks/bench_reverse_bulk.py --why counts
what grad_reverse does differently.

Memory: int32 columns (int8 argument numbers), arrays dropped once used, and each
instruction put in its place as it is made, the constant sweep's items dropped
before the regular edges' are made: at 10^5 text operations the pass's traced peak
is below grad_reverse's (723 against 812 bytes an operation).
"""

from __future__ import annotations

import math
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Optional, Sequence

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC, negated_seed, seed
from ..trace.ir import Builder, Label, Trace, _new_tuple, gc_paused
from ..trace.ir_trace import Instr
from .replay import derived_labels, fresh_name, labels_of, scalar_output, wrt_vars
from .reverse_bulk_consts import ConstantSweep
from .reverse_bulk_share import (_MAX_BLOCK, _MAX_ROUNDS, _active, _const_key, _hash_cons, _independent, _negations,
                                 _PrimalTable, _primal_sources, _roots, _unread_copies)

_OP_OF, _ARGS_OF, _ATTRS_OF, _SHAPE_OF = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
_IS_CONST = frozenset(("const",))
_LEAVES = frozenset(("input", "const"))

# A template: (instructions, result). An instruction is (op name, refs); a ref is
# ("s", k): slot k (0 the seed G, 1..m the arguments, m + 1 the result), ("c", value):
# a constant, ("t", k): the template's instruction k. result is a ref, or the whole
# template None (a structural zero: no contribution).
_SEED_TEMPLATE = ((), ("s", 0))
_NEG_TEMPLATE = ((("neg", (("s", 0),)),), ("t", 0))


class _Unsupported(Exception):
    """A partial built something the bulk sweep does not lay out."""


def _template(op, j: int, pattern: tuple, g=None):
    """_record's template, kept across calls (a Builder and a partial's calls for each
    op kind: at 10² operations a fifth of the sweep). Keyed by the op's definition
    itself, so a table entry replaced (by a test) records its own."""
    key = (id(op), j, _const_key_or_none(g), *map(_pattern_key, pattern))
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    template = _record(op, j, pattern, g)
    if len(_TEMPLATES) >= 4096:   # (many constant exponents: the cache stays small)
        _TEMPLATES.clear()
    _TEMPLATES[key] = (op, template)
    return template


_TEMPLATES: dict = {}


def _text_of(template) -> str:
    """repr(template), kept for the templates in use (a few hundred, met on every call):
    a key that tells 0.0 from -0.0, where tuples' equality does not."""
    hit = _TEXTS.get(id(template))
    if hit is not None and hit[0] is template:
        return hit[1]
    if len(_TEXTS) >= 8192:
        _TEXTS.clear()
    text = repr(template)
    _TEXTS[id(template)] = (template, text)   # (the template kept alive: its id not reused)
    return text


_TEXTS: dict = {}


def _const_key_or_none(value):
    return None if value is None else _const_key(value)


def _pattern_key(entry):
    """A pattern entry's key: a constant's, or a structured entry with its constant's."""
    if type(entry) is tuple:
        return (entry[0], entry[1], _const_key_or_none(entry[2]))
    return _const_key_or_none(entry)


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
    inner: dict = {}   # a structured argument's own argument -> its ref
    args = [_placeholder(b, k, v, inner) for k, v in enumerate(pattern)]
    out = b.input("out")
    slots = {g: ("s", 0), out: ("s", len(args) + 1)}
    for k, a in enumerate(args):
        slots.setdefault(a, ("s", k + 1))
    for v, r in inner.items():
        slots.setdefault(v, r)
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


def _placeholder(b, k: int, entry, inner: dict) -> int:
    """Argument k of a recording: an input, a constant (a float entry), or what the
    builder's identities look into (a structured entry, the primal argument's shape):
    ("mul", p, c), a product whose argument p is the constant c (c·(k·v) folds to
    (c·k)·v); ("neg", labelled), a negation (−(−v) is v; an unlabelled one is pulled
    out of products). Its own argument is an input, ref ("u", k + 1, its position)."""
    if entry is None:
        return b.input(f"x{k}")
    if type(entry) is not tuple:
        return b.const(entry)
    y = b.input(f"y{k}")
    first = len(b.instrs)
    if entry[0] == "mul":
        c = b.const(entry[2])
        var = b.mul(c, y) if entry[1] == 0 else b.mul(y, c)
        inner[y] = ("u", k + 1, 1 - entry[1])
    else:
        var = b.neg(y)
        inner[y] = ("u", k + 1, 0)
        if entry[1] and var >= first:
            b.labels[var] = _PLACEHOLDER_LABEL
    if var < first or b.instrs[var].op != entry[0]:
        raise _Unsupported(entry[0])   # (the builder did not build it as the primal has it)
    return var


_PLACEHOLDER_LABEL = Label("v", 1, None, None)


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
    op_kind = kind.copy()   # (kind is refined below by the arguments' patterns)
    is_const = np.zeros(n + 1, bool)   # (index -1: no argument)
    if cval:
        is_const[np.fromiter(cval, np.intp, len(cval))] = True
    pattern_of, pattern_key = _argument_patterns(instrs, trace.labels, kind, op_id, cols, is_const, const_values)
    is_special = is_const.copy()
    if pattern_of:
        is_special[np.fromiter(pattern_of, np.intp, len(pattern_of))] = True
    pattern_key.update(cval)
    pattern_of.update(const_values)
    with_const = np.flatnonzero(is_special[cols[0]] | is_special[cols[1]] | is_special[cols[2]])
    del is_special
    n_kinds = len(op_id)
    if len(with_const):
        # an instruction with such arguments: a kind per (op, its arguments' patterns), the
        # patterns numbered (0: a plain variable) and combined as ints
        code_of = {key: c for c, key in enumerate(dict.fromkeys(pattern_key.values()), 1)}
        pcode = np.zeros(n + 1, np.int64)   # (index -1: no argument)
        pcode[np.fromiter(pattern_key, np.intp, len(pattern_key))] = np.fromiter(
            map(code_of.__getitem__, pattern_key.values()), np.int64, len(pattern_key))
        radix = len(code_of) + 1
        combined = kind[with_const].astype(np.int64)
        for k in range(3):
            if int(combined.max()) >= (1 << 62) // radix:   # (renumbered before it could overflow)
                combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
            combined = combined * radix + pcode[cols[k][with_const]]
        found, inverse = np.unique(combined, return_inverse=True)
        kind[with_const] = n_kinds + inverse
        n_kinds += len(found)
        del code_of, pcode, combined, found, inverse
    templates: list = []
    specs: list = []   # template id -> (op, argument number, constant arguments)
    active_np = _active(trace, wrt_list, ops, cols, is_const)
    parts_i, parts_j, parts_t = [], [], []
    zeros = False   # a structural zero somewhere: then not every active variable is reached
    try:
        by_kind = np.argsort(kind, kind="stable")   # (instructions grouped by kind, in order)
        bounds = np.searchsorted(kind[by_kind], np.arange(n_kinds + 1)).tolist()
        for k in range(n_kinds):
            members = by_kind[bounds[k]:bounds[k + 1]]
            if not len(members) or ops[members[0]] in _LEAVES:
                continue
            edges = _edges_of(ops[members[0]], arg_lists[members[0]], pattern_of, templates, specs)
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
    active_np_o = bool(active_np[o])
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
    elif not active_np_o:
        e_i, e_j, e_t = e_i[:0], e_j[:0], e_t[:0]
    e_a = arg_rows[e_j, e_i]
    del e_j
    if (e_a == o).any():
        return None   # (the output is also an argument: its seed and contributions summed; not laid out)
    return _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, cols,
                   "copy" in op_id, op_kind, op_id)


def _reached_edges(o: int, n: int, e_i: list, e_a: list) -> np.ndarray:
    """Which edges (in sweep order) leave a variable that has an adjoint."""
    reached = bytearray(n)
    reached[o] = 1
    keep = bytearray(len(e_i))
    for k, (i, a) in enumerate(zip(e_i, e_a)):
        if reached[i]:
            keep[k] = reached[a] = 1
    return np.frombuffer(keep, np.uint8).astype(bool)


def _argument_patterns(instrs, labels, kind, op_id, cols, is_const, const_values) -> tuple:
    """The primal variables whose shape the builder's identities look into, as an
    argument: products of a constant and a variable, and negations (labelled or
    not); ({var: pattern entry (see _placeholder)}, {var: its key})."""
    found: dict = {}
    keys: dict = {}
    if "neg" in op_id:
        negs = np.flatnonzero(kind == op_id["neg"]).tolist()
        found.update(dict.fromkeys(negs, _NEG_LABELLED))
        found.update(dict.fromkeys([v for v in negs if labels[v] is None], _NEG_UNLABELLED))
        keys.update(found)   # (a negation's entry is its key)
    if "mul" in op_id:
        c1 = is_const[cols[1]]
        scaled = np.flatnonzero((kind == op_id["mul"]) & (is_const[cols[0]] != c1))
        for v, p in zip(scaled.tolist(), c1[scaled].astype(np.int8).tolist()):
            k = const_values[instrs[v][1][p]]
            if k != 1.0 and k != -1.0:   # (a builder makes no such product: not one to look into)
                entry = found[v] = ("mul", p, k)
                keys[v] = _pattern_key(entry)
    return found, keys


_NEG_LABELLED, _NEG_UNLABELLED = ("neg", True, None), ("neg", False, None)


def _edges_of(op: str, args: tuple, pattern_of: dict, templates: list, specs: list):
    """((argument number, template id), ...) of an instruction `op(args)`, last
    argument first, without structural zeros; False if the op has no scalar partials."""
    opdef = _ops.OPS.get(op)
    partials = getattr(getattr(opdef, "vjp", None), "partials", None)
    if opdef is None or opdef.arity == VARIADIC or partials is None or len(partials) != len(args):
        return False
    pattern = tuple(pattern_of.get(a) for a in args)
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


def _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, arg_cols,
             primal_copies: bool, op_kind, op_id) -> Trace:
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
                       lambda t, c: _template(*specs[t], g=c), bar_labels,
                       None if primal_copies else _PrimalTable(op_kind, op_id, arg_cols, const_var))
    try:
        py = cs.run(_SEED_TEMPLATE, _NEG_TEMPLATE)
    except _Unsupported:   # (a partial recorded for G's value builds what no template holds)
        return None
    # kinds whose templates are alike (most of those told apart by their arguments'
    # shape: nothing folded), of ops of one arity (slot m + 1 is the result), are laid
    # out as one: fewer, larger groups
    same: dict = {}
    merged = np.array([same.setdefault((len(spec[2]), _text_of(t)), len(same)) for t, spec in zip(templates, specs)],
                      np.int32)
    templates = list({m: t for t, m in zip(templates, merged.tolist())}.values())
    e_t = merged[e_t]
    del same, merged
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
    # per template: whether its result is its own last instruction, a negation
    fresh = np.array([t[1][0] == "t" for t in templates], bool)
    neg_last = np.array([t[1][0] == "t" and t[0][t[1][1]][0] == "neg" for t in templates], bool)
    by_template = reg[np.argsort(e_t[reg], kind="stable")]
    bounds = np.searchsorted(e_t[by_template], np.arange(len(templates) + 1)).tolist()
    groups = [(t, by_template[bounds[t]:bounds[t + 1]]) for t in range(len(templates))]
    wrt_set = {v for _, v in wrt_list}
    nxt, ea = memoryview(next_edge), memoryview(np.ascontiguousarray(e_a))   # (ints read, no lists)
    # a partial's instructions on primal variables alone, or on G where G names a
    # primal variable: hash-consed, as the builder does. A contribution that is such a
    # hit makes its adjoint name that variable too: until nothing more is found
    single = first & (next_edge < 0)
    seed_t = templates.index(_SEED_TEMPLATE) if _SEED_TEMPLATE in templates else -1
    seedlike = single & ~py & (e_t == seed_t)
    named = cs.primal_results()
    shared, inst_edge, inst_offset = {}, None, None
    result_hit = np.zeros(len(e_i), bool)   # (a regular contribution that is an earlier variable)
    up = _roots(n, e_i, e_a, seedlike)
    g_src = _primal_sources(n, up, named)
    g_readers = None
    for _ in range(0 if primal_copies else _MAX_ROUNDS):
        shared, inst_edge, inst_offset = _hash_cons(
            instrs, templates, groups, e_i, arg_cols, const_var, n + len(new_consts) + 1, g_src)
        more = dict(named)
        for t, idx in groups:
            if t in shared and fresh[t]:
                r = templates[t][1][1]
                hit = ~shared[t][0][:, r]
                result_hit[idx] = hit
                to_primal = hit & (shared[t][1][:, r] >= 0) & single[idx]
                more.update(zip(e_a[idx[to_primal]].tolist(), shared[t][1][to_primal, r].tolist()))
        if len(more) == len(named):
            break
        named = more
        again = _primal_sources(n, up, named)
        if g_readers is None:   # (the edges whose templates hash-cons an instruction on G)
            g_readers = reg[np.isin(e_t[reg], [t for t, tp in enumerate(templates)
                                                if any(g for _, g in _independent(tp))])]
        moved = not np.array_equal(again[e_i[g_readers]], g_src[e_i[g_readers]])
        g_src = again
        if not moved:
            break
    # an adjoint that names a primal variable and whose every reading as G was such
    # a hit is not read: grad_reverse's finish drops its copy (and the copies that
    # only it read, up the chain of single seed contributions)
    dead, g_reads = _unread_copies(templates, groups, shared, e_i, e_a, seedlike, g_src, wrt_set | {o})
    del g_src, single
    # what the layout reads of the Python edges: an adjoint a regular edge sums into,
    # or reads as its G, or a gradient output
    reg_out = g_reads > 0
    del g_reads
    roots = [(cs.seed, -1)] if o in wrt_set else []
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
    s_t = sizes[e_t]
    as_sub = ~first & neg_last[e_t] & ~py    # old − m: the negation is not built
    # A first contribution that is a negation −x, and a second that is not one (a
    # fresh result): the builder's old + c is c − x, and the negation, which nothing
    # else reads, is dropped by grad_reverse's finish: `swap` marks the second edge,
    # `dropped` the first
    # (c is a negation where it is one fresh, or G that is one: the class of G for the
    # later contributions that are G, 2 where not known)
    later_g = np.flatnonzero(~py & ~first & (e_t == seed_t))
    g_negated = np.full(len(e_i), 2, np.int8)
    g_negated[later_g] = _negations(n, templates, e_t, e_a, first & (next_edge < 0) & ~py, fresh, neg_last, cs, up,
                                    e_i[later_g])
    del later_g
    dropped = ~py & first & neg_last[e_t]
    second = np.where(dropped, next_edge, -1)
    ok = second >= 0
    s2 = second[ok]
    ok[ok] = ~py[s2] & (fresh[e_t[s2]] & ~neg_last[e_t[s2]] | (g_negated[s2] == 0))
    del s2
    dropped &= ok
    swap = np.zeros(len(e_i), bool)
    swap[second[dropped]] = True
    del second, ok
    # A later contribution that is G, where G is a negation −x made by its own single
    # edge: old + G is old − x (`unneg`); that negation, if nothing else reads it (every
    # edge out of its variable such a one, and not an output), is dropped too
    neg_edge = np.full(n, -1, np.int64)   # (the single edge whose result is the variable's negation)
    lone = np.flatnonzero(first & (next_edge < 0) & ~py & neg_last[e_t])
    neg_edge[e_a[lone]] = lone
    unneg = (g_negated == 1) & (neg_edge[e_i] >= 0)
    del g_negated, up, lone
    if unneg.any():
        out_edges = np.bincount(e_i, minlength=n)
        unneg_edges = np.bincount(e_i[unneg], minlength=n)
        gone = np.flatnonzero((out_edges == unneg_edges) & (unneg_edges > 0))
        gone = gone[~np.isin(gone, [o, *wrt_set])]
        dropped[neg_edge[gone]] = True
        del out_edges, unneg_edges, gone
    block = np.where(py, py_sizes, np.where(first, s_t + ~fresh[e_t], s_t + 1 - as_sub)).astype(np.int32)
    del s_t, py_sizes
    for t, idx in groups:
        if t in shared:
            block[idx] -= (~shared[t][0]).sum(axis=1, dtype=np.int32)
    block += first & result_hit   # (a first contribution that is an earlier variable: a named copy)
    block -= dead
    block -= dropped
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
    del last, next_edge

    # labels: v̄_a on each regular contribution's total (index -1: None); the Python
    # edges' items carry their own
    label_of = np.full(size, -1, np.int32)
    reg = reg[~dead[reg] & ~dropped[reg]]
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
    negated = np.full(len(e_i), -1, np.int64)   # (a dropped negation's argument)
    swapped = np.full(len(e_i), -1, np.int64)   # (a swapped edge's c)
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
            if r[0] == "u":
                if r not in cols:
                    cols[r] = arg_cols[r[2]][column(("s", r[1]))]
                return cols[r]
            if r not in cols:   # an argument's column, or the result's slot (after the arguments)
                k = r[1] - 1
                cols[r] = arg_cols[k][ii] if k < len(instrs[ii[0]][1]) else ii
            return cols[r]
        sub = as_sub[idx]
        drop = dropped[idx]
        for k, (op, refs) in enumerate(tinstrs):
            keep = kept[k]
            if k == len(tinstrs) - 1 and neg_last[t]:
                keep = ~sub & ~drop   # (the negation of an `old − m` is not built; never shared)
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
        sw = swap[idx]
        for mask, op, cols2 in ((fi & (~fresh[t] | result_hit[idx]) & ~dead[idx], "copy", (res,)),
                                (~fi & sub, "sub", (before, m)),
                                (~fi & ~sub & ~sw & ~unneg[idx], "add", (before, res))):
            if mask.any():
                placed += put(ends[mask], op, [c[mask].tolist() for c in cols2])
        if neg_last[t]:   # (what a negation negates: for `c − x` and `old − x`)
            negated[idx] = m
        if sw.any():
            swapped[idx[sw]] = res[sw]
    if swap.any():
        at_swap = np.flatnonzero(swap)
        placed += put(total[at_swap], "sub", [swapped[at_swap].tolist(), negated[prev_edge[at_swap]].tolist()])
    if unneg.any():
        at_unneg = np.flatnonzero(unneg)
        placed += put(total[at_unneg], "sub", [prev[at_unneg].tolist(),
                                                negated[neg_edge[e_i[at_unneg]]].tolist()])
    if placed != size or not written.all():
        raise AssertionError("bulk sweep: positions are not a permutation")   # (a bug, not bad input)

    outputs = [(name, o)]
    taken = {name}
    for nm, v in wrt_list:
        av = int(adj[v])
        outputs.append((fresh_name(f"{nm}.bar", taken), av if av >= 0 else zero))
    return Trace(chain(instrs, new), chain(trace.labels, labels), outputs, None,
                 _inputs=trace.inputs, _all_live=True)
