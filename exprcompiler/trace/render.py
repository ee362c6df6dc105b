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
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
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
_text = itemgetter(0)   # of a (text, prec)


def op_form(op: _ops.OpDef, spell: Spelling) -> tuple:
    """How `spell` writes `op`, for format_op: (_COPY,), (_OWN,) (the op's own fmt),
    ("infix", symbol, precedence, arity) or ("call", name). A renderer works it out once per op."""
    if op.name == "copy":
        return (_COPY,)
    if op.fmt is not None:
        return (_OWN,)
    if not spell.as_call(op):
        return ("infix", spell.symbol(op), op.prec, op.arity)
    return ("call", spell.call(op))


def format_op(op: _ops.OpDef, args: list[tuple[str, int]], spell: Spelling,
              attrs: tuple = (), form: Optional[tuple] = None) -> tuple[str, int]:
    """Text and precedence of `op` applied to already rendered arguments (`form`:
    op_form(op, spell), if known)."""
    form = form or op_form(op, spell)
    kind = form[0]
    if kind == "infix":
        _, sym, prec, arity = form
        if arity == 1:
            text, p = args[0]
            return (f"{sym}({text})" if p <= prec else sym + text), prec
        (lt, lp), (rt, rp) = args
        if prec == PREC_POW:   # right-associative
            lpar, rpar = lp <= prec, rp < prec
        else:                  # left-associative; keep the tree's grouping exactly
            lpar, rpar = lp < prec, rp <= prec
        return f"{f'({lt})' if lpar else lt} {sym} {f'({rt})' if rpar else rt}", prec
    if kind == "call":
        items = list(map(_text, args))
        if attrs:
            items += [f"{k}={attr_text(k, v)}" for k, v in attrs]
        return f"{form[1]}({', '.join(items)})", PREC_ATOM
    if kind == _COPY:
        return args[0]
    return op.fmt(op, args, dict(attrs), spell.target)


def use_counts(trace: Trace) -> list[int]:
    # counted by Counter's C loop over every argument (a Python loop costs ~10x)
    counts = Counter(chain.from_iterable(map(itemgetter(1), trace.instrs)))
    counts.update(v for _, v in trace.outputs)
    uses = [0] * len(trace.instrs)
    for a, k in counts.items():
        uses[a] = k
    return uses


def named_vars(trace: Trace, uses: Optional[list[int]] = None) -> list[bool]:
    """True where a variable gets its own line/statement; False where it is inlined.
    `uses`: use_counts(trace), if known."""
    uses = use_counts(trace) if uses is None else uses
    instrs = trace.instrs
    named = [op != "const" and (label is not None or k > 1 or op == "input" or op == "copy")
             for op, label, k in zip(map(itemgetter(0), instrs), trace.labels, uses)]
    for _, v in trace.outputs:
        named[v] = instrs[v].op != "const"
    return named


class Renderer:
    """Renders every variable once, in trace order.

    `name_of(i)` gives the name of a named variable; `expr(i)` the (text, prec) by
    which a use refers to variable i; `rhs(i)` the right-hand side of i's line."""

    def __init__(self, trace: Trace, spell: Spelling, name_of: Callable[[int], str],
                 named: Optional[list[bool]] = None, rhs_all: bool = False):
        """`rhs_all`: render every named variable's right-hand side (but inputs') in the
        same pass, for a caller that takes them all: `rhs_texts`, by variable (None for
        inputs and inlined variables), which rhs(i) then looks up."""
        self.trace = trace
        self.spell = spell
        self.named = named = named if named is not None else named_vars(trace)
        self._forms: dict[str, tuple] = {}   # op name -> (OpDef, op_form)
        own = self._own = self._own_formats()
        if own is None:
            own = range(len(trace.instrs))   # all
        self.rhs_texts: Optional[list] = [None] * len(trace.instrs) if rhs_all else None
        rhs = self.rhs_texts
        expr: list[tuple[str, int]] = []
        self._expr = expr
        append, format_own, forms, const = expr.append, self._format, self._forms, spell.const
        # once per variable: Renderer._format without its frame, nor _render's
        for i, ins in enumerate(trace.instrs):
            op, args, attrs, _ = ins
            if op == "const":
                text = const(ins.value)
                append((text, const_prec(text)))
                continue
            is_named = named[i]
            if is_named:
                append((name_of(i), PREC_ATOM))
                if rhs is None or op == "input":
                    continue
            if i in own:
                text = format_own(i)
            else:
                generic = forms.get(op) or self._generic(op)
                if len(args) == 2:   # most: a list display costs a third of a comprehension
                    a, b = args
                    operands = [expr[a], expr[b]]
                else:
                    operands = [expr[a] for a in args]
                text = format_op(generic[0], operands, spell, attrs, generic[1])
            if is_named:
                rhs[i] = text[0]
            else:
                append(text)

    def _own_formats(self) -> Optional[set[int]]:
        """The variables that a subclass's _format spells itself (None: all of them,
        the default for a subclass that overrides it); the others are spelled as
        Renderer._format does, without its frame."""
        return None if type(self)._format is not Renderer._format else set()

    def _generic(self, op_name: str) -> tuple:
        op = _ops.OPS[op_name]
        form = self._forms[op_name] = (op, op_form(op, self.spell))
        return form

    def _render(self, i: int) -> tuple[str, int]:
        own = self._own
        return self._format(i) if own is None or i in own else Renderer._format(self, i)

    def _format(self, i: int) -> tuple[str, int]:
        ins = self.trace.instrs[i]
        generic = self._forms.get(ins.op) or self._generic(ins.op)
        expr = self._expr
        return format_op(generic[0], [expr[a] for a in ins.args], self.spell, ins.attrs, generic[1])

    def expr(self, i: int) -> tuple[str, int]:
        return self._expr[i]

    def rhs(self, i: int) -> str:
        done = self.rhs_texts and self.rhs_texts[i]
        return done or self._render(i)[0]

    def operands_inline(self, i: int) -> bool:
        """True when every argument of i is a named variable or a constant, so that
        substituting values for names gives the one-step arithmetic of the table."""
        return all(self.named[a] or self.trace.instrs[a].op == "const"
                   for a in self.trace.instrs[i].args)
