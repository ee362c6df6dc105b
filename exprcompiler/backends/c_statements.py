"""The C backend's statements: from a scalar trace with its names, one (target,
right-hand side, names read) per named variable and output (_statements), as the
renderer spells them (SelectRenderer: a where on an inlined comparison selects on the
comparison itself, conditions_inlined says which); then, for a split kernel, without
its plain copies (without_copies), and for a one-function kernel, as C lines (_body).

Where it sits: c_backend.generate_c, after c_forms and naming.assign_names and
before the kernel's layout (c_kernel for one function, c_split for parts).
"""

from __future__ import annotations

import re

from .. import ops as _ops
from ..trace.ir import Trace
from ..trace.render import Renderer

# The comparison ops, as C's operators.
COMPARISONS = {name: _ops.OPS[name].infix for name in ("lt", "le", "gt", "ge", "eq", "ne")}


class SelectRenderer(Renderer):
    """The C renderer, but a `where` whose condition is an inlined comparison selects on
    the comparison itself: xc_select(a == b, p, q), not xc_where(xc_eq(a, b), p, q),
    which makes a 1.0/0.0 double of the mask and compares that with 0 again (gcc keeps
    both: an `and` and a second comparison a where). The same value: a NaN compares
    false either way. Derivative rules write such wheres (maximum's tie, hypot's zero,
    the stable forms' branches): value and gradient in cache, 0.87-0.96x the time of
    sqrt(1 + x**2), hypot3, maximum(x, 0) * y + minimum(x, y), 0.97-0.99x that of
    logaddexp, x*log(x), maximum. Not
    for a split kernel's parts: those in the vector extension (c_lanes) call helpers
    on xc_v values, which a mask is not."""

    def __init__(self, trace: Trace, *args, **kw):
        instrs, named = trace.instrs, kw["named"]
        self._selects = {i for i, ins in enumerate(instrs)
                         if ins.op == "where" and instrs[ins.args[0]].op in COMPARISONS and not named[ins.args[0]]}
        super().__init__(trace, *args, **kw)

    def _own_formats(self) -> set:
        return self._selects

    def _format(self, i: int) -> tuple[str, int]:
        if i not in self._selects:
            return Renderer._format(self, i)
        c, p, q = self.trace.instrs[i].args
        cmp = self.trace.instrs[c]
        a, b = (text if prec > _ops.PREC_CMP else f"({text})" for text, prec in map(self.expr, cmp.args))
        return f"xc_select({a} {COMPARISONS[cmp.op]} {b}, {self.expr(p)[0]}, {self.expr(q)[0]})", _ops.PREC_ATOM


def conditions_inlined(trace: Trace, named: list) -> list:
    """`named`, but a temporary comparison that only wheres read, as their condition,
    and whose operands are named or constants, inlined into each (maximum's tie a == b,
    read by both partials): each where then selects on the comparison (SelectRenderer),
    which gcc computes once. Its statement's reads go to its first reader only (only a
    split kernel's parts look at them, and they keep the comparison named)."""
    instrs, labels = trace.instrs, trace.labels
    shared = {i for i, ins in enumerate(instrs)
              if named[i] and ins.op in COMPARISONS and labels[i] is None
              and all(named[a] or instrs[a].op == "const" for a in ins.args)}
    shared -= {v for _, v in trace.outputs}
    for ins in instrs if shared else ():
        for k, a in enumerate(ins.args):
            if a in shared and (k or ins.op != "where"):
                shared.discard(a)
    if not shared:
        return named
    named = list(named)
    for i in shared:
        named[i] = False
    return named


def _statements(trace: Trace, names: list, r: Renderer) -> list[tuple[str, str, set]]:
    """(target, right-hand side, names read) per statement in order; the target of an
    output is "out{k}"."""
    inline_reads: list = [None] * len(trace.instrs)

    def reads_of(args) -> set:
        parts = []
        for a in args:
            if r.named[a]:
                parts.append({names[a]})
            elif inline_reads[a] is not None:  # a temporary with one use: move its set
                parts.append(inline_reads[a])
                inline_reads[a] = None
        if not parts:
            return set()
        parts.sort(key=len)
        merged = parts.pop()  # merge small into large: n log n on long inlined chains
        for p in parts:
            merged |= p
        return merged

    stmts = []
    for i, ins in enumerate(trace.instrs):
        if ins.op == "input":
            continue
        if r.named[i]:
            stmts.append((names[i], r.rhs(i), reads_of(ins.args)))
        elif ins.op != "const":
            inline_reads[i] = reads_of(ins.args)
    for k, (_, v) in enumerate(trace.outputs):
        stmts.append((f"out{k}", r.expr(v)[0], reads_of([v]) if r.named[v] else set(inline_reads[v] or ())))
    return stmts


_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def without_copies(stmts: list) -> list:
    """The statements with each plain copy `a = b` dropped and a read as b after it,
    where that is the same value: a is not assigned again, and b not before a's last
    read (an adjoint is assigned more than once: v4_bar = v4_bar + ...). The reverse
    sweep passes an adjoint on unchanged through +, - and copies (v3 = 2 + v2 gives
    v2_bar = v3_bar): 3,561 of the 10^4-operation random gradient's 23,183 statements
    are copies (2,960 dropped here), 274 of the 6-link pendulum Jacobian's 945 (260).
    gcc hardly notices the copies themselves (the 10^4-operation gradient: 5.09 /
    5.20 s of compiler CPU with them, 5.14 / 5.30 without, min / median of 2), but
    between parts of a split kernel each takes a tape slot: the 10-link Jacobian
    went from 4 units to 3 and its kernel from 5.81 to 4.38 ms at 10^4 points (min
    of 4 interleaved rounds, load 4-5). Names only: the same operations on the same
    values, bit for bit. Split kernels only: a one-function kernel, the one people
    read, keeps the sweep's own names."""
    writes: dict = {}
    last_read: dict = {}
    for k, (target, _, reads) in enumerate(stmts):
        writes.setdefault(target, []).append(k)
        for nm in reads:
            last_read[nm] = k
    renamed: dict = {}
    out = []

    def source(m) -> str:
        return renamed.get(m.group(0), m.group(0))

    for k, (target, rhs, reads) in enumerate(stmts):
        if not renamed.keys().isdisjoint(reads):  # (reads & renamed.keys() walks every key)
            rhs = _NAME.sub(source, rhs)
            reads = {renamed.get(nm, nm) for nm in reads}
        if len(reads) == 1 and rhs in reads and writes[target][-1] == k \
                and not (target.startswith("out") and target[3:].isdigit()):
            later = [w for w in writes.get(rhs, ()) if w > k]
            if not later or later[0] >= last_read.get(target, k):
                renamed[target] = rhs
                continue
        out.append((target, rhs, reads))
    return out


def _body(stmts, pad: str = " " * 4) -> list[str]:
    """The one-point function's statement lines: inputs are its parameters, output k
    goes to *out{k}. (A split kernel's parts: c_split.part_body.)"""
    lines, declared = [], set()
    for target, rhs, _ in stmts:
        if target.startswith("out") and target[3:].isdigit():
            lines.append(f"{pad}*{target} = {rhs};")
        else:  # adjoints are assigned more than once
            lines.append(f"{pad}{'' if target in declared else 'double '}{target} = {rhs};")
            declared.add(target)
    return lines


__all__ = ["COMPARISONS", "SelectRenderer", "conditions_inlined", "without_copies"]
