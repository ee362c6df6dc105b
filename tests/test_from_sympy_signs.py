"""from_sympy reads a number's sign (for the Adds, Muls and Pows above it: x - 2.5·y,
x**-2) as SymPy's is_extended_negative says it, but a Rational's and a Float's
without SymPy's assumption system (70-90 µs the first time it is asked of a number
object that SymPy's own evaluation has not asked: 2, 1/2, 1 and -1 in a fresh
process, a Float of an unevaluated expression)."""

from __future__ import annotations

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.parse.sympy_nodes import _is_negative
from exprcompiler.trace.check import interpret

_SPECIAL = [sp.S.Zero, sp.S.One, sp.S.NegativeOne, sp.S.Half, sp.Integer(-7), sp.Rational(-3, 7), sp.Rational(5, 9),
            sp.Float("0.0"), sp.Float("-0.0"), sp.Float("-2.5"), sp.Float("1e-400"), sp.Float("-1e-400"),
            sp.Float("-1e400"), sp.Float("3", 50), sp.Float("-1e-400", 50), sp.nan, sp.oo, -sp.oo, sp.zoo,
            sp.pi, -sp.pi, sp.E]


def test_signs_are_sympys_on_special_numbers():
    for num in _SPECIAL:
        assert _is_negative(num) is bool(num.is_extended_negative), num


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(sp.Float),
                 st.tuples(st.integers(-10**30, 10**30), st.integers(1, 10**6)).map(lambda pq: sp.Rational(*pq))))
def test_signs_are_sympys(num):
    assert _is_negative(num) is bool(num.is_extended_negative)


def test_a_new_number_is_not_asked_of_the_assumption_system():
    for num in (sp.Float("-2.375"), sp.Rational(-11, 13), sp.Integer(-123457)):
        assert _is_negative(num)
        assert "extended_negative" not in num._assumptions   # (SymPy keeps what it was asked)


def test_negative_numbers_convert_as_before():
    x, y = sp.symbols("x y")
    expr = sp.Add(x, sp.Mul(sp.Float("-2.5"), y, evaluate=False), evaluate=False) \
        + sp.Pow(x, sp.Rational(-3, 2), evaluate=False)
    trace = from_sympy(expr)
    ops = [ins.op for ins in trace.instrs]
    assert "sub" in ops and "div" in ops   # x - 2.5·y, 1/x**1.5
    got = interpret(trace, {"x": 2.0, "y": 3.0})[0]
    assert got == 2.0 - 2.5 * 3.0 + 1.0 / 2.0 ** 1.5
