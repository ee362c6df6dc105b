"""Finishing a builder: how every front end and pass ends, a `Builder` made a `Trace`.

Where it sits: the last step of every front end (parser, SymPy bridge, program
loader) and of every pass (replay, simplify, forward, reverse, elimination,
stability rewrites), called as `Builder.finish` (builder.py). It eliminates dead
code (use counts, `_live`), puts the inputs first, renumbers the rest (on a last
finish a block at a time, dropping the builder's tuples as the trace's are made:
`_renumbered_dropping`) and gives the trace its labels as columns (labels.py):
primal Griewank labels from the op codes (ir_trace.primal_labels), or the
builder's, a loaded trace's taken from that trace's columns (`builder_labels`).
A last finish that keeps the columns (a large gradient's, reverse.vjp) makes no new
tuples: what moves is held as the renumbered columns (`_held_as_columns`).
"""

from __future__ import annotations

from itertools import accumulate, chain, compress, islice
from operator import itemgetter
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np

from .. import ops as _ops
from ..errors import TraceError
from .columns import CONST, INPUT, OP_NAMES, UNKNOWN, Columns, frozen, made, op_code_bytes
from .identities import SHAPED
from .ir_trace import Instr, Trace, Var, _new_tuple, primal_labels, renumbered
from .labels import Labels, as_labels

if TYPE_CHECKING:
    from .builder import Builder


def finish(b: "Builder", outputs: Iterable[tuple[str, Var]], *, input_order: Optional[Sequence[str]] = None,
           number: bool = False, source: Optional[str] = None, last: bool = False,
           keep_columns: bool = False, labels_after: Optional[Labels] = None) -> Trace:
    """`b.finish(...)`: what Builder.finish says it does."""
    outputs = list(outputs)
    all_instrs = b.instrs
    n = len(all_instrs)
    names = list(b._inputs)
    if input_order is not None:
        input_order = list(input_order)
        ordered = set(input_order)
        missing = [nm for nm in names if nm not in ordered]
        if missing:
            raise TraceError(f"input order misses {missing}")
        names = [nm for nm in input_order if nm in b._inputs]
    firsts = [b._inputs[nm] for nm in names]
    # A loaded trace with no dead code (builder_load) whose outputs are still
    # outputs is live as a whole: only what was built after it is looked at
    # (a gradient's sweep, not its primal: a third of _live's reading)
    out_vars = [v for _, v in outputs]
    start = 0
    if b._loaded_outputs is not None and set(b._loaded_outputs).issubset(out_vars):
        start = b._loaded
    # the trace's columns (columns.py), where asked for: read here, where _live reads
    # every argument anyway (a loaded trace's taken from it: only what was built after
    # it is read); what renumbering does to them follows by NumPy
    cols = _columns_of(b, all_instrs) if keep_columns else None
    # (the arguments after the first `start`: a front end's are all of them, where the
    # sum of no counts was a NumPy reduction's fixed cost in every parse's finish)
    live = _live(all_instrs, out_vars, start,
                 None if cols is None else cols.flat[int(cols.counts[:start].sum(dtype=np.int64)):] if start
                 else cols.flat)
    for v in firsts:   # inputs go first, live or not
        live[v] = 0
    n_in = len(firsts)
    # The instructions before the first one that moves (a dead one, or one that
    # an input is moved in front of) keep their numbers and their tuples, the
    # builder's or a loaded trace's (builder_load): no second copy of them while
    # finish runs. (Copying them once paid, while hash keys were tuples whose freed
    # blocks held the builder's memory; with int keys, re-measured on text at 10^5
    # operations, inputs declared first: maxrss after the front end 52 -> 45 MB,
    # at the end of generate unchanged, the finish 0.97 -> 0.41 µs an operation.)
    kept = 0
    if firsts == list(range(n_in)):   # (a front end that declares its inputs first, in order)
        kept = live.find(0, n_in)
        kept = n if kept < 0 else kept
    if b._plain:
        # the builder's plain tuples (Builder.plain_tuples) that the trace keeps as
        # tuples made Instr: all, but those _held_as_columns holds as columns
        lo, hi = b._plain_from, (kept if last and cols is not None and kept < n else n)
        if hi > lo:
            all_instrs[lo:hi] = [t if type(t) is Instr else _new_tuple(Instr, t) for t in islice(all_instrs, lo, hi)]
    if kept == n:   # nothing moves: no renumbering, no new tuples
        instrs = tuple(all_instrs)
        labels = primal_labels(instrs, None if cols is None else cols.code) if number else \
            builder_labels(b, None, labels_after)
        return _left(b, Trace(instrs, labels, outputs, source, _all_live=True, _columns=cols,
                              _inputs=tuple((nm, b._inputs[nm]) for nm in names)), last)
    if last and cols is not None:
        return _left(b, _held_as_columns(b, outputs, names, firsts, live, kept, cols, number, source, labels_after),
                     last)
    # new numbers: a live variable's is n_in + the live ones before it (a dead
    # one's is never read), an input's its place in `names`; a kept one's its own
    if kept:
        new_index = list(range(kept - 1))
        new_index += accumulate(islice(live, kept, None), initial=kept - 1)
    else:
        new_index = list(accumulate(live, initial=n_in - 1))
        del new_index[0]
    for new, old in enumerate(firsts):
        new_index[old] = new
    moved, rest = firsts[kept:], live[kept:]   # after the kept ones: inputs, then the live
    # the trace's tuples made at once, from iterators: a list on the way (slices,
    # sums of lists) would count every item's references up and then down again
    if last:
        instrs = tuple(_renumbered_dropping(all_instrs, kept, moved, live, new_index))
    else:
        instrs = tuple(chain(islice(all_instrs, kept), renumbered(
            chain(map(all_instrs.__getitem__, moved), compress(islice(all_instrs, kept, None), rest)), new_index)))
    order = _order(kept, moved, live) if cols is not None or not number else None
    if cols is not None:
        cols = _moved_columns(cols, order, live, new_index)
    if number:
        labels = primal_labels(instrs, None if cols is None else cols.code)
    else:
        labels = builder_labels(b, order, labels_after)
    return _left(b, Trace(instrs, labels, [(nm, new_index[v]) for nm, v in outputs], source,
                          _inputs=tuple((nm, new_index[b._inputs[nm]]) for nm in names), _all_live=True,
                          _columns=cols),
                 last)


def _columns_of(b: "Builder", instrs: list) -> Columns:
    """The Columns of the builder's `instrs`: those of a trace it loaded (builder_load)
    where its caller put them in `b._loaded_columns` (reverse.vjp), then those of what
    was built after it, read; else all of them read."""
    loaded = b._loaded_columns
    b._loaded_columns = None
    n0 = b._loaded
    if loaded is None or n0 != len(loaded.code) or not n0:
        return made(instrs)
    new = _built_columns(instrs, n0)
    counts = (loaded.counts, new.counts)
    if counts[0].dtype != counts[1].dtype:   # (256 arguments or more on one side)
        counts = [c.astype(np.int32) for c in counts]
    return frozen(np.concatenate((loaded.code, new.code)), np.concatenate(counts),
                  np.concatenate((loaded.flat, new.flat.astype(loaded.flat.dtype, copy=False))))


def _built_columns(instrs: list, start: int) -> Columns:
    """columns.made(instrs[start:]), what a builder made: an op's argument count is its
    arity (Builder._apply refuses others), read off the op codes where no op takes
    any number (a third of made's time); the total checked. The arguments are read
    into an array of the length the counts say (fromiter without a length grows its
    array as it goes: 0.03 of its 0.1 ms at 10^3 operations), and checked to be all."""
    if len(instrs) >= 1 << 31:   # (arguments past int32)
        return made(instrs[start:])
    code = op_code_bytes(islice(instrs, start, None))
    counts = code.translate(_ARITY)
    if counts.find(_ANY) >= 0:
        return made(instrs[start:])
    counts = np.frombuffer(counts, np.uint8)
    args = chain.from_iterable(map(_ARGS_OF, islice(instrs, start, None)))
    try:
        flat = np.fromiter(args, np.int32, int(counts.sum(dtype=np.int64)))
    except ValueError:   # (fewer arguments than the counts say)
        return made(instrs[start:])
    if next(args, None) is not None:   # (more)
        return made(instrs[start:])
    return frozen(np.frombuffer(code, np.uint8), counts, flat)


# per op code, its arity as a byte (copy's 1, a leaf's 0); _ANY for an op that takes
# any number of arguments or one the columns' table does not hold
_ANY = 255
_ARITY = bytes([max(0, _ops.OPS[name].arity) if _ops.OPS[name].arity >= 0 else _ANY for name in OP_NAMES]
               + [_ANY] * (256 - len(OP_NAMES)))


def _held_as_columns(b: "Builder", outputs: list, names: list, firsts: list, live: bytearray, kept: int,
                     cols: Columns, number: bool, source: Optional[str], labels_after: Optional[Labels]) -> Trace:
    """finish(last=True)'s trace where it has the builder's Columns `cols`: the
    first `kept` tuples as they are, the others held as the renumbered columns
    (column_instrs.ColumnInstrs: their tuples made only if asked for; generate reads
    the columns), but for the few the columns cannot say (inputs, constants, an op
    with options or a shape, or one the columns' table does not hold), renumbered.
    `live`: finish's (the inputs 0). All in NumPy: no new tuple for the others, and
    no list of the new numbers."""
    from .column_instrs import ColumnInstrs   # (here: it imports builder.py, which imports this module)
    instrs = b.instrs
    order = _order(kept, firsts[kept:], live)
    new_index = np.full(len(instrs), -1, cols.flat.dtype)   # (a dead variable's is never read)
    new_index[order] = np.arange(len(order), dtype=cols.flat.dtype)
    new_cols = _moved_columns(cols, order, live, new_index)
    # the ones the columns cannot say: every leaf and unknown op by its code; shapes
    # and an operation's options (a trace of scalars has neither: the builder's flags
    # say so, and a count of the instructions without options) looked for otherwise
    said = (cols.code[kept:] <= CONST) | (cols.code[kept:] == UNKNOWN)
    if b._flags[kept:].translate(_SHAPED).find(1) >= 0 or \
            list(map(_ATTRS, islice(instrs, kept, None))).count(()) != len(said) - int(said.sum()):
        said |= np.array([bool(ins[2] or ins[3]) for ins in islice(instrs, kept, None)], bool)
    said = np.flatnonzero(said) + kept
    said = said[np.frombuffer(live, bool)[said] | (cols.code[said] == INPUT)].tolist()
    fixed = {}
    for i in said:
        op, args, attrs, shape = instrs[i]
        fixed[int(new_index[i])] = _new_tuple(Instr, (op, tuple(new_index[list(args)].tolist()), attrs, shape))
    held = ColumnInstrs(tuple(islice(instrs, kept)), new_cols, fixed)
    labels = primal_labels(held, new_cols.code) if number else builder_labels(b, order, labels_after)
    outputs = zip([nm for nm, _ in outputs], new_index[[v for _, v in outputs]].tolist())
    inputs = zip(names, new_index[[b._inputs[nm] for nm in names]].tolist())
    return Trace(held, labels, outputs, source, _inputs=tuple(inputs), _all_live=True, _columns=new_cols)


def builder_labels(b: "Builder", order: Optional[np.ndarray] = None, after: Optional[Labels] = None) -> Labels:
    """The builder's labels (the positions `order` if given) as columns; a loaded
    trace's (builder_load's placeholders in `b.labels`) taken from its columns, and
    those after them from `after` if given (the caller's columns of them)."""
    if b._loaded_labels is not None:
        if after is not None and len(b._loaded_labels) + len(after) == len(b.labels):
            return b._loaded_labels.extended(after, order)
        return b._loaded_labels.filled(b.labels, order)
    labels = as_labels(b.labels)
    return labels if order is None else labels.filled([], order)


def _left(b: "Builder", trace: Trace, last: bool) -> Trace:
    """finish's `trace`, the builder left empty after its last finish."""
    if last:
        b.__init__(pull_negations=b.pull_negations, max_ops=b.max_ops)
    return trace


# Builder.finish(last=True)'s block: small enough that a block's old and new tuples
# add little to the peak, large enough that the Python work per block is nothing.
_FINISH_BLOCK = 1 << 14


def _renumbered_dropping(instrs: list, kept: int, moved: list, live: bytearray, new_index: list) -> list:
    """What Builder.finish makes of `instrs`: the first `kept` as they are, then the
    `moved` inputs and the live ones after `kept`, renumbered; each block's old
    tuples are dropped from `instrs` (set to None) once its new ones are made."""
    out = instrs[:kept]
    out += renumbered(map(instrs.__getitem__, moved), new_index)
    n = len(instrs)
    for lo in range(kept, n, _FINISH_BLOCK):
        hi = min(lo + _FINISH_BLOCK, n)
        out += renumbered(compress(instrs[lo:hi], live[lo:hi]), new_index)
        instrs[lo:hi] = [None] * (hi - lo)
    return out


def _order(kept: int, moved: list, live: bytearray) -> np.ndarray:
    """The builder's positions of the instructions finish keeps, in their new order:
    the first `kept`, the `moved` inputs, the live ones after `kept`."""
    rest = np.frombuffer(live, bool)[kept:].nonzero()[0]
    rest += kept
    return np.concatenate((np.arange(kept), np.array(moved, np.intp), rest))


def _moved_columns(cols: Columns, order: np.ndarray, live: bytearray, new_index) -> Columns:
    """The Columns of the trace finish makes of a builder whose are `cols`: its
    instructions at `order` (_order's), arguments renumbered by `new_index` (finish's,
    a list or an array)."""
    # (inputs, the only ones moved and the only ones of the first `kept` that `live`
    # marks 0, read no arguments: the others' arguments stay in order)
    flat = np.asarray(new_index, cols.flat.dtype)[cols.flat[np.repeat(np.frombuffer(live, bool), cols.counts)]]
    return frozen(cols.code[order], cols.counts[order], flat)


def _live(instrs: list, outputs: list, start: int = 0, flat: Optional[np.ndarray] = None) -> bytearray:
    """1 for each variable that an output is computed from, else 0; the first
    `start` are known to be (their arguments are not read). Counts of uses
    (NumPy, over all arguments at once), then the unused variables taken out one by
    one with the uses they held: Python work for the dead variables only, which
    are few. `flat`: the arguments after the first `start`, in one array, if read."""
    # (an output is used, however often it is named: read with the arguments where
    # they are read here, a NumPy call less)
    if flat is None:
        uses = np.bincount(np.fromiter(chain(chain.from_iterable(map(_ARGS_OF, islice(instrs, start, None))), outputs),
                                       np.intp), minlength=len(instrs))
    else:
        uses = np.bincount(flat, minlength=len(instrs))
        if len(outputs) < 8:   # (np.add.at's fixed cost is that of a few items' +=)
            for v in outputs:
                uses[v] += 1
        else:
            np.add.at(uses, outputs, 1)
    if start:
        uses[:start] += 1   # (live whatever the others do: never taken out)
    unused = (uses == 0).nonzero()[0]   # (np.flatnonzero's wrappers: a fixed cost of every finish)
    live = bytearray(b"\x01") * len(instrs)
    if len(unused):
        uses = uses.tolist()
        stack = unused.tolist()
        while stack:
            v = stack.pop()
            live[v] = 0
            for a in instrs[v][1]:
                uses[a] -= 1
                if not uses[a]:
                    stack.append(a)
    return live


_ARGS_OF, _ATTRS = itemgetter(1), itemgetter(2)   # an instruction's arguments, options
_SHAPED = bytes(1 if f & SHAPED else 0 for f in range(256))   # per builder flags byte (identities.SHAPED): 1 if set


def hand_on(b: "Builder", trace: Trace) -> Trace:
    """`trace`, a front end's finish of `b` (builder.trace_from_builder), given b's
    tables where b still has its hash-consing table and the finish moved nothing
    (b's numbers are the trace's) and made no shape, below HAND_ON_BELOW
    instructions; `b` is then left empty (its tables are the trace's)."""
    if b._memo and len(b.instrs) == len(trace) < HAND_ON_BELOW and not (b.pull_negations or b._loaded or b._plain):
        inputs = b._inputs
        if [inputs[nm] for nm, _ in trace._inputs] == list(range(len(inputs))) and \
                b._flags.translate(_SHAPED).find(1) < 0:
            object.__setattr__(trace, "_built", [(b.instrs, b._memo, inputs, b._copies, b._consts, b._flags,
                                                  b._scalar_consts)])
            b.__init__(max_ops=b.max_ops)
    return trace


def let_go(trace) -> None:
    """`trace`'s builder tables (hand_on), if it has them, dropped: for a trace kept
    where no pass will load it (a compiled function's), or one swept in bulk."""
    if getattr(trace, "_built", None):
        object.__setattr__(trace, "_built", None)


# A front end's trace of fewer instructions than this, finished from a Builder as it
# built it (no dead code, the inputs first), carries that builder's tables (its
# instructions, hash-consing keys, constants, copies, flags) to the first pass that
# loads it into an empty builder (builder_load.adopt), which would otherwise make
# them again from the trace: a gradient of text at 10^3 operations then starts from
# them. Larger traces are swept in bulk (passes/reverse.py), which loads nothing, and
# their parse releases its table before finishing (a large parse's peak memory).
HAND_ON_BELOW = 1 << 12
