"""Reverse mode: the adjoint sweep, and the VJP and gradient passes built on it.

One forward sweep (the primal trace, replayed) and one reverse sweep over it:
each operation's adjoint v̄_i is pushed to its arguments through the op table's
VJP rules (for an elementwise op, its partials: v̄_j += ∂φ_i/∂v_j · v̄_i), summed
over outgoing edges. Nothing is
re-evaluated, and the trace grows linearly. Only *active* variables (those that
depend on a `wrt` input) receive adjoints. A contribution that leaves a where()'s
branch is masked by its condition, so that the branch not taken adds 0, not 0·NaN
(reverse_masks.py); the adjoint of an index, zero outside its key, is pushed
through elementwise ops at the keyed lanes only (reverse_index.py), and through ops
that move lanes (transpose, reshape, matmul, reductions over an axis, ...) as keys
of their arguments (reverse_index_moves.py). grad_reverse
sweeps a front end's trace of _BULK_FROM instructions or more in bulk where it
can (reverse_bulk.py: the same operations in the same summation order, with the
one identity that changes rounding, c·(k·y) -> (c·k)·y, applied as the builder
applies it, so the same gradient bits; not taken where the replay would change
the primal that way).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from operator import itemgetter
from typing import Collection, Mapping, Optional, Sequence

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC, negated_seed, seed
from ..trace.columns import UNKNOWN, kept
from ..trace.finish import let_go
from ..trace.identities import CONST
from ..trace.ir import _LEAF_OR_COPY, Builder, Trace, gc_paused
from .replay import (derived, derived_labels, fresh_name, labels_of, replay, scalar_output, seed_input, wrt_vars,
                     zeros_like)
from . import reverse_index as _ri
from .reverse_masks import masked_edges, where_exits
from .reverse_labels import as_columns, bar_markers, swept_labels


class _Asked(threading.local):
    """where_exits' answer kept for a second asker of the same trace within
    asked_once: (the trace, (its active flags, its seeded variables), the answer)."""
    on = False
    last: Optional[tuple] = None


_ASKED = _Asked()


@contextmanager
def asked_once():
    """Within it (grad_reverse: the bulk sweep asks, declines, and adjoint_sweep asks
    again), exits_of asked again of the same trace, active flags and seeds gives its
    first answer; the answer is dropped at its end."""
    outer = _ASKED.on
    _ASKED.on = True
    try:
        yield
    finally:
        _ASKED.on = outer
        if not outer:
            _ASKED.last = None


def exits_of(trace: Trace, instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> Optional[dict]:
    """reverse_masks.where_exits(instrs, active, seeded) for `trace` (its instructions
    `instrs`), within asked_once its first answer where asked again."""
    if not _ASKED.on:
        return where_exits(instrs, active, seeded)
    key = (bytes(active), frozenset(seeded))
    last = _ASKED.last
    if last is not None and last[0] is trace and last[1] == key:
        return last[2]
    _ASKED.last = None   # (not held while the new answer is made)
    got = where_exits(instrs, active, seeded)
    _ASKED.last = (trace, key, got)
    return got


def active_set(trace: Trace, seeds: Sequence[int]) -> bytearray:
    active = bytearray(len(trace.instrs))
    for v in seeds:
        active[v] = 1
    for i, args in enumerate(map(_ARGS_OF, trace.instrs)):
        for a in args:   # (a loop that stops at the first active argument: half any(map(...))'s time)
            if active[a]:
                active[i] = 1
                break
    return active


def _active_loaded(b: Builder, trace: Trace, seeds: Sequence[int]) -> Optional[bytearray]:
    """active_set(trace, seeds) from the builder's flags, where `seeds` are all the
    inputs and `trace` is loaded in `b` as it is (builder_load): then the active
    variables are all but the constants and their copies (identities.CONST), since
    the replay would have folded an operation on constants only (and load declined).
    None otherwise."""
    n = len(trace.instrs)
    if b._loaded != n or len(set(seeds)) != len(trace.inputs):
        return None
    return b._flags[:n].translate(_ACTIVE_OF_FLAGS)


_ACTIVE_OF_FLAGS = bytes(0 if f & CONST else 1 for f in range(256))


def adjoint_sweep(b: Builder, trace: Trace, vmap: Sequence[int], cotangents: Mapping[int, int],
                  active: bytearray, tag: Optional[str] = None, taken: Optional[set] = None,
                  named: Optional[dict] = None, bar_labels: Optional[list] = None) -> list[Optional[int]]:
    """Adjoints of every active variable of `trace` (replayed into `b` as `vmap`),
    given cotangents of some variables (trace var -> builder var); `taken`: the
    trace's `labels_of`, if the caller has it. `named`, if given, gets builder var
    -> trace var v for each v̄ label given; `bar_labels`: the v̄ labels to give
    (default: derived_labels'; see reverse_labels.py)."""
    instrs = trace.instrs
    adj: list[Optional[int]] = [None] * len(instrs)
    # v -> v̄'s label, for all variables at once (most receive an adjoint)
    if bar_labels is None:
        bar_labels = derived_labels(trace.labels, "bar", tag, labels_of(trace) if taken is None else taken)
    add, sub, neg, name = b.add, b.sub, b.neg, b.name
    built, built_labels = b.instrs, b.labels
    if named is None:
        named = {}

    for v, ct in cotangents.items():
        if adj[v] is None:
            adj[v] = ct
        else:
            mark = len(built)
            adj[v] = name(add(adj[v], ct), bar_labels[v], mark)
            if bar_labels[v] is not None:
                named[adj[v]] = v
    # In a trace of scalars an elementwise op's VJP is its partial (nothing to sum
    # down to a shape): called directly, a call and two shape lookups less per edge.
    scalar = _SCALAR_SWEEP and not any(map(_SHAPE_OF, instrs))
    # the edges that leave a where()'s branch, masked by its condition (reverse_masks.py)
    exits = exits_of(trace, instrs, active, cotangents)
    # op name -> its edges (see _edges), once per op kind
    rules: dict = {}
    vget = vmap.__getitem__
    # A trace replayed as it was (a front end's: nothing left to simplify) has the same
    # numbers in the builder: then a partial takes the instruction's own arguments.
    same = scalar and len(vmap) == len(instrs) and vmap == list(range(len(instrs)))
    # trace var -> its adjoint's terms where an index's adjoint is kept sparse
    # (reverse_index.py): tensor traces that index only
    sparse = None if scalar or "index" not in map(_OP_OF, instrs) else \
        _ri.IndexTerms(b, instrs, vmap, adj, active, bar_labels, named)
    for i in range(len(instrs) - 1, -1, -1):
        g = adj[i]
        if g is None and (sparse is None or i not in sparse.terms):
            continue
        ins = instrs[i]
        edges = rules.get(ins[0])
        if edges is None:
            op = _ops.OPS[ins[0]]
            edges = _edges(op, scalar, len(ins[1]))
            if op.arity != VARIADIC:
                rules[ins[0]] = edges
        if exits is not None and i in exits:
            edges = masked_edges(b, edges, exits[i], vmap, ins[0])
        if sparse is not None and (ins[0] == "index" or i in sparse.terms):
            g = sparse.step(i, g, ins, edges, None if exits is None else exits.get(i))
            if g is None:
                continue
        if not edges:
            continue
        arg_vars = ins[1]
        call_args = None
        for j, partial, vjp in edges:
            a = arg_vars[j]
            if not active[a]:
                continue
            old = adj[a]
            if partial is seed:   # v̄_a += v̄_i, with no call
                if old is None:   # v̄_a = v̄_i: a copy, named
                    label = bar_labels[a]
                    if label is None:
                        adj[a] = g
                    else:
                        adj[a] = c = name(g, label)
                        named[c] = a
                    continue
                mark = len(built)   # b.mark()
                total = add(old, g)
            else:
                mark = len(built)
                if partial is negated_seed:
                    c = neg(g)
                else:
                    if vjp is None:   # a partial's (b, seed, *arguments, out)
                        # (positional: a call through *args makes a tuple and leaves the
                        # interpreter's inlined call for a C-level one, ~70 ns of a partial)
                        if not same:
                            if call_args is None:   # (once an instruction)
                                call_args = (b, g, *map(vget, arg_vars), vmap[i])
                            c = partial(*call_args)
                        elif len(arg_vars) == 2:
                            c = partial(b, g, arg_vars[0], arg_vars[1], i)
                        elif len(arg_vars) == 1:
                            c = partial(b, g, arg_vars[0], i)
                        else:
                            c = partial(b, g, *arg_vars, i)
                    else:
                        args = arg_vars if same else list(map(vget, arg_vars))
                        c = vjp(b, j, g, args, vmap[i], dict(ins.attrs) if ins.attrs else {})
                    if c is None:  # a rule may find a structural zero (x**0)
                        continue
                if old is None:
                    total = c
                elif scalar and built[c][0] == "neg":
                    # old + (-m) is what the builder makes old - m (identities._id_add; if
                    # old is the constant -0.0, both give -m): without the detour
                    total = sub(old, built[c][1][0])
                else:
                    total = add(old, c)
            # named v̄_a
            label = bar_labels[a]
            if label is None:
                adj[a] = total
            elif total >= mark and built_labels[total] is None and built[total][0] not in _LEAF_OR_COPY:
                built_labels[total] = label   # name(total, label, mark) of a fresh variable
                adj[a] = total
                named[total] = a
            else:
                adj[a] = total = name(total, label, mark)
                named[total] = a
    return adj


_OP_OF, _ARGS_OF, _SHAPE_OF = itemgetter(0), itemgetter(1), itemgetter(3)   # an instruction's op, arguments, shape
# Whether a trace of scalars takes the partials directly (tests turn it off to check
# that the general path, through each op's VJP, builds the same trace).
_SCALAR_SWEEP = True


def _edges(op, scalar: bool, n_args: int) -> tuple:
    """An op's edges for adjoint_sweep: (argument number, partial, VJP) for each
    argument an adjoint flows to, last first (this reproduces the order of the
    published tables). On scalars an elementwise op's edge has its partial and no VJP
    (a None partial, a structural zero, has no edge; `seed` and `negated_seed` are
    applied without a call); otherwise every argument has an edge through the VJP.
    Kept for the process by op (an OpDef is frozen; one the table replaces is another
    object): a sweep asks once per op kind, ~1.5 µs each, ~20 µs of a gradient of text."""
    key = (id(op), scalar, n_args)
    known = _EDGES.get(key)
    if known is not None and known[0] is op:   # (the entry holds its op: the id is not reused)
        return known[1]
    if op.is_leaf:
        edges = ()
    else:
        partials = getattr(op.vjp, "partials", None) if scalar else None
        if partials is None:
            edges = tuple((j, None, op.vjp) for j in range(n_args - 1, -1, -1))
        else:
            edges = tuple((j, p, None) for j, p in reversed(list(enumerate(partials))) if p is not None)
    if len(_EDGES) < _MAX_EDGES:
        _EDGES[key] = (op, edges)
    return edges


_EDGES: dict = {}     # (id(op), scalar, number of arguments) -> (op, its edges)
_MAX_EDGES = 1024     # (variadic ops: an entry per number of arguments)


@gc_paused()
def vjp(trace: Trace, wrt: Optional[Sequence[str]] = None, *, seeds: Optional[Mapping[str, float]] = None) -> Trace:
    """Trace of (outputs, adjoints of the `wrt` inputs) from (inputs, output cotangents).

    Cotangent inputs are named `y.bar` and adjoint outputs `x.bar`. With `seeds`
    ({output name: constant}) a cotangent is that constant instead of an input —
    `seeds={"y": 1.0}` gives the gradient."""
    wrt_list = wrt_vars(trace, wrt)
    b = Builder(pull_negations=True)
    # From _COLUMNS_FROM instructions the VJP keeps its columns and holds its new
    # instructions as them (finish._held_as_columns: no new tuples; generate reads
    # the columns), those of a trace loaded as it is (builder_load) not read again.
    keep_columns = len(trace) >= _COLUMNS_FROM
    loaded_columns = kept(trace) if keep_columns else None   # (before the load takes them)
    vmap = replay(b, trace)
    if loaded_columns is not None and b._loaded == len(loaded_columns.code):
        b._loaded_columns = loaded_columns
    if keep_columns:
        b.plain_tuples()   # (the finish holds what follows as columns)
    cotangents: dict[int, int] = {}
    taken = labels_of(trace)
    # builder var -> trace var v, for each v̄ label given: the labels as columns (reverse_labels.py)
    named: Optional[dict] = {} if as_columns(b, trace, taken) else None
    for name, v in trace.outputs:
        if seeds is not None and name in seeds:
            label = derived(trace.labels[v], "bar", taken=taken)
            ct = b.name(b.const(seeds[name], trace.instrs[v].shape), label)
            if named is not None and label is not None:
                named[ct] = v
        else:
            ct = seed_input(b, trace, name, v, "bar", taken)
            named = None   # (x.bar's label, not v̄'s)
        if v in cotangents:
            ct = b.add(cotangents[v], ct)
        cotangents[v] = ct
    seeds = [v for _, v in wrt_list]
    active = _active_loaded(b, trace, seeds)
    if active is None:
        active = active_set(trace, seeds)
    markers = None if named is None else bar_markers(trace)
    adj = adjoint_sweep(b, trace, vmap, cotangents, active, taken=taken, named=named,
                        bar_labels=None if markers is None else markers[0])
    outputs = [(name, vmap[v]) for name, v in trace.outputs]
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{name}.bar", taken), adj[v] if adj[v] is not None else zeros_like(b, trace, v, vmap))
                for name, v in wrt_list]
    b.release()
    # last: the sweep's tuples dropped as the trace's are made (text at 10^5
    # operations: grad_reverse's maxrss 91 -> 70 MB, its traced peak 129 -> 100 MB)
    return b.finish(outputs, last=True, keep_columns=keep_columns,
                    labels_after=None if named is None else swept_labels(b, trace, named, markers))


def grad_reverse(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """The gradient of a single-output trace: its VJP with the cotangent seeded to 1.
    A trace of at least _BULK_FROM instructions is swept in bulk where that sweep
    covers it (passes/reverse_bulk.py: the same operations on the same values, summed
    in the same order, so the same gradient bits; a trace of a few more instructions,
    within 1% on the bench's families)."""
    name, _ = scalar_output(trace)
    n = len(trace)
    if n >= _BULK_FROM or (3 * n >= _BULK_FROM and _kinds(trace) <= _FEW_OPS):
        # (where the bulk sweep declines after asking where_exits, adjoint_sweep takes its answer)
        with asked_once():
            # (a front end's builder tables, for a load the bulk sweep does not make:
            # not held while it runs)
            let_go(trace)
            got = reverse_bulk.grad_reverse_bulk(trace, wrt)
            if got is not None:
                return got
            return vjp(trace, wrt, seeds={name: 1.0})
    return vjp(trace, wrt, seeds={name: 1.0})


def _kinds(trace: Trace) -> int:
    """How many op kinds `trace` has: from the op codes of its columns where it keeps
    them (a front end's trace: no pass over its tuples, ~20 µs at 10^3 operations),
    unless one is an op the columns' table does not hold (UNKNOWN, one code for all)."""
    cols = kept(trace)
    if cols is not None:
        present = np.flatnonzero(np.bincount(cols.code, minlength=256))
        if not len(present) or present[-1] != UNKNOWN:
            return len(present)
    return len({ins[0] for ins in trace.instrs})


# From how many instructions grad_reverse takes the bulk sweep: about where it is as
# fast as the per-instruction sweep. Its fixed cost grows with the trace's op kinds
# (per kind and template a few small NumPy calls: ~1.3 ms on deep's 7 kinds, ~1.9 ms
# on text's 15, warm; in a fresh process ~1.2 and ~3 ms more, on text ~1.3 ms of it the
# recording of its ~80 templates), so a trace of at most _FEW_OPS kinds takes it from
# a third of _BULK_FROM.
# Pipeline totals, bulk / per-instruction sweep, µs an operation (bench_frontend, a
# fresh process each, CPU medians of 3, load 4-6; generate takes 0.45-0.9 less after
# the bulk sweep, reading the columns that sweep hands on): text (15-16 kinds) 13.4 /
# 13.2 at 1,527 instructions, 11.5 / 11.5 at 2,039, 10.7 / 11.4 at 2,550, 10.5 / 11.1
# at 3,072; SymPy 16.4 / 13.5 at 1,104, 12.6 / 12.7 at 1,654, 12.1 / 12.4 at 2,212;
# deep (7 kinds) 17.5 / 16.9 at 499, 12.8 / 14.5 at 751, 9.9 / 12.0 at 1,003. The two
# sweeps make the same trace on deep and on the families at 10^2 operations, not on
# text and SymPy from ~300 (the bulk sweep's has ~0.5% more instructions, the same
# values: see reverse_bulk.py), so a threshold moved there changes the generated code
# of such traces. Small traces (the lecture's tables) keep the per-instruction sweep.
# Re-measured at 10^3 operations (same figures, medians of 3, load 5.5-8.7): with
# _BULK_FROM 1000 or 0 text (1,021 operations) takes 17.7 / 13.2 fresh and 13.5-14.0 /
# 11.8 warm, SymPy (1,104) 15.9-16.5 / 13.2 and 12.5-12.7 / 11.4, in other code;
# deep (1,003, its 7 kinds) takes it already, 10.5 / 10.7 fresh and 8.5 / 9.3 warm.
# Tests and benchmarks set _BULK_FROM (0: the bulk sweep wherever it covers; math.inf:
# never).
_BULK_FROM = 3000
_FEW_OPS = 8

# From how many instructions vjp's trace holds its new instructions as columns: below
# ~200 named variables generate renders from the tuples (numpy_backend.TIER_FROM), so
# they would be made anyway. grad_reverse + generate, the per-instruction sweep, CPU
# medians of 25 in a process, 4 processes alternating with the tuples' finish, load
# 5-8: text at 10^3 operations 9.6-10.5 -> 7.5-8.8 ms, SymPy 10.7-11.3 -> 9.8-11.1; at
# 300 within noise (4.5-4.9 -> 4.4-4.7); at 150-200 it was 0.1-0.2 ms slower (generate).
# A reader of the tuples (the VM and C backends, printing) makes them: +0.3-0.5 ms there.
_COLUMNS_FROM = 300


from . import reverse_bulk  # noqa: E402  (last: it imports this module's active_set)
