"""Rendering a trace's instructions as expressions: shared by the table printer and
the code generators.

Which variables get a line of their own: every labelled variable (v_3, v̇_3, v̄_3),
every input, and every temporary used more than once. Constants and single-use
temporaries (the inner terms of a derivative rule, e.g. cos(v_1) in
v̄_1 = v̄_1 + v̄_2 · cos(v_1)) are inlined into their one use, with the minimal
parentheses the precedence table requires. Everything here is a loop over the
trace in order: no recursion, whatever the depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from .. import ops as _ops
from ..ops import PREC_ATOM, PREC_NEG, PREC_POW
from ..tensor_rules import attr_text
from .ir import Trace


@dataclass(frozen=True)
class Spelling:
    """How one target spells operators, calls and constants."""
    symbol: Callable[[_ops.OpDef], str]          # infix/prefix symbol of an operator
    call: Callable[[_ops.OpDef], str]            # callable name of a function op
    const: Callable[[float], str]                # literal of a constant
    as_call: Callable[[_ops.OpDef], bool] = lambda op: op.infix is None  # f(a, b) form?
    target: str = "table"                        # "table", "numpy" or "c", for ops' own forms


def target_spelling(field: str, nan: str, inf: str) -> Spelling:
    """The spelling of a target language whose op names are the op table's `field`
    ("numpy", "c"): an operator whose spelling there is not its infix symbol is called
    as a function (pow is np.power and C's pow)."""
    def spell(op: _ops.OpDef) -> str:
        return getattr(op, field)

    def const(value: float) -> str:
        if math.isnan(value):
            return nan
        if math.isinf(value):
            return inf if value > 0 else "-" + inf
        return repr(float(value))

    return Spelling(symbol=spell, call=spell, const=const,
                    as_call=lambda op: op.infix is None or spell(op) != op.infix, target=field)


def const_prec(text: str) -> int:
    return PREC_NEG if text.startswith(("-", "−")) else PREC_ATOM


_COPY, _OWN = "copy", "fmt"


def op_form(op: _ops.OpDef, spell: Spelling) -> tuple:
    """How `spell` writes `op`, for format_op: (_COPY,), (_OWN,) (the op's own fmt),
    ("infix", symbol) or ("call", name). A renderer works it out once per op."""
    if op.name == "copy":
        return (_COPY,)
    if op.fmt is not None:
        return (_OWN,)
    if not spell.as_call(op):
        return ("infix", spell.symbol(op))
    return ("call", spell.call(op))


def format_op(op: _ops.OpDef, args: list[tuple[str, int]], spell: Spelling,
              attrs: tuple = (), form: Optional[tuple] = None) -> tuple[str, int]:
    """Text and precedence of `op` applied to already rendered arguments (`form`:
    op_form(op, spell), if known)."""
    form = form or op_form(op, spell)
    kind = form[0]
    if kind == "infix":
        sym = form[1]
        prec = op.prec
        if op.arity == 1:
            text, p = args[0]
            return (f"{sym}({text})" if p <= prec else sym + text), prec
        (lt, lp), (rt, rp) = args
        if prec == PREC_POW:   # right-associative
            lpar, rpar = lp <= prec, rp < prec
        else:                  # left-associative; keep the tree's grouping exactly
            lpar, rpar = lp < prec, rp <= prec
        return f"{f'({lt})' if lpar else lt} {sym} {f'({rt})' if rpar else rt}", prec
    if kind == "call":
        items = [t for t, _ in args] + [f"{k}={attr_text(k, v)}" for k, v in attrs]
        return f"{form[1]}({', '.join(items)})", PREC_ATOM
    if kind == _COPY:
        return args[0]
    return op.fmt(op, args, dict(attrs), spell.target)


def use_counts(trace: Trace) -> list[int]:
    uses = [0] * len(trace.instrs)
    for ins in trace.instrs:
        for a in ins.args:
            uses[a] += 1
    for _, v in trace.outputs:
        uses[v] += 1
    return uses


def named_vars(trace: Trace) -> list[bool]:
    """True where a variable gets its own line/statement; False where it is inlined."""
    uses = use_counts(trace)
    outs = {v for _, v in trace.outputs}
    named = []
    for i, ins in enumerate(trace.instrs):
        if ins.op == "const":
            named.append(False)
        elif ins.op in ("input", "copy") or trace.labels[i] is not None:
            named.append(True)
        else:
            named.append(uses[i] > 1 or i in outs)
    return named


class Renderer:
    """Renders every variable once, in trace order.

    `name_of(i)` gives the name of a named variable; `expr(i)` the (text, prec) by
    which a use refers to variable i; `rhs(i)` the right-hand side of i's line."""

    def __init__(self, trace: Trace, spell: Spelling, name_of: Callable[[int], str],
                 named: Optional[list[bool]] = None):
        self.trace = trace
        self.spell = spell
        self.named = named if named is not None else named_vars(trace)
        self._forms: dict[str, tuple] = {}   # op name -> op_form
        self._expr: list[tuple[str, int]] = []
        for i, ins in enumerate(trace.instrs):
            if ins.op == "const":
                text = spell.const(ins.value)
                self._expr.append((text, const_prec(text)))
            elif self.named[i]:
                self._expr.append((name_of(i), PREC_ATOM))
            else:
                self._expr.append(self._format(i))

    def _format(self, i: int) -> tuple[str, int]:
        ins = self.trace.instrs[i]
        op = _ops.OPS[ins.op]
        form = self._forms.get(ins.op)
        if form is None:
            form = self._forms[ins.op] = op_form(op, self.spell)
        expr = self._expr
        return format_op(op, [expr[a] for a in ins.args], self.spell, ins.attrs, form)

    def expr(self, i: int) -> tuple[str, int]:
        return self._expr[i]

    def rhs(self, i: int) -> str:
        return self._format(i)[0]

    def operands_inline(self, i: int) -> bool:
        """True when every argument of i is a named variable or a constant, so that
        substituting values for names gives the one-step arithmetic of the table."""
        return all(self.named[a] or self.trace.instrs[a].op == "const"
                   for a in self.trace.instrs[i].args)
