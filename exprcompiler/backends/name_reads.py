"""Whether a name's previous holder is read for the last time by a statement:
assign_names' test before it reuses a name (an adjoint's accumulation, v̄ = v̄ + ...).

Where it sits: inside backends/naming.assign_names' loop (`LastRead.read_by`), for the
reuses that the use counts do not decide (name_firsts decides most of a long trace's
at once); `last_reads` is its answer for every variable at once, where the scans for
readers cost more.
"""

from __future__ import annotations

from itertools import chain, compress, repeat
from operator import contains, itemgetter
from typing import Iterator, Optional

import numpy as np

from ..trace.ir import Trace
from ..trace.ir_trace import instructions
from ..trace.render_bulk import OpCodes, arities


def last_reads(trace: Trace, named: list[bool], reads: Optional[np.ndarray] = None,
               starts: Optional[np.ndarray] = None) -> np.ndarray:
    """For each variable, the position of the last statement that reads it (-1: none;
    n + 1 for an output): that of its last consumer, or of an inlined consumer's if
    later. A variable's statement is itself if named; an inlined one's is its
    consumer's (n: none). (NumPy, from C-level passes over the arguments; `reads`:
    every argument in one flat array, trace.render.use_counts_and_reads', if known;
    `starts`, with it: each instruction's first argument's place there, and the
    array's length last.)"""
    instrs = instructions(trace)
    n = len(instrs)
    held = getattr(instrs, "cols", None)   # (held as columns, column_instrs.py: read there, no tuple made)
    if held is not None and reads is None:
        reads = held.flat
    counts = np.diff(starts) if starts is not None else held.counts if held is not None \
        else np.fromiter(map(len, map(_ARGS, instrs)), np.intp, n)
    read = np.fromiter(chain.from_iterable(map(_ARGS, instrs)), np.intp, int(counts.sum())) if reads is None \
        else reads
    reader = np.repeat(np.arange(n), counts)
    consumer = np.full(n + 1, -1)   # each variable's last
    np.maximum.at(consumer, read, reader)
    consumer[consumer < 0] = n   # (none)
    inlined = ~(np.array(named, bool) if isinstance(named, np.ndarray) else np.fromiter(named, bool, n))
    # (a constant's statement is never asked for)
    statement = np.arange(n + 1)
    statement[:n][inlined] = consumer[:n][inlined]
    while True:   # an inlined consumer's own statement: pointer jumping, as deep as they nest
        further = statement[statement]
        if np.array_equal(further, statement):
            break
        statement = further
    last = np.append(statement[:n], -1)[consumer[:n]]
    by_inlined = inlined[reader]
    np.maximum.at(last, read[by_inlined], statement[reader[by_inlined]])
    last[[v for _, v in trace.outputs]] = n + 1
    return last


class LastRead:
    """assign_names' test for reusing a name: whether variable v is read for the last
    time by statement i or before. Most reuses are an adjoint's accumulation
    (v̄ = v̄ + ...), whose previous version only that statement reads: `uses`
    (trace.render.use_counts) tells, without last_reads' scan of every argument.
    For the others, the readers of v from v on (an inlined one is read where its
    consumer's statement is, found ahead), found without a Python loop. What a scan
    found is kept for v's next question (the same label asks again at its next
    version).

    Readers are found in two ways. First from the instructions, by C-level iterators
    (about 0.1 µs an instruction), which read a few dozen instructions for most
    questions: at 10⁴ and 10⁵ operations that is all. But in a gradient of 10⁶
    operations a few readers are hundreds of thousands of instructions apart (a
    hundred questions, 3·10⁷ instructions between v and its last reader in all):
    once those scans have read _SCANNED instructions and a 64th of the trace, the
    arguments' flat array (`reads`, every argument in order) and each instruction's
    first argument's place in it are made, once (about one pass over the trace),
    and readers are found by NumPy in slices of that array (a nanosecond an
    argument). A question asks for the readers of v up to statement i only, so this
    decides them all without last_reads, which reads every argument again for every
    variable (at 10⁶ operations the instruction scans and then last_reads took 0.8 µs
    an operation, these 0.2). Only where the flat scans too read more than
    _FLAT_SCANS times the trace (not seen: a trace made to ask many far questions)
    does last_reads decide the rest."""

    def __init__(self, trace: Trace, named: list[bool], uses: Optional[list[int]],
                 reads: Optional[np.ndarray] = None, codes: Optional[OpCodes] = None):
        self.trace, self.named, self.uses, self.reads, self.codes = trace, named, uses, reads, codes
        self.last_read: Optional[np.ndarray] = None   # last_reads(trace, named), once needed
        # instructions the scans may read, before the flat ones
        self.budget = len(instructions(trace)) // 64 + _SCANNED
        self.starts: Optional[np.ndarray] = None   # each instruction's first argument's place in `reads` (flat scans)
        # v -> (scanned up to, its reads before that, their last statement)
        self.found: dict[int, tuple[int, int, int]] = {}

    def read_by(self, v: int, i: int) -> bool:
        while self.last_read is None and self.uses is not None:
            seen = self._scan(v, i)
            if seen is not None:
                return seen
            if self.starts is not None:   # (the flat scans' budget ran out too)
                break
            self._flat()
        if self.last_read is None:
            self.last_read = last_reads(self.trace, self.named, self.reads, self.starts)
            self.reads = self.starts = None
        return bool(self.last_read[v] <= i)

    def _flat(self) -> None:
        """From here on, find readers in the arguments' flat array."""
        instrs = instructions(self.trace)
        n = len(instrs)
        held = getattr(instrs, "cols", None)   # (instructions held as columns: read there, no tuple made)
        if held is not None and self.reads is None:
            self.reads = held.flat
        starts = np.zeros(n + 1, np.intp)
        # each instruction's count of arguments from its op's arity where the op codes
        # are known: reading every instruction's arguments for their lengths was 0.5 µs
        # an operation at 10⁶ (the gradient's tuples are cache misses there)
        counts = None if self.codes is None or self.reads is None or len(self.codes.code) != n \
            else arities(self.codes, len(self.reads))
        if counts is None:
            counts = held.counts if held is not None else np.fromiter(map(len, map(_ARGS, instrs)), np.intp, n)
        np.cumsum(counts, out=starts[1:], dtype=np.intp)
        if self.reads is None:
            self.reads = np.fromiter(chain.from_iterable(map(_ARGS, instrs)), np.intp, int(starts[-1]))
        self.starts = starts
        self.budget = _FLAT_SCANS * (n + _FLAT_SLICE)   # (at least as many slices)

    def _readers(self, v: int, start: int, stop: int) -> Iterator[int]:
        """The instructions in [start, stop) that read v, in order (lazily)."""
        if self.starts is not None:
            return self._flat_readers(v, start, stop)
        instrs = instructions(self.trace)
        return compress(range(start, stop), map(contains, map(_ARGS, map(instrs.__getitem__, range(start, stop))),
                                                repeat(v)))

    def _flat_readers(self, v: int, start: int, stop: int) -> Iterator[int]:
        """_readers from the flat array, in slices that grow from a few thousand
        arguments (most readers are near; a slice's readers come in one list). Each
        slice costs the budget _FLAT_SLICE instructions too, for NumPy's calls (a
        few µs), so that many questions of near readers give way to last_reads."""
        reads, starts = self.reads, self.starts
        a, b = int(starts[start]), int(starts[stop])
        size, last = _FLAT_SLICE, -1
        while a < b:
            self.budget -= _FLAT_SLICE
            e = min(b, a + size)
            hits = np.flatnonzero(reads[a:e] == v)
            if len(hits):
                for r in (np.searchsorted(starts, hits + a, "right") - 1).tolist():
                    if r != last:   # (an instruction that reads v twice, x * x: once)
                        last = r
                        yield r
            a, size = e, min(size * 4, 1 << 22)

    def _scan(self, v: int, i: int) -> Optional[bool]:
        """read_by from the readers of v before i (None: the budget ran out)."""
        instrs, named, uses = instructions(self.trace), self.named, self.uses
        total = uses[v] - instrs[i].args.count(v)   # reads by others (an output's too)
        if total == 0:
            return True
        start, reads, latest = self.found.get(v, (v + 1, 0, -1))
        end = min(i, start + max(self.budget, 0))
        for r in self._readers(v, start, end):
            if not named[r]:   # inlined: read where its statement is
                at = self._statement(r)
                if at is None:
                    return None
                latest = max(latest, at)
            reads += instrs[r].args.count(v)
            if reads == total or latest > i:   # (decided)
                end = r + 1
                break
        else:
            if end < i:   # (the budget ran out first)
                self.budget = 0
                return None
        self.budget -= end - start
        self.found[v] = end, reads, latest
        return reads == total and latest <= i   # (else read after i, or an output)

    def _statement(self, r: int) -> Optional[int]:
        """The position of inlined variable r's statement: its one consumer's, or that
        one's if inlined too (n: no consumer); None where the budget runs out first or
        r has several consumers (an inlined variable has one, but `named` may say
        otherwise)."""
        named, uses = self.named, self.uses
        n = len(named)
        while not named[r]:
            if uses[r] != 1:
                return n if uses[r] == 0 else None
            stop = min(n, r + 1 + max(self.budget, 0))
            c = next(self._readers(r, r + 1, stop), None)
            if c is None:
                return n if stop == n else None   # (used once, as an output: no consumer)
            self.budget -= c - r
            r = c
        return r


_ARGS = itemgetter(1)   # an instruction's arguments
_SCANNED = 10_000   # (see LastRead: about a millisecond)
_FLAT_SCANS = 64   # (see LastRead: the flat scans' budget, in instructions per instruction of the trace)
_FLAT_SLICE = 4096   # (the flat scans' first slice, in arguments: a few µs)


__all__ = ["LastRead", "last_reads"]
