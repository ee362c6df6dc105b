"""The bulk reverse sweep's layout: the new instructions' places, then the instructions.

Where it sits: passes/reverse_bulk.py (the driver) finds the edges in sweep order,
each with its template (passes/reverse_bulk_templates.py); here they become a
trace. The edges out of constant adjoints go to the constant sweep
(passes/reverse_bulk_consts.py); kinds with alike templates are merged; what the
builder would find already built is marked (passes/reverse_bulk_share.py), and what
its identities on negations change (passes/reverse_bulk_negations.py); each edge's
block size then gives its place by a cumsum, and its v̄ label. The constant sweep's
instructions are put first, then each kind's are made for all its edges at once
(passes/reverse_bulk_write.py), as columns; the products c·G that the builder folds
are folded on them (passes/reverse_bulk_fold.py), and the whole is a Trace.
"""

from __future__ import annotations

import math
from itertools import chain

import numpy as np

from ..heap_release import release_freed
from ..trace.column_instrs import ColumnInstrs
from ..trace.ir import Trace, _new_tuple
from ..trace.ir_trace import Instr, instructions
from ..trace.labels import NONE, Labels
from .replay import fresh_name
from .reverse_bulk_consts import ConstantSweep
from .reverse_bulk_fold import fold_scaled
from .reverse_bulk_generic import spec_template
from .reverse_bulk_masks import Flags, check_layout, fresh_negations
from .reverse_bulk_negations import _negation_classes, _negation_hits
from .reverse_bulk_order import stable_order
from .reverse_bulk_share import (_BUILT, _MAX_ROUNDS, _const_key, _hash_cons, _independent, _PrimalKeys,
                                 _PrimalTable, _primal_sources, _roots, _unread_copies)
from .reverse_bulk_templates import _NEG_TEMPLATE, _SEED_TEMPLATE, _template, _text_of, _Unsupported
from .reverse_bulk_write import NewInstrs, _write_regular, bar_columns


def _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, arg_cols,
             primal_copies: bool, op_kind, op_id, primal_columns, masks=None, minus=None) -> Trace:
    """The new instructions after the primal ones, from the edges (in sweep order):
    edge k is argument e_a[k] of instruction e_i[k], its partial template e_t[k];
    `primal_columns`: the primal's Columns, the start of the gradient's; `masks`: the
    edges that leave a where's branch (reverse_bulk_masks.MaskedEdges), or None."""
    instrs = instructions(trace)   # (a primal held as columns: read as them, its tuples not made)
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
    order = stable_order(e_a)
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
    # (a masked edge's partial is recorded for G's value, then masked: reverse_bulk_masks.py)
    # (a generic kind's partial, reverse_bulk_generic.py, recorded for the instruction's own constants)
    recorded = (lambda t, c, args: _template(*specs[t], g=c) if len(specs[t]) == 3 else
                spec_template(specs[t], c, args)) if masks is None else masks.constant_template(specs)
    cs = ConstantSweep(trace, o, e_i, e_a, e_t, prev_edge, next_edge, templates, recorded, _labelled(trace.labels),
                       None if primal_copies else _PrimalTable(op_kind, op_id, arg_cols, const_var),
                       {t for t, spec in enumerate(specs) if len(spec) > 3})
    if masks is not None:
        cs.mask_cols = masks.cols
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
    if minus is not None:
        minus.merged(merged)
    if masks is not None and masks.slots:   # (the templates with a union's flag, merged too)
        masks.slots = {int(merged[t]): ws for t, ws in masks.slots.items()}
    del same, merged
    reg = np.flatnonzero(~py)
    # (a kind's template with no edge adds no constant; not np.unique, whose first call
    # in a process imports numpy.ma: 8-18 ms, ~1 µs an operation at 10^4)
    used = np.flatnonzero(np.bincount(e_t[reg], minlength=len(templates))).tolist()
    if minus is not None:   # (with the constants c − 1 that a generic pow's template reads)
        minus.make(templates, used, e_t, e_i, reg, arg_cols, const, const_var)
    for t in [] if minus is not None else used:
        for _, refs in templates[t][0]:
            for r in refs:
                if r[0] == "c":
                    const(r[1])
    dvar = None if minus is None else minus.dvar
    zero = None
    reached = np.zeros(n, bool)
    reached[e_a] = True
    reached[o] = True
    if not all(reached[v] for _, v in wrt_list):
        zero = const(0.0)
    # per template: whether its result is its own last instruction, a negation
    fresh = np.array([t[1][0] == "t" for t in templates], bool)
    neg_last = np.array([t[1][0] == "t" and t[0][t[1][1]][0] == "neg" for t in templates], bool)
    by_template = reg[stable_order(e_t[reg])]
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
    primal_keys = _PrimalKeys(op_kind, op_id, arg_cols)
    for _ in range(0 if primal_copies else _MAX_ROUNDS):
        shared, inst_edge, inst_offset = _hash_cons(
            instrs, templates, groups, e_i, arg_cols, const_var, n + len(new_consts) + 1, g_src, primal_keys, dvar)
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
            reads_g = np.array([any(g for _, g in _independent(tp)) for tp in templates], bool)
            g_readers = reg[reads_g[e_t[reg]]]
        moved = not np.array_equal(again[e_i[g_readers]], g_src[e_i[g_readers]])
        g_src = again
        if not moved:
            break
    if masks is not None and not check_layout(masks, py, groups, shared, templates, e_i, e_t, up, g_src, cs.primal,
                                              instrs):
        return None   # (a mask the builder may find built: reverse_bulk_masks.py)
    # an adjoint that names a primal variable and whose every reading as G was such
    # a hit is not read: grad_reverse's finish drops its copy (and the copies that
    # only it read, up the chain of single seed contributions); so too the named copy
    # that a single contribution is where it was a hit itself (x·(x·(x·x)))
    dead, g_reads = _unread_copies(templates, groups, shared, e_i, e_a, seedlike, single & first & result_hit, g_src,
                                   wrt_set | {o})
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
    # (the negated seeds: one template per arity, the neg op's and sub's)
    neg_t = np.array([t == _NEG_TEMPLATE for t in templates], bool)
    as_sub, dropped, swap, unneg, neg_edge, dneg, unread, copy_neg, neg_key = _negation_classes(
        n, o, wrt_set, templates, e_i, e_a, e_t, py, first, next_edge, fresh, neg_last, seed_t, cs, up, neg_t, dead)
    if masks is not None and not fresh_negations(masks, n, templates, e_i, e_a, e_t, py, first, next_edge, fresh,
                                                 neg_last, seed_t, cs, up, neg_t):
        return None   # (a masked −G the builder may not build: reverse_bulk_masks.py)
    del up
    aliased = np.zeros(len(e_i), bool)   # (a negation that the hash-consing found)
    for t in set(np.flatnonzero(neg_t).tolist()) & shared.keys():
        aliased[dict(groups)[t][~shared[t][0][:, 0]]] = True
    neg_hit, neg_ext = _negation_hits(e_i, e_t, neg_t, py, dneg, neg_key, aliased)
    del neg_key, aliased
    if dneg.any() and not _double_negations_covered(dneg, e_a, groups, neg_t, shared, inst_edge, dead, trace.labels):
        return None
    # a negation found built is a named copy of it, where laid out: then that one is
    # laid out (read: not dropped, even where a later contribution was swapped)
    # (and a later contribution's −m, built before its old − m, unlabelled)
    h = neg_hit[(neg_hit >= 0) & first & ~dropped]
    built_neg = np.zeros(len(e_i), bool)
    if len(h):
        if dead[h].any():
            return None
        dropped[h] = False
        built_neg[h[~first[h]]] = True
    # (so too a negation made by its variable's own edge, found from outside by a first
    # contribution: laid out, though every edge out of its variable reads it no more)
    own = neg_edge[neg_ext[(neg_ext >= 0) & first & ~dropped]]
    dropped[own[own >= 0]] = False
    del own
    # (a negated seed of a negated G, −(−m): m, named or summed; one instruction)
    block = np.where(py, py_sizes, np.where(first, s_t + ~fresh[e_t], s_t + 1 - as_sub - dneg)).astype(np.int32)
    del s_t, py_sizes
    for t, idx in groups:
        if t in shared:
            block[idx] -= (~shared[t][0]).sum(axis=1, dtype=np.int32)
    block += first & result_hit   # (a first contribution that is an earlier variable: a named copy)
    block -= dead
    block -= dropped
    flags = None
    if masks is not None and masks.flags:
        # (the unions' flags: made once, in the block of the first edge that reads each)
        zero_var = const_var.get(_const_key(0.0))   # (held by the templates' wheres on a flag)
        if zero_var is None:
            return None
        flags = Flags(masks, len(e_i), zero_var)
        at = [k for k, _ in masks.flags]
        if not flags.covered(py, cs.primal, templates) or (dead[at] | dropped[at]).any():
            return None
        block += flags.extra
    block += built_neg
    if base + int(block.sum(dtype=np.int64)) >= 2 ** 31:
        return None   # (positions are int32: the driver's bound counts on templates of _MAX_BLOCK)
    total = np.cumsum(block, dtype=np.int32)   # the adjoint after each contribution
    total += base - 1
    start = total - block + 1
    size = base - n + int(block.sum())
    del block
    cs.place(start, seed_start, total)   # (a Python edge's total: where its adjoint is)
    # v̄ of each variable at the end: its last contribution's total; the previous
    # total of a later contribution: the one before it on its argument
    adj = np.full(n, -1, np.int32)
    adj[o] = cs.pos_np[cs.seed[1]]   # (-1: dead)
    last = np.flatnonzero(next_edge < 0)
    adj[e_a[last]] = total[last]
    prev = np.where(first, -1, total[np.maximum(prev_edge, 0)]).astype(np.int32)
    del last, next_edge

    # labels: v̄_a on each regular contribution's total (index -1: None); the Python
    # edges' items carry their own
    label_of = np.full(size, -1, np.int32)
    reg = reg[~dead[reg] & ~dropped[reg]]
    label_of[total[reg] - n] = e_a[reg]
    columns = isinstance(trace.labels, Labels)
    del e_a

    # The instructions, each put in place (the regular edges' as columns: made at the
    # end, in position order)
    out = NewInstrs(n, size)
    new, written = out.new, out.written
    placed = len(new_consts)
    new[:placed] = [_new_tuple(Instr, ("const", (), (("value", v),), ())) for v in new_consts]
    written[:placed] = True
    placed += cs.put(out, n, label_of, total)
    shifts = None
    if flags is not None:
        got, shifts = flags.place(out, masks, templates, groups, shared, e_t, start)
        placed += got
    # (columns: every label from the primal's, in bar_columns; else a list of them)
    labels = {} if columns else list(map((bar_labels + [None]).__getitem__, label_of.tolist()))
    del cs   # (its items and refs: not alive while the regular edges are made)
    # where each first instance of a shared instruction is (the others read it)
    firsts = start[inst_edge] + inst_offset if shared else None
    try:
        placed += _write_regular(out, instrs, templates, groups, shared, firsts, e_i, start, total, prev, adj,
                                 arg_cols, const_var, first, as_sub, dropped, swap, unneg, result_hit, dead, fresh,
                                 neg_last, prev_edge, neg_edge, dneg, neg_hit, built_neg, neg_ext,
                                 None if masks is None else masks.cols, dvar, shifts)
    except _Unsupported:
        return None
    # the negations that a −(−m) or an old − m read, a G whose negation was found,
    # and the copies of a negation that a `c − m` read, where they may be read no more (grad_reverse's finish drops
    # them): dropped with the folds' renumbering
    unread = np.concatenate((adj[e_i[unread | (neg_hit >= 0) | (neg_ext >= 0)]], total[copy_neg])).tolist()
    if placed != size or not out.written.all():
        raise AssertionError("bulk sweep: positions are not a permutation")   # (a bug, not bad input)
    # c·G -> (c·k)·y where G names k·y: the one identity that changes rounding that the
    # templates cannot see (passes/reverse_bulk_fold.py)
    wrt_adj = [int(adj[v]) for _, v in wrt_list]
    pos_map = fold_scaled(out, n, instrs, cval, arg_cols, op_kind, op_id, [o, zero, *wrt_adj],
                          lambda v: trace.labels[v] is not None if v < n else label_of[v - n] >= 0, unread)
    if pos_map is False:
        return None
    fold_moves = out.moved
    if pos_map is not None:
        if not columns:
            labels = fold_moves.listed(labels)
        adj = np.where(adj >= 0, pos_map[np.maximum(adj, 0)], adj)
        zero = None if zero is None else int(pos_map[zero])
    del pos_map
    # (what only the write-out read: freed before the gradient's columns are made, so
    # the pass's peak is not their sum)
    del e_i, e_t, prev_edge, first, py, templates, reg, reached, fresh, neg_last, by_template, groups, nxt, ea, \
        seedlike, named, shared, inst_edge, inst_offset, result_hit, dead, reg_out, roots, as_sub, dropped, swap, \
        unneg, neg_edge, dneg, unread, copy_neg, neg_hit, neg_ext, h, built_neg, total, start, prev, firsts, \
        written, arg_cols
    # (the gradient's columns, for generate, and its new instructions as them: their
    # tuples made when asked for, trace/column_instrs.py)
    cols = out.columns(primal_columns)
    del primal_columns
    new = ColumnInstrs(instrs.head, cols, {**instrs.fixed, **out.fixed(cols)}) if isinstance(instrs, ColumnInstrs) \
        else ColumnInstrs(instrs, cols, out.fixed(cols))
    del out
    # (the sweep's freed arrays, holes in the heap, ~300 bytes an operation at 10^5
    # text, given back: whatever is made next in pymalloc's arenas cannot use them)
    release_freed(size)

    outputs = [(name, o)]
    taken = {name}
    for nm, v in wrt_list:
        av = int(adj[v])
        outputs.append((fresh_name(f"{nm}.bar", taken), av if av >= 0 else zero))
    labels = trace.labels.extended(bar_columns(trace.labels, label_of, bar_labels, labels, fold_moves)) if columns \
        else chain(trace.labels, labels)
    return Trace(new, labels, outputs, None, _inputs=trace.inputs, _all_live=True, _columns=cols)


def _labelled(labels) -> bytes:
    """Per primal variable, whether it is labelled (and so its v̄): the constant
    sweep's test, a byte each."""
    if isinstance(labels, Labels):
        return (np.frombuffer(labels.kinds, np.uint8) != NONE).tobytes()
    return bytes(label is not None for label in labels)


def _double_negations_covered(dneg, e_a, groups, neg_t, shared, inst_edge, dead, labels) -> bool:
    """Whether the layout writes the −(−m) of `dneg` as the builder does: the
    negation of G is not one that hash-consing found built or that another edge
    reads as built (the builder makes m, never that negation), the result is not an
    unread copy, and the adjoint is labelled (else the builder's is m itself, no
    copy)."""
    if dead[dneg].any():
        return False
    negs = set(np.flatnonzero(neg_t).tolist()) & shared.keys()
    for t in negs:
        if (~shared[t][0][dneg[dict(groups)[t]]]).any():
            return False
    if negs:
        for _, alias, _ in shared.values():
            j = -1 - alias[(alias < 0) & (alias > _BUILT)]
            if dneg[inst_edge[j]].any():
                return False
    a = e_a[dneg]
    if isinstance(labels, Labels):
        return bool((np.frombuffer(labels.kinds, np.uint8)[a] != NONE).all())
    return all(labels[v] is not None for v in a.tolist())
