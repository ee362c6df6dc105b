"""A trace's instructions held as columns, their tuples made only when asked for.

Where it sits: the bulk reverse sweep (passes/reverse_bulk_layout.py) writes its new
instructions as columns (trace/columns.py: an op code and the arguments) and hands
them to generate, which reads those, not tuples (uses.use_counts_and_reads,
numpy_backend._prepared_codes, render_bulk.bulk_keys). Its gradient `Trace` holds a
`ColumnInstrs`: the primal's tuples as they are, the new instructions as columns, and
the few the columns cannot say (the constants, with their values) as tuples.
The per-instruction sweep's finish holds a gradient of reverse._COLUMNS_FROM
instructions or more so as well (finish._held_as_columns: the new instructions
after the first dead or moved one, renumbered, as columns).
`trace.instrs` makes the tuple of them all on first asking (every other reader:
the printers, the VM and C backends, a second differentiation, pickling), equal to
the tuple the sweep made before; generate asks only for the length and a few items
(ir_trace.instructions). At 10⁴ operations the new tuples and their arguments were
~370 bytes an operation of the pipeline's peak; at 10⁶, ~2.7M tuples at ~0.2 µs each.

The SymPy front end's primal is held so too (parse/sympy_columns.py: no head, its
inputs and constants fixed), and the bulk sweep's gradient of it holds the same
columns and leaves, not a head of tuples: share_sums, the sweep and generate read
its columns and single items (`attributed`, `shaped`, items at ~0.6 µs each).
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Optional

import numpy as np

from .builder import gc_paused
from .columns import OP_NAMES, UNKNOWN, Columns
from .ir_trace import Instr, LazyInstrs, _new_tuple

_ATTRS, _SHAPE = itemgetter(2), itemgetter(3)


class ColumnInstrs(LazyInstrs):
    """`head` (tuples: the first len(head) instructions) then the instructions that
    `cols` (every instruction's Columns) says, but where `fixed` {position: Instr}
    holds one (a constant: its value; an op the columns' table does not hold; an
    instruction of `head` rewritten). Every instruction past `head` and not in `fixed`
    is scalar and has no attributes (the bulk sweep's: see reverse_bulk.py)."""

    __slots__ = ("head", "cols", "fixed", "_starts", "_views")

    def __init__(self, head: tuple, cols: Columns, fixed: dict):
        unknown = np.flatnonzero(cols.code[len(head):] == UNKNOWN) + len(head)
        if not all(map(fixed.__contains__, unknown.tolist())):
            raise ValueError("ColumnInstrs: an op the columns' table does not hold, not fixed")
        self.head, self.cols, self.fixed = head, cols, fixed
        self._starts: Optional[np.ndarray] = None
        self._views: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.cols.code)

    def __getitem__(self, i):
        if i.__class__ is slice:
            return tuple(map(self.__getitem__, range(*i.indices(len(self)))))
        # (memoryviews of the columns: a Python int per read, not a NumPy scalar; a pass
        # reads a third of a primal's items one at a time: 1.1 -> 0.6 µs an item)
        views = self._views
        if views is None:
            cols = self.cols
            views = self._views = tuple(map(memoryview, (cols.code, cols.counts, self.starts(), cols.flat)))
        code, counts, starts, flat = views
        if i < 0:
            i += len(code)
        if not 0 <= i < len(code):
            raise IndexError("instruction index out of range")
        ins = self.fixed.get(i)
        if ins is not None:
            return ins
        if i < len(self.head):
            return self.head[i]
        start, count = starts[i], counts[i]
        args = (flat[start], flat[start + 1]) if count == 2 else (flat[start],) if count == 1 \
            else tuple(flat[start:start + count])
        return _new_tuple(Instr, (OP_NAMES[code[i]], args, (), ()))

    def __iter__(self):
        return iter(self.made())

    def starts(self) -> np.ndarray:
        """Where each instruction's arguments start in cols.flat (made once asked for)."""
        if self._starts is None:
            self._starts = self.cols.starts(narrow=True)
        return self._starts

    def argument(self, at: np.ndarray, j: int) -> np.ndarray:
        """Argument j of the instructions at `at` (each has more than j)."""
        return self.cols.flat[self.starts()[at] + j]

    def any_attrs(self, mask: bytes) -> bool:
        """Whether an instruction where `mask` (a byte each) is nonzero has attributes."""
        head = self.head
        if any(map(_ATTRS, compress(head, mask[:len(head)]))):
            return True
        return any(ins.attrs for i, ins in self.fixed.items() if mask[i])

    def squared(self, cols: Columns, squares: dict) -> "ColumnInstrs":
        """These instructions where `cols` says them (the same counts; some ops and
        arguments changed), and `squares` {position: Instr} in head's places that
        cols changed."""
        return ColumnInstrs(self.head, cols, {**self.fixed, **squares})

    @gc_paused()   # (millions of tuples, made wherever trace.instrs is first asked for: see gc_paused)
    def made(self) -> tuple:
        """Every instruction's tuple: those past `head` made from the columns a span
        of positions at a time and in a span a number of arguments at a time, each
        such kind in position order (its argument tuples, then its instructions: no
        list of all their positions or arguments at once; each kind's tuples lie in
        memory in the order the later stages read them)."""
        n, cols = len(self.head), self.cols
        code, counts, flat = cols.code[n:], cols.counts[n:], cols.flat
        new: list = [None] * len(code)
        fixed = np.zeros(len(code), bool)
        for i, ins in self.fixed.items():
            if i >= n:
                new[i - n] = ins
                fixed[i - n] = True
        first = len(flat) - int(counts.sum(dtype=np.int64))   # (where the new arguments start)
        for lo in range(0, len(code), _SPAN):
            arity = counts[lo:lo + _SPAN]
            made_here = ~fixed[lo:lo + _SPAN]
            starts = np.cumsum(arity, dtype=np.int64)
            starts -= arity
            starts += first
            first += int(arity.sum(dtype=np.int64))
            for k in range(int(arity.max(initial=0)) + 1):
                at = np.flatnonzero(made_here & (arity == k))
                if len(at):
                    args = zip(*(flat[starts[at] + j].tolist() for j in range(k))) if k else repeat((), len(at))
                    ops = map(OP_NAMES.__getitem__, code[at + lo].tolist())
                    at += lo
                    # (any() of the Nones list.__setitem__ returns: a C-level loop that keeps nothing)
                    any(map(new.__setitem__, at.tolist(),
                            map(_new_tuple, repeat(Instr), zip(ops, args, repeat(()), repeat(())))))
        head = self.head
        if any(i < n for i in self.fixed):
            head = list(head)
            for i, ins in self.fixed.items():
                if i < n:
                    head[i] = ins
        return tuple(chain(head, new))


def attributed(instrs) -> list:
    """The positions, in order, of the instructions of `instrs` that have attributes
    (of a ColumnInstrs: its head's and fixed ones, no tuple made)."""
    if not isinstance(instrs, ColumnInstrs):
        return list(compress(range(len(instrs)), map(bool, map(_ATTRS, instrs))))
    fixed = instrs.fixed
    at = [i for i in compress(range(len(instrs.head)), map(bool, map(_ATTRS, instrs.head))) if i not in fixed]
    return sorted(at + [i for i, ins in fixed.items() if ins.attrs])


def shaped(instrs) -> bool:
    """Whether an instruction of `instrs` has a shape (not a scalar)."""
    if not isinstance(instrs, ColumnInstrs):
        return any(map(_SHAPE, instrs))
    fixed = instrs.fixed
    return any(ins.shape for ins in fixed.values()) \
        or any(i not in fixed for i in compress(range(len(instrs.head)), map(bool, map(_SHAPE, instrs.head))))


def any_attrs(instrs, mask: bytes) -> bool:
    """Whether an instruction of `instrs` where `mask` (a byte each) is nonzero has
    attributes (a ColumnInstrs: no tuple made)."""
    if isinstance(instrs, ColumnInstrs):
        return instrs.any_attrs(mask)
    return any(map(_ATTRS, compress(instrs, mask)))


_SPAN = 1 << 16   # (positions a span of ColumnInstrs.made: its lists are a few MB at most)

__all__ = ["ColumnInstrs", "any_attrs", "attributed", "shaped"]
