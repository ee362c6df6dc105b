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

from itertools import chain, compress
from operator import itemgetter, not_
from typing import Callable

from ..trace.ir import Instr, Trace, _new_tuple, primal_labels
from ..trace.ir_trace import renumbered

_OP, _ARGS, _SHAPE = itemgetter(0), itemgetter(1), itemgetter(3)
_SUMS = frozenset(("add", "sub", "neg"))


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


def splice(trace: Trace, rewrite: dict, skip: set, emitter: Callable, uses) -> Trace:
    """`trace` with each variable r of `rewrite` built by emit(r, vmap) at its place
    (emit = emitter(builder, rewrite, {}), given add, sub and neg to build with) and
    the variables of `skip` left out, as replaying it into a Builder would give;
    `uses`: each variable's number of uses (arguments and outputs), an array."""
    instrs = trace.instrs
    n, n_in = len(instrs), len(trace.inputs)
    ops = list(map(_OP, instrs))
    if "copy" in ops or any(map(_SHAPE, instrs)) or ops[:n_in] != ["input"] * n_in \
            or [v for _, v in trace.inputs] != list(range(n_in)):
        raise Unsafe
    # Builder.finish leaves no dead code, so every operation is used (dead code ends
    # in an unused operation); a replay would drop what is not
    if not uses[n_in:].all():
        raise Unsafe
    changed = sorted(skip.union(rewrite))
    out = list(instrs[:changed[0]])
    new_of: list = list(range(changed[0])) + [None] * (n - changed[0])   # old var -> new var
    appender = _Appender(out)
    appended = appender.appended
    emit = emitter(appender, rewrite, {})
    for here, end in zip(changed, changed[1:] + [n]):
        if here in rewrite:
            new_of[here] = emit(here, new_of)
        # the copies up to the next change, renumbered
        copied = instrs[here + 1:end]
        new_of[here + 1:end] = range(len(out), len(out) + len(copied))
        out += renumbered(copied, new_of)
    # The builder would have shared two sums with one key (its hash-consing: add's
    # arguments in either order). The trace had none, but an appended sum may have
    # the key of another, or a copied one that now uses an appended chain: then both
    # use an appended sum or an argument of one.
    near = set(appended)
    near.update(chain.from_iterable(map(_ARGS, map(out.__getitem__, appended))))
    sums = list(compress(out, map(_SUMS.__contains__, map(_OP, out))))
    keys = [(op, *sorted(args)) if op == "add" else (op, *args)
            for op, args, _, _ in compress(sums, map(not_, map(near.isdisjoint, map(_ARGS, sums))))]
    if len(set(keys)) != len(keys):
        raise Unsafe
    return Trace(out, primal_labels(out), [(name, new_of[v]) for name, v in trace.outputs],
                 trace.source, _inputs=trace.inputs)
