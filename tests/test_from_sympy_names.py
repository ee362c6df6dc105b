"""from_sympy names an input after its Symbol: a plain Symbol's name is read off it
(not printed: SymPy's printer took ~6 µs a symbol, a fixed cost of every SymPy
formula), any other symbol class is printed as before (a Dummy('x') is "_x")."""

from __future__ import annotations

import pytest
import sympy as sp
from sympy.printing.str import StrPrinter

from exprcompiler.errors import ConversionError
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.trace.check import interpret


def test_a_plain_symbol_is_named_without_the_printer(monkeypatch):
    def refuse(self, expr):
        raise AssertionError(f"printed {expr.name}")
    monkeypatch.setattr(StrPrinter, "_print_Symbol", refuse)
    x, y2 = sp.symbols("x y2")
    trace = from_sympy(sp.sin(x) * y2)
    assert list(trace.input_names) == ["x", "y2"]
    assert interpret(trace, {"x": 0.5, "y2": 3.0})[0] == pytest.approx(3.0 * float(sp.sin(0.5)))


def test_other_symbol_classes_keep_their_printed_names():
    d = sp.Dummy("x")
    x = sp.Symbol("x")
    trace = from_sympy(d * x + 1)
    assert sorted(trace.input_names) == sorted([str(d), "x"]) and str(d) == "_x"
    with pytest.raises(ConversionError, match="two different SymPy symbols are both named"):
        from_sympy(sp.Dummy("z") + sp.Dummy("z"))


class _Shown(sp.Symbol):
    """A Symbol subclass that prints otherwise than its name."""

    def _sympystr(self, printer):
        return f"shown_{self.name}"


def test_a_symbol_subclass_is_named_as_printed():
    trace = from_sympy(_Shown("a") * sp.Symbol("b"))
    assert sorted(trace.input_names) == ["b", "shown_a"]
