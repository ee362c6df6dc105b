"""Rewriting a few instructions of a finished trace without replaying all of it.

Where it sits: share_sums regroups a handful of additive chains in a trace a front
end has just finished. Replaying the whole trace into a Builder with those chains
rewritten (share_sums.regroup_by_replay) costs 4-5 µs an operation; `splice` copies
the instructions instead, renumbered (made again from the trace's columns, in bulk),
and appends the rewritten chains where the replay would build them. The result is
the replay's, instruction for instruction, whenever the builder would only have
appended: no constant to fold, no identity to apply (x + -y, --x, a zero), no
instruction built twice. Wherever it would have done more, or the trace is not
what a front end's Builder.finish leaves (inputs first, no named copies, nothing
dead; from the first change on scalars and no options on an operation), `splice`
raises Unsafe and the caller replays.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, islice, repeat
from operator import countOf, itemgetter
from typing import Callable

import numpy as np

from ..trace.columns import CONST, COPY, INPUT, OP_NAMES, UNKNOWN, frozen, made
from ..trace.ir import Instr, Trace, _new_tuple, primal_labels

_ATTRS, _SHAPE = itemgetter(2), itemgetter(3)


class Unsafe(Exception):
    """A Builder would do more than append here: replay instead."""


class _Appender:
    """The Builder's add, sub and neg as `splice`'s chains call them: an instruction
    appended to `out`, or Unsafe where the Builder would fold or simplify it. `out`
    holds None for a copy not made yet; `copied` gives those emit reads."""

    def __init__(self, out: list, copied: dict):
        self.out, self.copied = out, copied
        self.appended: list[int] = []

    def _operand(self, x: int) -> Instr:
        ins = self.out[x] or self.copied[x]
        # a negation or a zero brings in an identity (x + -y -> x - y, --x, x - 0.0);
        # a term with a shape gives the sum one (the instructions before the first
        # change are kept as they are, shapes and all: only the terms are checked)
        if ins.op == "neg" or (ins.op == "const" and not ins.value) or ins.shape:
            raise Unsafe
        return ins

    def _binary(self, op: str, x: int, y: int) -> int:
        x_op, y_op = self._operand(x).op, self._operand(y).op
        if x_op == "const" and y_op == "const":
            raise Unsafe   # folded
        return self._append(_new_tuple(Instr, (op, (x, y), (), ())))

    def add(self, x: int, y: int) -> int:
        return self._binary("add", x, y)

    def sub(self, x: int, y: int) -> int:
        return self._binary("sub", x, y)

    def neg(self, x: int) -> int:
        if self._operand(x).op == "const":
            raise Unsafe   # folded
        return self._append(_new_tuple(Instr, ("neg", (x,), (), ())))

    def _append(self, ins: Instr) -> int:
        self.appended.append(len(self.out))
        self.out.append(ins)
        return len(self.out) - 1


class _Reads:
    """The map old var -> new var (`new_at`) as `emit` reads it, keeping the vars it
    read and, in `copied`, each one's instruction by its new var (a term emit reads
    is never a rewritten chain: those it looks up in its plan)."""

    def __init__(self, instrs, new_at: np.ndarray):
        self.instrs, self.new_at = instrs, new_at
        self.read: set = set()
        self.copied: dict = {}

    def __getitem__(self, v: int) -> int:
        self.read.add(v)
        new = int(self.new_at[v])
        self.copied[new] = self.instrs[v]
        return new


def splice(trace: Trace, rewrite: dict, skip: set, emitter: Callable, facts, numbered: bool = False) -> Trace:
    """`trace` with each variable r of `rewrite` built by emit(r, vmap) at its place
    (emit = emitter(builder, rewrite, {}), given add, sub and neg to build with) and
    the variables of `skip` left out, as replaying it into a Builder would give;
    `facts`: what share_sums read of the trace (share_sums.Facts: its ops, uses,
    sums and negations). `numbered`: the trace's labels are primal_labels(trace.instrs)
    (a front end's finish made them), and the result's are taken from them."""
    instrs = trace.instrs
    n, n_in = len(instrs), len(trace.inputs)
    cols = facts.columns
    code = cols.code
    if (code == COPY).any() or (code[:n_in] != INPUT).any() or [v for _, v in trace.inputs] != list(range(n_in)):
        raise Unsafe
    # Builder.finish leaves no dead code, so every operation is used (dead code ends
    # in an unused operation); a replay would drop what is not
    if not facts.uses[n_in:].all():
        raise Unsafe
    changed = sorted(skip.union(rewrite))
    start = changed[0]
    # the copies are made from the columns, which hold neither attributes, shapes nor
    # an op the table did not hold at import (none in the scalar traces a front end
    # makes): after `start` only the constants may have attributes (each has its value)
    tail = code[start:]
    if countOf(map(_SHAPE, _after(instrs, start)), ()) != len(tail) or (tail == UNKNOWN).any() \
            or countOf(map(_ATTRS, _after(instrs, start)), ()) != len(tail) - int(np.count_nonzero(tail == CONST)):
        raise Unsafe
    # `out`: the result's instructions from `start` on as they are made (the ones
    # before are the trace's, read there: None here)
    out = [None] * start
    new_at = np.arange(n, dtype=cols.flat.dtype)   # old var -> new var (-1: none)
    reads = _Reads(instrs, new_at)
    appender = _Appender(out, reads.copied)
    appended = appender.appended
    emit = emitter(appender, rewrite, {})
    # the result after `start` in runs: (True, lo, hi) appended, out[lo:hi]; (False, lo, hi) copied, instrs[lo:hi]
    runs = []
    for here, end in zip(changed, changed[1:] + [n]):
        new_at[here] = -1
        if here in rewrite:
            at = len(out)
            new_at[here] = emit(here, reads)
            runs.append((True, at, len(out)))   # (none where the chain was built before)
        # the copies up to the next change, made by _renumber_copies (None until then)
        k = end - here - 1
        new_at[here + 1:end] = np.arange(len(out), len(out) + k, dtype=new_at.dtype)
        runs.append((False, here + 1, end))
        out += repeat(None, k)
    # (the copies made as the tuple takes them: no list of the result copied into it)
    result = tuple(_Sized(chain(islice(instrs, start), _renumber_copies(out, instrs, cols, start, changed, new_at)),
                          len(out)))
    _check_keys(result, appended, _near_copies(facts, reads.read.union(rewrite), changed, new_at))
    spliced = _spliced_columns(cols, start, out, runs, new_at)
    labels = primal_labels(result, spliced.code)
    return Trace(result, labels, [(name, int(new_at[v])) for name, v in trace.outputs],
                 trace.source, _inputs=trace.inputs, _columns=spliced,
                 _all_live=_all_used(instrs, out, facts.uses, changed, rewrite, appended, new_at))


def _after(instrs: tuple, start: int):
    """An iterator over instrs[start:], neither a copy nor an islice (which steps
    through the first `start`: at 10⁵ operations a splice starts at 89% of the trace):
    a tuple's iterator set to `start`, as unpickling sets one."""
    it = iter(instrs)
    it.__setstate__(start)
    return it


class _Sized:
    """`items`, an iterator of `n` items, that tells tuple() its length (told none,
    tuple() grows its result a quarter at a time, a copy each: ~5 ms and a few MB
    more at the peak for 10⁶ items)."""
    __slots__ = ("items", "n")

    def __init__(self, items, n: int):
        self.items, self.n = items, n

    def __iter__(self):
        return self.items

    def __len__(self) -> int:
        return self.n


_SPAN = 1 << 16   # (positions a span of _renumber_copies makes: its lists are a few MB at most)
_NAMES = np.array(OP_NAMES, object)   # (code -> op name, gathered by NumPy)


def _renumber_copies(out: list, instrs, cols, start: int, changed: list, new_at: np.ndarray):
    """An iterator over the result's instructions from `start` on, in order: at
    new_at[old] the copy of old var `old` ≥ `start` not in `changed` (a constant as
    it is, another made again with its arguments renumbered), elsewhere what `out`
    holds (an appended one; None where a copy goes). They are made from the trace's
    columns `cols`, a span of positions at a time, and in a span one iterator per
    number of arguments (C-level maps over NumPy's lists), drawn from in position
    order, so the tuples lie in memory in the order every later stage reads them.
    One by one it was ~0.6 µs an instruction, and at 10⁶ operations a splice copies
    91% of the trace. Every argument that names a variable holds one int for it,
    made once (a fresh int per argument held ~20 bytes an operation more at the
    pipeline's peak), and only for the variables the copies name (ints made for
    all, and mostly freed, held more)."""
    counts, m = cols.counts, len(out)
    old = np.arange(start, len(counts))
    copied = np.ones(len(old), bool)
    copied[np.asarray(changed) - start] = False
    old = old[copied]
    tail = counts[start:].astype(np.int64)
    base = int(counts[:start].sum(dtype=np.int64))
    first = (np.cumsum(tail) - tail + base)[old - start]
    named = np.zeros(len(counts), bool)
    named[cols.flat[base:]] = True   # (the variables the instructions after `start` name)
    new_of = np.empty(len(counts), object)
    new_of[named] = new_at[named].astype(object)
    arity = counts[old]   # (`first`: where each one's arguments start in cols.flat)
    kinds = int(arity.max(initial=0)) + 2   # (one per number of arguments, then what `out` holds: appended)
    kind = np.full(m - start, kinds - 1, np.intp)
    kind[new_at[old] - start] = arity
    ends = np.searchsorted(new_at[old], np.arange(start, m, _SPAN)[1:]).tolist() + [len(old)]

    def span(a: int, lo: int, hi: int):   # (positions a.., the copies old[lo:hi])
        span_kind = kind[a - start:a - start + _SPAN]
        mine, k_of, at_of = old[lo:hi], arity[lo:hi], first[lo:hi]
        draw = [None] * kinds
        for k in np.flatnonzero(np.bincount(k_of)).tolist():
            these = mine[k_of == k]
            if k:
                at = at_of[k_of == k]
                args = zip(*(new_of[cols.flat[at + j]].tolist() for j in range(k)))
                ops = _NAMES[cols.code[these]].tolist()
                draw[k] = map(_new_tuple, repeat(Instr), zip(ops, args, repeat(()), repeat(())))
            else:
                draw[k] = map(instrs.__getitem__, these.tolist())
        draw[-1] = map(out.__getitem__, (np.flatnonzero(span_kind == kinds - 1) + a).tolist())
        return map(next, map(draw.__getitem__, span_kind.tolist()))
    return chain.from_iterable(map(span, range(start, m, _SPAN), [0] + ends[:-1], ends))


def _spliced_columns(cols, start: int, out: list, runs: list, new_at: np.ndarray):
    """The Columns of the spliced trace `out`: the trace's (`cols`) up to `start`, then
    per run of `runs` the appended instructions' read, or the copied ones' taken from
    `cols` with their arguments renumbered by `new_at` (reading every copied tuple
    again was 0.3 µs an instruction at 10⁶ operations, where a splice copies most)."""
    counts = cols.counts
    at = int(counts[:start].sum(dtype=np.int64))   # where old instruction `old`'s arguments start
    old = start
    code, count, flat = [cols.code[:start]], [counts[:start]], [cols.flat[:at]]
    for new, lo, hi in runs:
        if lo == hi:
            continue
        if new:
            part = made(out[lo:hi])
            code.append(part.code)
            count.append(part.counts)
            flat.append(part.flat.astype(cols.flat.dtype))
        else:
            at += int(counts[old:lo].sum(dtype=np.int64))   # (the changed ones' between)
            end = at + int(counts[lo:hi].sum(dtype=np.int64))
            code.append(cols.code[lo:hi])
            count.append(counts[lo:hi])
            flat.append(new_at[cols.flat[at:end]])
            at, old = end, hi
    return frozen(*(np.concatenate(parts) for parts in (code, count, flat)))


def _all_used(instrs, out: list, uses, changed: list, rewrite: dict, appended: list, new_at: np.ndarray) -> bool:
    """Whether every operation of the spliced trace `out` is used (then none is dead:
    in SSA order the last used one is an output, and so on down; Trace._all_live).
    The trace's were (splice checks), so only what lost a use can be unused: an
    argument of a changed instruction, an appended one. Counted, not re-read."""
    lost = Counter(chain.from_iterable(instrs[c][1] for c in changed))   # (old vars)
    used_by_new = Counter(chain.from_iterable(out[k][1] for k in appended))   # (new vars)
    for r in rewrite:   # a rebuilt variable's users outside the changed ones are copies
        if uses[r] > lost[r]:
            used_by_new[int(new_at[r])] += 1
    for a in lost:
        if new_at[a] >= 0 and uses[a] == lost[a] and not used_by_new[int(new_at[a])]:
            return False
    return all(map(used_by_new.__getitem__, appended))


def _near_copies(facts, emitted_from: set, changed: list, new_at: np.ndarray) -> list:
    """The copied sums and negations (new vars) with an argument that an appended
    instruction has or is: an argument of a copy is new_at[v] for an old v, and that
    is an appended instruction's argument or itself only for the v that emit read
    (its terms) or built (the rewritten chains), `emitted_from`."""
    near = np.zeros(len(facts.uses), bool)   # (a mask, not np.isin: a tenth of its cost)
    near[np.fromiter(emitted_from, np.intp, len(emitted_from))] = True
    users = facts.sums[near[facts.sum_args[:, 0]] | near[facts.sum_args[:, 1]]].tolist()
    users += facts.negs[near[facts.neg_args]].tolist()
    gone = set(changed)   # (rebuilt or left out: not copies)
    return [int(new_at[v]) for v in users if v not in gone]


def _check_keys(out: list, appended: list, copies: list) -> None:
    """Unsafe where the builder would have shared two sums of one key (its
    hash-consing: add's arguments in either order). The trace had none, but an
    appended sum may have the key of another, or of a copy that now uses an appended
    chain: then both use an appended sum or an argument of one."""
    keys = [(op, *sorted(args)) if op == "add" else (op, *args)
            for op, args, _, _ in map(out.__getitem__, appended + copies)]
    if len(set(keys)) != len(keys):
        raise Unsafe

