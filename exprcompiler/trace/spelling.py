"""How a target spells one operation: the `Spelling` of a target language and
`format_op`, the text and precedence of an op applied to already rendered operands.

Where it sits: under the renderer (render.py), which renders a whole trace, and
beside it for the code that writes a single operation (the table printer, the C
tensor code, the VM source, shape binding). Minimal parentheses come from the op
table's precedences (ops.PREC_*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable, Optional

from .. import ops as _ops
from ..ops import PREC_ATOM, PREC_NEG, PREC_POW
from ..tensor_rules import attr_text


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


def _fast_form(op: _ops.OpDef, form: tuple) -> tuple:
    """How the Renderer's loop spells `op` without format_op (same text): ("infix2",
    symbol, precedence, and the precedences below which the left and right operands
    take parentheses), ("call1", name + "(") for a call of one operand, ("callN",
    name + "(") of two or three (the keys' renderers only: _fast_text), ("infix1",
    symbol, precedence) for a prefix operator, ("copy",); ("format_op",) otherwise."""
    if form[0] == "infix":
        _, sym, prec, arity = form
        if arity == 1:
            return ("infix1", sym, prec)
        # as format_op: ** is right-associative; the others keep the tree's grouping
        return ("infix2", sym, prec, prec + 1, prec) if prec == PREC_POW else ("infix2", sym, prec, prec, prec + 1)
    if form[0] == "call" and op.arity == 1:
        return ("call1", form[1] + "(")
    if form[0] == "call" and op.arity in (2, 3):
        return ("callN", form[1] + "(")
    if form[0] == _COPY:
        return ("copy",)
    return ("format_op",)


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

