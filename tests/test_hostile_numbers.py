"""A number a front end cannot hold as a float64 is an error that says so, never a
silently different constant: SymPy's Integer and Rational past float64's range are
refused already; a SymPy Float past it (SymPy's own precision holds 3.6e308) became
inf, so 0.5 * (that constant) * x gave inf where the answer is 1.8e308 * x."""

import pytest
import sympy as sp

from exprcompiler import ConversionError, compile_grad


@pytest.mark.parametrize("big", [sp.Integer(10) ** 400, sp.Rational(10 ** 400, 3)], ids=["Integer", "Rational"])
def test_an_exact_number_past_float64_is_refused(big):
    with pytest.raises(ConversionError, match="number too large for a float"):
        compile_grad(big * sp.Symbol("x"))


@pytest.mark.parametrize("text", ["3.6e308", "-1e400"])
def test_a_finite_sympy_float_past_float64_is_refused_not_made_inf(text):
    with pytest.raises(ConversionError, match="number too large for a float"):
        compile_grad(sp.Float(text) * sp.Symbol("x"))


def test_infinities_stay_infinities():
    x = sp.Symbol("x")
    assert compile_grad(sp.oo * x)(2.0) == (float("inf"), (float("inf"),))
    assert compile_grad(sp.Float("-inf") + x)(2.0) == (float("-inf"), (1.0,))
