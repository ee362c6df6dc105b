"""Pattern helpers for the stability rules: small questions about one variable.

Where it sits: rules.py writes each rule's pattern with these; rewrite.py asks them
of a Builder (the trace being rebuilt, so a pattern sees its arguments already
rewritten) or of a TraceView (a dry run over a trace, to skip rebuilding a trace no
rule touches). Both answer `instrs`, `source_of` (through named copies) and
`const_value`. Every helper returns the matched parts or None; none of them builds.
"""

from __future__ import annotations

from typing import Optional

from ..trace.ir import Trace


class TraceView:
    """A finished trace seen through the Builder's matching interface."""

    def __init__(self, trace: Trace):
        self.instrs = trace.instrs
        source, cval = [], []
        for i, ins in enumerate(trace.instrs):
            if ins.op == "copy":
                source.append(source[ins.args[0]])
                cval.append(cval[ins.args[0]])
            else:
                source.append(i)
                cval.append(ins.value if ins.op == "const" else None)
        self._source, self._cval = source, cval

    def source_of(self, var: int) -> int:
        return self._source[var]

    def const_value(self, var: int) -> Optional[float]:
        return self._cval[var]


def node(b, v):
    """The instruction that computes `v` (through named copies)."""
    return b.instrs[b.source_of(v)]


def same(b, u, w) -> bool:
    return b.source_of(u) == b.source_of(w)


def arg(b, v, op: str):
    """x when v = op(x) (a one-argument op), else None."""
    n = node(b, v)
    return n.args[0] if n.op == op else None


def args(b, v, op: str):
    """The arguments when v = op(...), else None."""
    n = node(b, v)
    return n.args if n.op == op else None


def is_const(b, v, value: float) -> bool:
    """v is the scalar constant `value` exactly (a rule that matches 1 must not match
    1.0000000000000002: log(1.0000000000000002 + x) is not log1p(x))."""
    c = b.const_value(v)
    return c is not None and c == value and b.instrs[v].shape == ()


def plus_const(b, v, value: float):
    """u when v = value + u or u + value, else None."""
    a = args(b, v, "add")
    if a is None:
        return None
    if is_const(b, a[0], value):
        return a[1]
    return a[0] if is_const(b, a[1], value) else None


def const_minus(b, v, value: float):
    """u when v = value - u, else None."""
    a = args(b, v, "sub")
    return a[1] if a is not None and is_const(b, a[0], value) else None


def minus_const(b, v, value: float):
    """u when v = u - value or u + (-value), else None."""
    a = args(b, v, "sub")
    if a is not None and is_const(b, a[1], value):
        return a[0]
    return plus_const(b, v, -value)


def negated(b, v):
    """u when v = -u or 0 - u, else None."""
    u = arg(b, v, "neg")
    return u if u is not None else const_minus(b, v, 0.0)


def squared(b, v):
    """a when v = square(a), a**2 or a*a, else None."""
    n = node(b, v)
    if n.op == "square":
        return n.args[0]
    if n.op == "pow" and is_const(b, n.args[1], 2.0):
        return n.args[0]
    if n.op == "mul" and same(b, n.args[0], n.args[1]):
        return n.args[0]
    return None


def summands(b, v, limit: int = 64):
    """The terms of a tree of additions rooted at v, left to right (iteratively), or
    None past `limit` terms."""
    out, stack = [], [v]
    while stack:
        w = stack.pop()
        a = args(b, w, "add")
        if a is None:
            out.append(w)
            if len(out) > limit:
                return None
        else:
            stack += [a[1], a[0]]
    return out


__all__ = ["TraceView", "node", "same", "arg", "args", "is_const", "plus_const", "const_minus",
           "minus_const", "negated", "squared", "summands"]
