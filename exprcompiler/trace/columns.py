"""A trace's ops and arguments as arrays: read once, handed on to every stage that
needs them as numbers.

Where it sits: between a front end's `Trace` (ir_trace.py) and the stages that
read every instruction's op and arguments only to count, match or index them: the
front end's finish (finish.py, which reads every argument anyway for its dead
code) makes them on the way, and share_sums (and splice) and a pass's bulk load of
its primal (builder_load.py) read them here instead of each reading every
instruction again (0.2 µs an operation each). The bulk reverse sweep makes its
gradient's columns from the arrays it writes the instructions from (reverse_bulk_write)
and generate reads those (uses.use_counts_and_reads, numpy_backend._prepared_codes):
at 10⁶ operations generate 2.1 -> 1.65 µs an operation. The per-instruction sweep
hands its columns over too from reverse._COLUMNS_FROM instructions, where its finish
then makes no tuples (finish._held_as_columns): handing them over beside the tuples
did not pay (the op codes and counts cost the finish what generate's own read costs).

`columns(trace)` makes them at most once per trace and keeps them on it
(`Trace._columns`, a cache: they are a pure function of the trace's instructions,
never part of its value, pickle or identity) until the trace is dropped, or until
`take_columns` hands them to a builder (a pass's load, the front end's last
reader: a primal's columns are then not held while the pass and generate run).

Op codes are one table for every stage: an op's index in ops' table (input 0,
const 1, copy 2, then the operations), UNKNOWN for an op the table did not hold
at import (one registered later): a stage that must know it declines.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import NamedTuple, Sequence

import numpy as np

from .. import ops as _ops
from .ir_trace import LazyInstrs, Trace

OP_NAMES: tuple = tuple(op.name for op in _ops._TABLE)   # code -> op name
CODE: dict = {name: k for k, name in enumerate(OP_NAMES)}   # op name -> code
UNKNOWN = 255
INPUT, CONST, COPY = CODE["input"], CODE["const"], CODE["copy"]   # (0, 1, 2: an operation's is above COPY)
assert len(OP_NAMES) < UNKNOWN and (INPUT, CONST, COPY) == (0, 1, 2)

_OP, _ARGS = itemgetter(0), itemgetter(1)


class Columns(NamedTuple):
    """Per instruction its op's code and its number of arguments, and every
    argument in one flat array, in order: instruction i's are
    flat[starts[i]:starts[i] + counts[i]]. Read-only arrays (shared by every reader)."""
    code: np.ndarray     # uint8: CODE[op], UNKNOWN where the table has no such op
    counts: np.ndarray   # uint8, or int32 where an instruction has 256 arguments or more
    flat: np.ndarray     # int32 (int64 past 2³¹ variables)

    def starts(self, narrow: bool = False) -> np.ndarray:
        """Where each instruction's arguments start in `flat`: int64, or with `narrow`
        int32 where `flat` allows (half the bytes, for positions kept or read at a few
        places). One array: no int64 copy of the counts (70 bytes an operation at 10⁴
        operations, when it made three)."""
        starts = np.cumsum(self.counts, dtype=np.int32 if narrow and len(self.flat) < 1 << 31 else np.int64)
        starts -= self.counts
        return starts


def frozen(code: np.ndarray, counts: np.ndarray, flat: np.ndarray) -> Columns:
    """Columns of these arrays, made read-only (every reader shares them)."""
    for column in (code, counts, flat):
        column.setflags(write=False)   # (half the time of `flags.writeable = False`, a flags object less)
    return Columns(code, counts, flat)


class _Codes(dict):
    """CODE, UNKNOWN for an op it does not hold: looked up as codes[op] (a tenth
    faster than CODE.get(op, UNKNOWN) over millions of instructions)."""
    __slots__ = ()

    def __missing__(self, op) -> int:
        return UNKNOWN


_CODES = _Codes(CODE)


def op_code_bytes(instrs: Sequence) -> bytes:
    """The code of each instruction's op, a byte each."""
    return bytes(map(_CODES.__getitem__, map(_OP, instrs)))


def made(instrs: Sequence) -> Columns:
    """The Columns of `instrs`, read."""
    n = len(instrs)
    args = list(map(_ARGS, instrs))
    try:
        lens = bytes(map(len, args))
    except ValueError:   # an instruction of 256 arguments or more
        counts = np.fromiter(map(len, args), np.int32, n)
        counts.setflags(write=False)
        total = int(counts.sum(dtype=np.int64))
    else:
        counts = np.frombuffer(lens, np.uint8)
        # (the bytes' sum, in Python, below _SUM_IN_PYTHON: a NumPy reduction's fixed
        # cost was a sixth of a 10-instruction trace's columns)
        total = sum(lens) if n < _SUM_IN_PYTHON else int(counts.sum(dtype=np.int64))
    flat = np.fromiter(chain.from_iterable(args), np.int32 if n < 1 << 31 else np.int64, total)
    flat.setflags(write=False)
    # (frozen's Columns: the arrays read from bytes are read-only already, a view of
    # an immutable buffer; setting their flags again was a fixed cost of every finish)
    return Columns(np.frombuffer(op_code_bytes(instrs), np.uint8), counts, flat)


# made: below this many instructions, the arguments counted by Python's sum. Measured by
# callgrind, Ir a call, Python/NumPy: 46k/57k at 10 instructions, 101k/110k at 40,
# 213k/219k at 100, 420k/420k at 211, 622k/616k at 319 (by time, load 1.4: 9.6/11.2 µs
# at 47, 16.4/18.6 at 100, 32.7/33.7 at 211).
_SUM_IN_PYTHON = 200


def columns(trace) -> Columns:
    """`trace`'s Columns: made on first asking, then kept on the trace."""
    cols = kept(trace)
    if cols is None:
        cols = made(trace.instrs)
        if isinstance(trace, Trace):   # (a cache, not a change: see the module docstring)
            object.__setattr__(trace, "_columns", cols)
    return cols


def take_columns(trace) -> Columns:
    """columns(trace), no longer kept on it (for its last reader)."""
    cols = columns(trace)
    if isinstance(trace, Trace):
        object.__setattr__(trace, "_columns", None)
    return cols


def kept(trace, take: bool = False):
    """The Columns kept on `trace` (its maker's, or a reader's), None if none are:
    never made here. `take`: no longer kept on it (for its last reader). A trace that
    holds its instructions as columns (column_instrs.ColumnInstrs) gives those."""
    cols = getattr(trace, "_columns", None)
    if take and cols is not None:
        object.__setattr__(trace, "_columns", None)
    if cols is None:
        held = getattr(trace, "_instrs", None)
        cols = held.cols if isinstance(held, LazyInstrs) else None
    return cols


def keep(trace: Trace, cols: Columns) -> None:
    """Keeps `cols`, what `trace`'s instructions say as columns (a rewrite's that
    knows them), on it: read by columns() and kept() as if made there."""
    object.__setattr__(trace, "_columns", cols)


__all__ = ["CODE", "COPY", "CONST", "Columns", "INPUT", "OP_NAMES", "UNKNOWN", "columns", "frozen", "keep", "kept",
           "made", "op_code_bytes", "take_columns"]
