"""Trace -> SymPy: the reverse bridge, used by the tests as an oracle.

Any trace (a front end's, or a derivative pass's output) becomes one SymPy
expression per output, so the tests can check derivative traces against
``sympy.diff(to_sympy(trace)[0], x)``. Each op is translated through its op-table
entry (``op.sympy`` or the SymPy class named ``op.sympy_head``); nothing here
knows individual ops. The ``op.sympy`` forms get SymPy through the namespace of
trace/sympy_piecewise.py, whose Piecewise keeps a condition that holds a Piecewise as
built (SymPy's own would fold it through its solvers: a comparison of comparisons took
seconds to minutes). The forward bridge is `exprcompiler.parse.from_sympy`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import sympy
from sympy.core.parameters import evaluate as _evaluate

from .. import ops as _ops
from ..errors import ConversionError
from .ir import Trace
from .sympy_piecewise import Namespace

_MAX_DYADIC_DENOMINATOR = 1024


def sympy_number(value: float) -> sympy.Expr:
    """The SymPy number with exactly the value of the float `value`.

    Integral values become Integers and small dyadic fractions (0.5, 0.25, 1.5)
    Rationals, so ``pow(x, 2.0)`` differentiates to ``2*x`` and ``pow(x, 0.5)``
    is ``sqrt(x)``; the rest are 53-bit Floats (exact, no decimal rounding).
    """
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    frac = Fraction(value)
    if frac.denominator <= _MAX_DYADIC_DENOMINATOR and abs(frac.numerator) < 2 ** 53:
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(value)


def sympy_form(opname: str, namespace: Optional[Namespace] = None):
    """The function building `opname`'s SymPy expression from its arguments'. The op
    table's ``sympy=`` forms get SymPy through `namespace` (trace/sympy_piecewise.py:
    a Piecewise whose condition holds a Piecewise is kept as built, not folded through
    SymPy's solvers); one namespace per conversion lets it remember what it has seen."""
    op = _ops.OPS[opname]
    if op.sympy is not None:
        sp = namespace or Namespace()
        return lambda *args: op.sympy(sp, *args)
    head = getattr(sympy, op.sympy_head, None) if op.sympy_head else None
    if head is None:
        raise ConversionError(f"op {opname!r} has no SymPy form (give it sympy_head or sympy)")
    return head


def to_sympy(trace: Trace, *, evaluate: bool = True) -> tuple:
    """One SymPy expression per output of `trace`; inputs are real Symbols named as
    in the trace (derivative inputs such as ``x1.dot`` keep their dotted names).

    The walk over the trace is a loop, but SymPy's own automatic evaluation
    recurses into arguments, so a trace nested more than a few hundred deep needs
    ``evaluate=False`` (SymPy then keeps the expression exactly as built).
    """
    values: list = [None] * len(trace.instrs)
    forms: dict = {}
    namespace = Namespace()
    try:
        with _evaluate(evaluate):
            for i, ins in enumerate(trace.instrs):
                if ins.shape != ():
                    raise ConversionError(f"to_sympy handles scalar traces only; v{i} ({ins.op}) "
                                          f"has shape {ins.shape}")
                if ins.op == "input":
                    values[i] = sympy.Symbol(ins.name, real=True)
                elif ins.op == "const":
                    values[i] = sympy_number(ins.value)
                else:
                    if ins.op not in forms:
                        forms[ins.op] = sympy_form(ins.op, namespace)
                    values[i] = forms[ins.op](*(values[a] for a in ins.args))
    except RecursionError:
        raise ConversionError("trace too deep for SymPy's automatic evaluation; "
                              "call to_sympy(trace, evaluate=False)") from None
    return tuple(values[v] for _, v in trace.outputs)


__all__ = ["to_sympy", "sympy_number", "sympy_form"]
