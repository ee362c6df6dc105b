"""The reverse sweep of a large scalar trace in bulk: per op kind over NumPy columns.

Where it sits: beside passes/reverse.py (grad_reverse), for the gradient of a
front end's trace of scalars. Today's sweep makes one Builder call per new
instruction (hash-consing, identities); this one records each op kind's partial
ONCE on placeholders (a template: a few instructions over the seed G, the
arguments and the result) and instantiates it for every instruction of that kind
at once: blocks in descending consumer order, positions by a cumsum of block
sizes, argument columns gathered with NumPy, tuples made by C-level maps.

STATUS: wired in (session 35): grad_reverse takes it for a trace of at least
reverse._BULK_FROM instructions (3,000, or 1,000 for a trace of few op kinds: where the two sweeps cross) and
falls back to the per-instruction sweep where this returns None. Its trace is the
per-instruction sweep's on the deep family (10^3-10^5 operations), not yet on text
and SymPy (10^4 text: +0.42% instructions, SymPy +0.54%; 10^5 text +0.37%, SymPy
+0.47%; the extra instructions carry extra v̄ labels), with the same gradient bits:
tests/test_reverse_wired.py holds the wired path to the per-instruction sweep (NumPy
and C kernels, the interpreter), tests/test_reverse_bulk_bits.py on extreme constants
(session 36: the bits were not the same where an adjoint c·(k·y) under- or
overflowed; now the builder's c·G -> (c·k)·y is applied, reverse_bulk_fold.py).

What it does as grad_reverse's builder does: (a) the seed's cascade, the edges out
of constant adjoints (v̄ = 1 and what sums and differences carry of
it), swept in Python in passes/reverse_bulk_consts.py, each partial recorded for
G's value, so 1·v is v, 1 + 1 is 2, what only those read is dropped, and what the
primal has (sin(v) in cos's partial) is the primal's; (b) a partial's instructions
on primal variables alone (cos(v), 2·v), and on a G that names a primal variable
(G = copy of v, G·w = the primal's v·w), hash-consed against the primal's and each
other (_hash_cons); a copy that nothing reads then is dropped (a copy of G, or of
what a hit found: x·(x·(x·x))); (c) the identities that look into an argument (c·(k·v) -> (c·k)·v, an unlabelled
negation pulled out of a product): the kinds are told apart by their arguments' shape and each is
recorded on a placeholder of that shape (_argument_patterns); (d) on negated
adjoints (each adjoint's class, _classes): a first contribution −m, or a copy of a
negated G, and a second c, not a negation, is c − m (the negation or copy
dropped); a later contribution that is a negated G (−x) is old − x; a negated seed
of a negated G, −(−m), is m (a named copy, or old + m), G's class found through
chains of them (they alternate); a negated seed of a G that names m where −m is
built finds that negation (a copy of it; session 36, B3), also where G's own edge
made it and nothing out of G's variable reads it (old − m, or it is laid out for a
first contribution's copy; session 37: 10^6 text declined there); what then reads
nothing is dropped (G's negation: the constant sweep's, a chain's); (e)
c·G -> (c·k)·y where G names k·y, c a power of two (the one identity that changes
rounding: k·y under- or overflowing), on the instructions once written
(passes/reverse_bulk_fold.py: a fold may feed the next; G, its copies and an unread
constant dropped; c·k put before its first reader; the product found built reused).
What it does not yet (benchmarks/bench_reverse_bulk.py --why counts it; some
cases in tests/test_reverse_bulk.py's comments): the
sums where one side is a constant sweep's and the other a regular edge's (the
constant sweep reads a regular total as opaque); hash-consing of instructions that
read a G naming a sweep variable (x·G twice, G copies of one variable); new
constants of the regular edges' templates come right after the primal
(grad_reverse makes them where first read). What it keeps:
every contribution is the same operations on the same values, summed into each
adjoint in the same order (consumers descending, last argument first; `old + (−m)`
written `old − m`, as grad_reverse writes it), so the gradient has the same bits at
every point (the identities are exact but for a NaN's sign bit, and c·(k·y) is
folded as the builder folds it); every adjoint carries grad_reverse's v̄ label.
Returns None where it does not cover a trace (the caller takes grad_reverse):
shapes, options, an op without scalar partials, a partial that builds something
other than scalar operations, inputs not first, dead code, an
output that is also an argument, an adjoint that flows nowhere (x**0's: a
structural zero), a primal that grad_reverse's replay would change (c·(k·v) folded:
its bits are not the primal's as written, which this keeps; reverse_bulk_fold.replay_folds),
a fold whose c·k is −1 or whose y names a negation the builder would pull out,
a −(−m) whose negation hash-consing found or whose adjoint is not labelled, a
negation found built that is not laid out (reverse_bulk_layout), a where() mask
that the builder may find built, or a union's flag on a constant adjoint or that
the primal may hold (reverse_bulk_masks.py).

where() masks (session of 2026-12-06): the edges that leave a where's branch
(reverse_masks.where_exits, asked once, with this sweep's active flags) get
templates of their own, the partial's then the mask's wheres, their conditions a
column per edge (passes/reverse_bulk_masks.py); the constant sweep records them
for G's value and finds a mask's where where the builder finds it. Before, such a
trace went to the per-instruction sweep (where_exits asked twice). grad_reverse,
where-heavy formulas (sums of where(x_i > 0, sqrt(x_i)·x_j + c, ...), nested and
log/arcsin branches), CPU medians of 5, three alternating processes old/new, load
9-10 (ratios compressed): 4,223 instructions 141-153 -> 88-97 ms, 42,117 1,631-1,722
-> 942-984 ms; 533 (below reverse._BULK_FROM) unchanged. Of the new figure,
where_exits' region analysis is ~half (46 of 95 ms, 700 of 1,054 ms). Without a
where, as before (text 10^4, 10^5, deep 10^4 within noise; bench sha1s unchanged).
Later that session the analysis was made linear (reverse_masks.py: ~0.2-0.3x its
time, benchmarks/bench_where.py), and asked through reverse.exits_of: where this
sweep declines after asking, grad_reverse's per-instruction sweep takes its answer.
A union of more than _NESTED regions declined here (chained piecewise models, from
about their 10th statement); session of 2026-12-06 night: its flag's instructions
are made once, where the builder makes them (reverse_bulk_masks.Flags), the masked
templates read the flag as a condition column; the per-instruction sweep's traces
(tests/test_bulk_where_unions.py). bench_bulk_where.py (load 7-11: compressed),
bulk against per instruction: 2,966 instructions 1.09 -> 0.85, 27,190 1.13 -> 0.62,
247,132 1.02 -> 0.67; at 10^5 where_exits is ~1/3 of the rest.

Distinct constants (issue 14, session of 2026-12-06 evening): a constant argument's
value was part of its instruction's kind, so a formula whose constants are all
distinct (fitted coefficients, rate constants) had about a kind per instruction, a
template recorded (~60 µs) and laid out for each: the bulk sweep was 2-5x SLOWER
than the per-instruction sweep there. A constant the builder cannot tell from
others of its class (finite, moderate, not an integer nor a power of two: no
identity's test on a value holds) is now keyed by its class and sign
(passes/reverse_bulk_generic.py): one kind and one template, checked on two
unrelated representatives, reading each instruction's own constant; where the
template depends on the value or a constant coincides with one the template holds,
those instructions are keyed by value as before. x**c's c − 1 (session of
2026-12-06 night): the template reads it of each instruction's own c (ref ("d", k):
reverse_bulk_generic.MinusConstants makes the constants c − 1 where keying by value
makes them, the masked templates' too): distinct exponents were 3.9 / 5.5 / 2.3x
the per-instruction sweep's time at 3,098 / 27,034 / 191,420 instructions, now
0.82 / 0.56 / 0.44 (bench_bulk_where.py). The trace is the
one keyed by value, instruction for instruction (tests/test_bulk_consts.py holds
the two equal; the templates are put in the order keyed by value gives them, so new
constants come in the same order). Figures: benchmarks/bench_bulk_consts.py.

Cost: the constant adjoints' Python sweep takes a quarter of the text family's
edges: at 10^5 operations the pass is ~5.3-5.8 µs an operation against the
per-instruction sweep's 8.4-9.5 (bench_frontend.py's grad stage, CPU, session 35,
alternating runs, load 3-9; without (a) and (b) it was 2.6 µs); on deep 2.5-2.9
against 6.8-7.3; the two are as fast at ~1,150 instructions (text, SymPy).
Session 36 (bench_frontend.py, CPU, two alternating runs, load 3): text 10^5
5.11-5.13 -> 4.74-4.95, SymPy 4.88-5.53 -> 4.42-4.71, deep 2.26-2.27 -> 2.21-2.37;
the constant sweep's Python loop ~30% less (no Label made an edge), and no np.unique
without an index (its first call in a process imported numpy.ma: 8-18 ms, ~1 µs an
operation at 10^4). benchmarks/bench_reverse_bulk.py --why counts what grad_reverse
does differently. Session 38: a call's fixed cost (its work per kind and template,
NumPy calls on small arrays: ~3.0 ms warm at 42 instructions of text, ~2.0 on deep)
cut to ~2.4 and ~1.8: the edges found by one mask over (instruction, argument), not
a few calls per kind and edge and a sort; what closes each contribution (copy, add,
sub) chosen over all the edges at once, and the template instructions put a batch
per arity (NewInstrs.defer); no np.isin or np.add.at (~100 µs a call); the plain
kinds' edges kept by op (_edges_of). It is still ~4 ms more than the per-instruction
sweep's at 10^3 operations in a fresh process, which is faster there (text, SymPy):
the two are as fast at ~3,000 (text) and ~2,000 (SymPy) instructions, ~750 on deep.
For 10^6 operations (where the sweep grew ~15% faster than linear): the
stable argsorts of int keys (instructions by kind, edges by argument and template)
linear or one int64 sort (reverse_bulk_order.py: the edges by argument 67 -> ~20 ms
at 10^6 text); the fold's drop of what nothing reads counted from a sorted copy
of the arguments for the few variables asked, its renumbering in int32 without
temporary columns (reverse_bulk_fold._Readers: np.bincount over every variable
was ~0.25 µs an operation at 10^6, 0.1 at 10^5: a cache miss each); the primal's
hash-consing keys made once for both rounds, from the op kinds (_PrimalKeys); ops
and kinds read off the columns' codes (_op_kinds), not a list of ops; the constant
sweep's primal table keyed by ints; its adjoints by variable not kept in a dict
(ConstantSweep.finals). Figures (CPU, alternating with the old code, load 2-4):
bench_frontend.py's bulk sweep at 10^6 text 4.42-4.49 -> 3.52-3.71 µs an operation
(its system time 0.58-0.70 -> 0.31-0.46), 10^4 text 3.35-3.79 -> 2.95-3.07, deep
10^3 3.72-4.18 -> 3.57-3.76 (fresh processes); the sweep alone on a fixed primal
10^5 text 3.88-3.94 -> 3.20-3.48.

Labels: as columns (trace/labels.py) where the primal's are, the adjoints' v̄_k
read off the primal's columns (reverse_bulk_write.bar_columns), so no Label object
is made for them, here or in naming; the constant sweep's items too (session 36:
each names its primal variable in label_of, a byte per variable says whether it is
labelled: no Label made an edge, ~0.2 µs an operation at 10^5 text).

Memory: int32 columns (int8 argument numbers), arrays dropped once used, the
constant sweep's items dropped before the regular edges' are made, and these put as
columns (15 bytes an instruction) and made as tuples at the end in position order
(NewInstrs.made, now column_instrs.ColumnInstrs.made: the later stages read them
1.7x faster than tuples made a kind at a time; the bench's peak RSS +25-35 bytes an
operation for it at 10^5 text, +14 at 10^6). Session 34, before the columns: the
pass's traced peak at 10^5 text was below grad_reverse's (723 against 812 bytes an
operation). Session 35 (wave 2): the v̄ labels made only where asked for
(_BarLabels: a list of them all was ~120 bytes an operation), the primal's columns
taken (take_columns) not read again, what only the write-out reads freed before the
tuples are made, and these made a span at a time: the pass's traced peak at 10^5
text 1,103 -> 815 bytes an operation (the primal's 190 included); the pipeline's
peak is now generate's (assign_names), not this pass's. Session 37: the pass's peak
RSS was its freed arrays' holes in the heap (~300 bytes an operation, resident) plus
the tuples' pymalloc arenas; the holes are given back before the tuples are made
(heap_release.py): bench_memory_map's high-water at 10^5 text 1,079 -> 923.

Columns: the gradient carries its Columns (trace/columns.py: the primal's, taken from
it, then the new instructions' from the arrays put; NewInstrs.columns), so generate
does not read 2.6 tuples an operation again for their op codes and arguments (cache
misses at 10^6). The tuples are made from them and the argument rows dropped first,
so the pass's peak holds one copy. Measured (bench_frontend.py, CPU medians of 3
alternating runs, load 2-4, with generate taking the columns off once read):
generate 10^6 text 2.13 -> 1.65 µs an operation, 10^5 text 1.76 -> 1.26, deep
1.46 -> 1.07, SymPy 1.69 -> 1.22; this pass +0.02-0.15; peak RSS within noise
(held through generate, the columns were +25-50 bytes an operation).

No tuples: the gradient holds its new instructions as those columns, their tuples
made only when something asks for trace.instrs (trace/column_instrs.py); generate
and load ask for none (its length and a few items: ir_trace.instructions). Measured
(bench_frontend, medians of 4-5 alternating fresh runs at 10^4, 2-3 above; load
1.5-4): bytes/op at 10^4 deep 1,079 -> 690, SymPy 841 -> 604, text 1,176 -> 945;
CPU µs an operation at 10^4 deep 4.35 -> 3.71, SymPy 7.21 -> 6.63, text 6.96 ->
6.37; 10^5 text 7.34 -> 6.44; 10^6 text 9.00 -> 8.40 (844 -> 730 bytes/op). (Text:
with numpy_shares.shared_exps reading instructions(trace) for its sigmoids; where it
reads trace.instrs, the tuples are made there and text is as before.) Output unchanged.

The modules: this one is the driver (the checks, each instruction's kind, the
edges in sweep order); passes/reverse_bulk_templates.py records the partials
(_record, _argument_patterns, _edges_of); passes/reverse_bulk_layout.py places the
new instructions (_lay_out) and passes/reverse_bulk_write.py makes them;
passes/reverse_bulk_consts.py sweeps the constant adjoints;
passes/reverse_bulk_share.py finds what is already built (_hash_cons);
passes/reverse_bulk_negations.py the identities on negations (_negation_classes);
passes/reverse_bulk_fold.py folds c·G on the written instructions (fold_scaled).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Optional, Sequence

import numpy as np

from ..trace.column_instrs import attributed, shaped
from ..trace.columns import OP_NAMES, UNKNOWN, columns, take_columns
from ..trace.ir import Trace, gc_paused
from ..trace.ir_trace import instructions
from ..trace.labels import Labels
from .replay import derived, derived_labels, labels_of, scalar_output, wrt_vars
from .reverse_bulk_fold import replay_folds
from . import reverse_bulk_generic as _generic
from .reverse_bulk_generic import (MinusConstants, by_value_order, class_codes, classes, coinciding, combined_codes,
                                   generic_edges, new_constants, pattern_codes, reads_minus)
from .reverse_bulk_layout import _lay_out
from .reverse_bulk_masks import mask_edges
from .reverse_bulk_order import stable_order
from .reverse_bulk_share import _MAX_BLOCK, _active
from .reverse_bulk_templates import _argument_patterns, _edges_of, _Unsupported
from .reverse import exits_of

_OP_OF = itemgetter(0)
_LEAVES = frozenset(("input", "const"))


def _unlabelled(trace: Trace, start: int) -> bool:
    """Whether an operation (a variable from `start`, past the inputs; not a constant,
    which has no label) has no label: a trace built by hand (the front ends label
    every operation). The layout names each adjoint after its primal's label; on such
    traces it raised KeyError, or made a trace that read a variable before making it
    (tests/test_reverse_unlabelled.py)."""
    labels, instrs = trace.labels, instructions(trace)
    if isinstance(labels, Labels):
        at = (np.flatnonzero(~labels.named()[start:]) + start).tolist()
    else:
        at = [i for i in range(start, len(labels)) if labels[i] is None]
    return any(instrs[i][0] != "const" for i in at)


@gc_paused()
def grad_reverse_bulk(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Optional[Trace]:
    """The gradient of a single-output scalar trace, swept in bulk, or None where
    this sweep does not cover `trace` (see the module's docstring for what it
    returns: grad_reverse's values and labels, not its instructions)."""
    # (a primal held as columns (a front end's) is read as columns and single items:
    # column_instrs.ColumnInstrs; its tuples are not made)
    instrs = instructions(trace)
    if len(trace.outputs) != 1 or instrs[trace.outputs[0][1]].shape:
        scalar_output(trace)   # (grad_reverse's errors, raised)
    (name, o), = trace.outputs
    wrt_list = wrt_vars(trace, wrt)
    n = len(instrs)
    if not trace._all_live or shaped(instrs):
        return None
    inputs = trace.inputs
    if [v for _, v in inputs] != list(range(len(inputs))):
        return None   # (finish would put them first: another numbering)
    if _unlabelled(trace, len(inputs)):
        return None   # (see _unlabelled)
    # (ops and argument counts read off the columns: the front end's, where it made them)
    made = columns(trace)
    if int(made.counts.max(initial=0)) > 3:
        return None   # (columns for up to three arguments: where(c, x, y))
    for i in attributed(instrs):
        if instrs[i][0] not in _LEAVES:
            return None
    op_id, kind = _op_kinds(made.code, instrs)
    taken = labels_of(trace)
    if taken:
        # a derived trace (a gradient differentiated again): its adjoints' labels must
        # be tagged where the trace holds them already, and its sums of negations and
        # constants meet identities this sweep does not reproduce yet (+10-12%
        # instructions on the gradients of random_program(300)): grad_reverse's
        return None
    bar_labels = _BarLabels(trace.labels, taken) if isinstance(trace.labels, Labels) \
        else derived_labels(trace.labels, "bar", None, taken)
    # positions are int32: n primal instructions, then at most 3 edges an instruction of
    # at most _MAX_BLOCK + 1 instructions each, and a few constants (past ~4·10^7: None)
    if n * (3 * _MAX_BLOCK + 8) >= 2 ** 31:
        return None
    # argument k of each instruction (-1: none), a row each, from the flat list of arguments
    # (the front end's columns where it made them: read, no longer kept on the primal,
    # and handed on as the start of the gradient's (NewInstrs.columns); a fallback to
    # grad_reverse makes them again)
    primal_columns = take_columns(trace)   # (the columns read above; the start of the gradient's)
    counts, flat = primal_columns.counts.astype(np.int32), primal_columns.flat
    starts = np.cumsum(counts, dtype=np.int32) - counts
    arg_rows = np.full((3, n), -1, np.int32)
    for k in range(3):
        has = counts > k
        arg_rows[k, has] = flat[starts[has] + k]
    del counts, flat, starts
    cols = list(arg_rows)

    # -- each instruction's kind: its op, and the values of constant arguments (a
    # partial may look at them: x**2); the edges of a kind, recorded once ----------
    # (each constant's value read once; its key is _const_key's, repr(float(value)))
    at = np.flatnonzero(kind == op_id["const"]).tolist() if "const" in op_id else []
    values = [instrs[i].value for i in at]
    const_values = dict(zip(at, values))
    cval = dict(zip(at, map(repr, map(float, values))))
    del at, values
    op_kind = kind.copy()   # (kind is refined below by the arguments' patterns)
    is_const = np.zeros(n + 1, bool)   # (index -1: no argument)
    if cval:
        is_const[np.fromiter(cval, np.intp, len(cval))] = True
    pattern_of, pattern_key = _argument_patterns(instrs, trace.labels, kind, op_id, cols, is_const, const_values)
    if replay_folds(op_kind, op_id, cols, is_const, const_values, pattern_of):
        return None   # (grad_reverse's replay changes the primal: reverse_bulk_fold.replay_folds)
    is_special = is_const.copy()
    if pattern_of:
        is_special[np.fromiter(pattern_of, np.intp, len(pattern_of))] = True
    pattern_key.update(cval)
    products = {v: e for v, e in pattern_of.items() if e[0] == "mul"}   # (c·v: its class, if c's is generic)
    pattern_of.update(const_values)
    with_const = np.flatnonzero(is_special[cols[0]] | is_special[cols[1]] | is_special[cols[2]])
    del is_special
    n_kinds = len(op_id)
    # a constant the builder cannot tell from others of its class (reverse_bulk_generic.py)
    # is keyed by its class, not its value: a kind, and a template, for all such
    # constants; not where two constants of one value would be two variables
    class_of_var = classes(const_values, products) \
        if _generic.ENABLED and len(set(cval.values())) == len(cval) else {}
    exact = None   # (each of with_const's instructions' code keyed by value, where classes are)
    if len(with_const):
        # an instruction with such arguments: a kind per (op, its arguments' patterns)
        pcode, radix = pattern_codes(pattern_key, n)
        combined = exact = combined_codes(op_kind, with_const, cols, pcode, radix)
        if class_of_var:
            pcode, radix = class_codes(pcode, radix, class_of_var)
            combined = combined_codes(op_kind, with_const, cols, pcode, radix)
        else:
            exact = None
        del pcode
        found, inverse = np.unique(combined, return_inverse=True)
        kind[with_const] = n_kinds + inverse
        n_kinds += len(found)
        del combined, found, inverse
    templates: list = []
    specs: list = []   # template id -> (op, argument number, constant arguments[, exact patterns])
    minus = None   # (the constants c − 1 that a generic pow's template reads: MinusConstants)
    active_np = _active(trace, wrt_list, n, cols, is_const)
    # the edges that leave a where()'s branch, masked by its condition (reverse_masks.py;
    # laid out here: reverse_bulk_masks.py)
    exits = exits_of(trace, instrs, active_np.tobytes(), (o,)) if "where" in op_id else None
    kind_edges: dict = {}   # kind -> its edges ((argument, template), ...)
    zeros = False   # a structural zero somewhere: then not every active variable is reached
    try:
        by_kind = stable_order(kind)   # (instructions grouped by kind, in order)
        bounds = np.searchsorted(kind[by_kind], np.arange(n_kinds + 1)).tolist()
        redo = []   # instructions of generic kinds to key by their constants' values after all
        for k in range(n_kinds):
            if bounds[k] == bounds[k + 1]:
                continue
            first = int(by_kind[bounds[k]])
            op, first_args = instrs[first][0], instrs[first][1]
            if op in _LEAVES:
                continue
            edges = None
            if class_of_var and any(a in class_of_var for a in first_args):
                got = generic_edges(op, first_args, class_of_var, pattern_of, templates, specs)
                if got is None:   # (not the same template for every constant: by value)
                    redo.append(by_kind[bounds[k]:bounds[k + 1]])
                    continue
                edges, positions, fixed = got
                members = by_kind[bounds[k]:bounds[k + 1]]
                clash = coinciding(members, positions, fixed, cols, arg_rows, const_values, n,
                                   any(reads_minus(templates[t]) for _, t in edges))
                if clash is not None:
                    redo.append(members[clash])
            if edges is None:
                edges = _edges_of(op, first_args, pattern_of, templates, specs)
            if edges is False or any(len(templates[t][0]) > _MAX_BLOCK for _, t in edges):
                return None
            zeros |= len(edges) < len(first_args)
            kind_edges[k] = edges
        if redo:
            redo = np.sort(np.concatenate(redo))
            found, inverse = np.unique(exact[np.searchsorted(with_const, redo)], return_inverse=True)
            kind[redo] = n_kinds + inverse
            n_kinds += len(found)
            for first in np.unique(kind[redo], return_index=True)[1].tolist():
                first = int(redo[first])
                op, first_args = instrs[first][0], instrs[first][1]
                edges = _edges_of(op, first_args, pattern_of, templates, specs)
                if edges is False or any(len(templates[t][0]) > _MAX_BLOCK for _, t in edges):
                    return None
                zeros |= len(edges) < len(first_args)
                kind_edges[int(kind[first])] = edges
    except _Unsupported:
        return None
    del by_kind, redo
    if class_of_var and new_constants(templates, cval):
        # the templates in the order keyed by value gives them (the layout puts new
        # constants in the order its templates first hold them)
        templates, specs, kind_edges, ranks = by_value_order(kind, with_const, exact, len(op_id), templates, specs,
                                                              kind_edges)
        if any(map(reads_minus, templates)):   # (x**c's c − 1, read of each instruction's c)
            minus = MinusConstants(ranks, with_const, exact, const_values)
        del ranks
    del exact
    edge_t = np.full((n_kinds + 1, 3), -1, np.int32)   # kind, argument -> its edge's template (-1: none)
    for k, edges in kind_edges.items():
        for j, t in edges:
            edge_t[k, j] = t
    del kind_edges
    # the edges, in the sweep's order: consumers descending, last argument first; an
    # edge where an active instruction's kind has one to an active argument: a mask
    # of (instruction, argument) read backwards, so no sort and a few NumPy calls
    # whatever the number of kinds (they were a few per kind and edge, then a sort of
    # the edges). (int8 argument numbers, int32 templates)
    has = np.empty((n, 3), bool)
    for j in range(3):
        has[:, j] = (edge_t[kind, j] >= 0) & active_np & active_np[cols[j]]
    flat = np.flatnonzero(has.ravel())[::-1]
    del has
    e_i, e_j = flat // 3, (flat % 3).astype(np.int8)
    del flat
    e_t = edge_t[kind[e_i], e_j]
    active_np_o = bool(active_np[o])
    del kind, active_np, edge_t
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
        if (ends & ~flows & (op_kind != op_id.get("input", -1))).any():
            return None
    elif not active_np_o:
        e_i, e_j, e_t = e_i[:0], e_j[:0], e_t[:0]
    e_a = arg_rows[e_j, e_i]
    masks = None
    if exits:
        masks = mask_edges(exits, e_i, e_j, e_t, templates, specs, is_const, None if minus is None else minus.code_of)
        if masks is None:
            return None   # (a mask the builder might find built: reverse_bulk_masks.py)
        if minus is not None:
            minus.masked(masks)
    del e_j, exits   # (not read by the layout: not held while it makes the new instructions)
    if (e_a == o).any():
        return None   # (the output is also an argument: its seed and contributions summed; not laid out)
    return _lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, cval, cols,
                   "copy" in op_id, op_kind, op_id, primal_columns, masks, minus)


def _op_kinds(code: np.ndarray, instrs) -> tuple:
    """({op: its kind}, each instruction's kind (int32)): the kinds numbered in the
    order the ops first come in the trace, from the columns' op codes (a C-level
    find per op), or from the instructions where the columns do not know an op."""
    present = np.flatnonzero(np.bincount(code, minlength=256)).tolist()
    if UNKNOWN in present:   # (an op registered after the columns' table was made)
        ops = list(map(_OP_OF, instrs))
        op_id = {op: k for k, op in enumerate(dict.fromkeys(ops))}
        return op_id, np.fromiter(map(op_id.__getitem__, ops), np.int32, len(ops))
    found = code.tobytes().find
    present.sort(key=lambda c: found(bytes((c,))))
    of_code = np.zeros(256, np.int32)
    of_code[present] = np.arange(len(present), dtype=np.int32)
    return {OP_NAMES[c]: k for k, c in enumerate(present)}, of_code[code]


def _reached_edges(o: int, n: int, e_i: list, e_a: list) -> np.ndarray:
    """Which edges (in sweep order) leave a variable that has an adjoint."""
    reached = bytearray(n)
    reached[o] = 1
    keep = bytearray(len(e_i))
    for k, (i, a) in enumerate(zip(e_i, e_a)):
        if reached[i]:
            keep[k] = reached[a] = 1
    return np.frombuffer(keep, np.uint8).astype(bool)


class _BarLabels:
    """grad_reverse's v̄ labels (derived_labels(labels, "bar", None, taken)), each
    made when asked for: with the labels as columns the layout asks only for the few
    that are not read off the primal's columns (bar_columns: the inputs' adjoints,
    the constant sweep's items); a list of them all was ~120 bytes an operation at
    the pass's peak (10^5 text)."""

    __slots__ = ("labels", "taken")

    def __init__(self, labels: Labels, taken: set):
        self.labels, self.taken = labels, taken

    def __getitem__(self, i: int):
        return derived(self.labels[i], "bar", None, self.taken)
