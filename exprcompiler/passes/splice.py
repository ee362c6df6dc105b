"""Rewriting a few instructions of a finished trace without replaying all of it.

Where it sits: share_sums regroups a handful of additive chains in a trace a front
end has just finished. Replaying the whole trace into a Builder with those chains
rewritten (share_sums.regroup_by_replay) costs 4-5 µs an operation; `splice` copies
the instructions instead, renumbered, and appends the rewritten chains where the
replay would build them. The result is the replay's, instruction for instruction,
whenever the builder would only have appended: no constant to fold, no identity
to apply (x + -y, --x, a zero), no instruction built twice. Wherever it would have
done more, or the trace is not what a front end's Builder.finish leaves (scalars,
inputs first, no named copies, nothing dead), `splice` raises Unsafe and the caller
replays.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import itemgetter
from typing import Callable

import numpy as np

from ..trace.columns import COPY, INPUT, frozen, made
from ..trace.ir import Instr, Trace, _new_tuple, primal_labels
from ..trace.ir_trace import renumbered

_SHAPE = itemgetter(3)


class Unsafe(Exception):
    """A Builder would do more than append here: replay instead."""


class _Appender:
    """The Builder's add, sub and neg as `splice`'s chains call them: an instruction
    appended to `out`, or Unsafe where the Builder would fold or simplify it."""

    def __init__(self, out: list):
        self.out = out
        self.appended: list[int] = []

    def _operand(self, x: int) -> Instr:
        ins = self.out[x]
        # a negation or a zero brings in an identity (x + -y -> x - y, --x, x - 0.0)
        if ins.op == "neg" or (ins.op == "const" and not ins.value):
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
    """The map old var -> new var as `emit` reads it, keeping the vars it read."""

    def __init__(self, new_of: list):
        self.new_of = new_of
        self.read: set = set()

    def __getitem__(self, v: int) -> int:
        self.read.add(v)
        return self.new_of[v]


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
    if (code == COPY).any() or any(map(_SHAPE, instrs)) or (code[:n_in] != INPUT).any() \
            or [v for _, v in trace.inputs] != list(range(n_in)):
        raise Unsafe
    # Builder.finish leaves no dead code, so every operation is used (dead code ends
    # in an unused operation); a replay would drop what is not
    if not facts.uses[n_in:].all():
        raise Unsafe
    changed = sorted(skip.union(rewrite))
    start = changed[0]
    out = list(instrs[:start])
    new_of: list = list(range(start)) + [None] * (n - start)   # old var -> new var
    new_at = np.arange(n, dtype=cols.flat.dtype)   # the same as an array (-1: None), for the columns
    appender = _Appender(out)
    appended = appender.appended
    emit = emitter(appender, rewrite, {})
    reads = _Reads(new_of)
    # the result after `start` in runs: (True, lo, hi) appended, out[lo:hi]; (False, lo, hi) copied, instrs[lo:hi]
    runs = []
    for here, end in zip(changed, changed[1:] + [n]):
        new_at[here] = -1
        if here in rewrite:
            at = len(out)
            new_at[here] = new_of[here] = emit(here, reads)
            runs.append((True, at, len(out)))   # (none where the chain was built before)
        # the copies up to the next change, renumbered
        copied = instrs[here + 1:end]
        new_of[here + 1:end] = range(len(out), len(out) + len(copied))
        new_at[here + 1:end] = np.arange(len(out), len(out) + len(copied), dtype=new_at.dtype)
        runs.append((False, here + 1, end))
        out += renumbered(copied, new_of)
    _check_keys(out, appended, _near_copies(facts, reads.read.union(rewrite), changed, new_of))
    spliced = _spliced_columns(cols, start, out, runs, new_at)
    labels = primal_labels(out, spliced.code)
    return Trace(out, labels, [(name, new_of[v]) for name, v in trace.outputs],
                 trace.source, _inputs=trace.inputs, _columns=spliced,
                 _all_live=_all_used(instrs, out, facts.uses, changed, rewrite, appended, new_of))


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


def _all_used(instrs, out: list, uses, changed: list, rewrite: dict, appended: list, new_of: list) -> bool:
    """Whether every operation of the spliced trace `out` is used (then none is dead:
    in SSA order the last used one is an output, and so on down; Trace._all_live).
    The trace's were (splice checks), so only what lost a use can be unused: an
    argument of a changed instruction, an appended one. Counted, not re-read."""
    lost = Counter(chain.from_iterable(instrs[c][1] for c in changed))   # (old vars)
    used_by_new = Counter(chain.from_iterable(out[k][1] for k in appended))   # (new vars)
    for r in rewrite:   # a rebuilt variable's users outside the changed ones are copies
        if uses[r] > lost[r]:
            used_by_new[new_of[r]] += 1
    for a in lost:
        if new_of[a] is not None and uses[a] == lost[a] and not used_by_new[new_of[a]]:
            return False
    return all(map(used_by_new.__getitem__, appended))


def _near_copies(facts, emitted_from: set, changed: list, new_of: list) -> list:
    """The copied sums and negations (new vars) with an argument that an appended
    instruction has or is: an argument of a copy is new_of[v] for an old v, and that
    is an appended instruction's argument or itself only for the v that emit read
    (its terms) or built (the rewritten chains), `emitted_from`."""
    near = np.fromiter(emitted_from, np.intp, len(emitted_from))
    users = facts.sums[np.isin(facts.sum_args, near).any(axis=1)].tolist()
    users += facts.negs[np.isin(facts.neg_args, near)].tolist()
    gone = set(changed)   # (rebuilt or left out: not copies)
    return [new_of[v] for v in users if v not in gone]


def _check_keys(out: list, appended: list, copies: list) -> None:
    """Unsafe where the builder would have shared two sums of one key (its
    hash-consing: add's arguments in either order). The trace had none, but an
    appended sum may have the key of another, or of a copy that now uses an appended
    chain: then both use an appended sum or an argument of one."""
    keys = [(op, *sorted(args)) if op == "add" else (op, *args)
            for op, args, _, _ in map(out.__getitem__, appended + copies)]
    if len(set(keys)) != len(keys):
        raise Unsafe

