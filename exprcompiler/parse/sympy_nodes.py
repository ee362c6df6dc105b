"""The SymPy front end's node tables and checks: which SymPy classes become which ops
(_HEADS from the op table's `sympy_head`, _RENAMED, the Piecewise conditions), the check
that a node is one the converter translates (_check, memoised per class in _CHECKED),
and the small readers of SymPy numbers and of nodes for error messages. Used by
parse/from_sympy.py's converter (and its matrix half, through _show).
"""

from __future__ import annotations

import math

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean
from sympy.matrices import MatrixBase

from .. import ops as _ops
from ..errors import ConversionError
from . import from_sympy_matrix as _matrix


_SHOW = 80            # characters of an offending expression shown in an error
_MINUS_ONE = sympy.S.NegativeOne   # (a singleton: -x is Mul(-1, x))
_E = sympy.E
_EXACT = 2 ** 53      # integers below this are exact as floats


def _head_table() -> dict:
    """SymPy function class -> OpDef, from the op table's `sympy_head`s.

    Keyed by the class object, not its name: heads that are not SymPy classes
    (``sqrt`` is a function returning a Pow; ``square``, ``relu``... are not in
    SymPy at all) drop out, and a user's ``Function('relu')`` is not mistaken for
    the op of that name.
    """
    table = {}
    for op in _ops.OPS.values():
        cls = getattr(sympy, op.sympy_head, None) if op.sympy_head else None
        if isinstance(cls, type) and issubclass(cls, sympy.Basic):
            table[cls] = op
    return table


_HEADS = _head_table()

# SymPy's Heaviside(x) means H(0) = 1/2; older SymPy versions store only x.
_DEFAULT_TRAILING_ARGS = {sympy.Heaviside: (0.5,)}

# SymPy functions that become other ops than their name says: SymPy's sinc(x) = sin(x)/x
# is NumPy's normalized sinc (the op's) at x/π; polygamma(0, x) is digamma(x).
_RENAMED = {
    sympy.sinc: lambda b, args: b.sinc(b.div(args[0], math.pi)),
    sympy.polygamma: lambda b, args: (b.digamma(args[1]) if b.const_value(args[0]) == 0.0
                                      else b.polygamma(*args)),
}

# Piecewise((e1, c1), ..., (en, cn)) becomes where(c1, e1, where(c2, e2, ... where(cn, en,
# nan))): the first expression whose condition holds, as SymPy reads it, and NaN where
# none does (SymPy's value there is nan too); a last condition True (the usual
# "otherwise") is the innermost value itself. The derivative follows the branch taken,
# as where's. Conditions become 0/1 floats: relationals the comparison ops, And a product,
# Or a maximum, Not 1 - c. Conditions are accepted only inside a Piecewise.
_RELATIONS = {sympy.StrictLessThan: "lt", sympy.LessThan: "le", sympy.StrictGreaterThan: "gt",
              sympy.GreaterThan: "ge", sympy.Equality: "eq", sympy.Unequality: "ne"}
_CONDITIONS = (*_RELATIONS, sympy.And, sympy.Or, sympy.Not, type(sympy.true), type(sympy.false))
_BRANCHING = (sympy.Piecewise, ExprCondPair)


def _show(node) -> str:
    """str(node) cut to ~80 characters. SymPy's printer recurses (a deep node
    cannot be printed) and fails on some unevaluated nodes (nan*x compares nan < 0):
    those are described instead, so the error being reported is not lost."""
    try:
        text = str(node)
    except RecursionError:
        return f"{type(node).__name__}(...), nested too deeply to print"
    except Exception:
        return f"{type(node).__name__}(...), which SymPy cannot print"
    return text if len(text) <= _SHOW else text[:_SHOW - 3] + "..."


def _float(num) -> float:
    """A SymPy number (Integer, Rational, Float, oo, nan, pi, E...) as the nearest float."""
    try:
        if num.is_Rational:
            return num.p / num.q          # int / int is correctly rounded
        value = float(num)
    except OverflowError:
        raise ConversionError(f"number too large for a float: {_show(num)}") from None
    if math.isinf(value) and num.is_finite:   # (a Float of SymPy's precision past float64's range)
        raise ConversionError(f"number too large for a float: {_show(num)}")
    return value


def _is_negative(num) -> bool:
    """Whether the number `num` is negative (num.is_extended_negative; False for nan's
    None and for 0). A Rational's and a Float's sign is read as SymPy's own rules read it
    (its numerator; Float._eval_is_extended_negative), not through the assumption system:
    that took 70-90 µs the first time it was asked of a number object (one SymPy's own
    evaluation has not asked: a Float of an unevaluated expression; in a fresh process
    2, 1/2, 1 and -1, 0.4 ms of the bench's SymPy DAG)."""
    if num.is_Rational:
        return num.p < 0
    if num.is_Float:
        return bool(num.num < 0)
    return bool(num.is_extended_negative)


# Classes of plain nodes (no matrix, no condition) that passed _check: what it looks at
# there is the class's (is_Add, func, isinstance), so one full check per class. Only
# classes whose args are Basic's (_args, read directly by the converter: its methods
# read `node._args if type(node) in _CHECKED else node.args`, the tuple without the
# property's Python call, 200,000 of them at 10^5 operations).
_CHECKED: set = set()


def _checked(cls) -> None:
    if cls.args is sympy.Basic.args:
        _CHECKED.add(cls)


def _check(node) -> None:
    """Raise ConversionError unless `node` is a kind of node we translate."""
    if type(node) in _CHECKED:
        return
    if isinstance(node, MatrixBase):   # (an ImmutableMatrix is a MatrixExpr too)
        raise ConversionError(f"explicit SymPy matrices are not supported (in {_show(node)}): "
                              f"build matrix expressions from MatrixSymbols, or give a list of "
                              f"expressions for several outputs")
    if _matrix.is_matrix_node(node):
        _matrix.check(node, _show)
        return
    if not isinstance(node, sympy.Basic):
        hint = "; parse strings with exprcompiler's parser" if isinstance(node, str) else ""
        raise ConversionError(f"expected a SymPy expression, got {type(node).__name__}{hint}")
    if node.is_Symbol or node.is_Number or node.is_NumberSymbol:
        _checked(type(node))
        return                        # (checked first: a Symbol is also a Boolean)
    if isinstance(node, Boolean):
        if isinstance(node, _CONDITIONS):
            return                    # (from_sympy refuses one that is not in a Piecewise)
        raise ConversionError(f"unsupported SymPy condition {type(node).__name__!r} (in {_show(node)})")
    if node.is_Add or node.is_Mul or node.is_Pow or node.func in _HEADS or node.func in _RENAMED \
            or isinstance(node, _BRANCHING):
        _checked(type(node))
        return
    raise ConversionError(f"unsupported SymPy node {type(node).__name__!r} (in {_show(node)})")
