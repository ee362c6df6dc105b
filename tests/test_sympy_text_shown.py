"""parse/sympy_text.shown: a SymPy expression's source is SymPy's text cut after
frontend.SOURCE_SHOWN characters, the same characters as the whole text's, printed
without the rest (the printer was most of the front end's time on long models)."""

from __future__ import annotations

import sympy as sp
from sympy.core.parameters import evaluate
from sympy.printing.str import StrPrinter

from exprcompiler import compile_grad, frontend
from exprcompiler.backends.naming import comment_text
from exprcompiler.parse import sympy_text

x, y, z = sp.symbols("x y z")
LIMIT = frontend.SOURCE_SHOWN


def _cut(text: str) -> str:
    return text if len(text) <= LIMIT else text[:LIMIT] + "..."


def _long_terms(k: int):
    """Sums, products and powers whose text passes LIMIT near term k, with minus signs,
    quotients and powers where the cut falls."""
    a, b = sp.symbols(f"alpha{k} beta{k}")
    terms = [sp.sin(x * j) / (y + j) - sp.cos(a) ** j for j in range(1, k)]
    yield sp.Add(*terms) - a * b
    yield -sp.Add(*terms) ** (sp.exp(a) + b)
    yield (a + b) ** sp.Add(*terms)   # (an exponent that alone passes the limit: printed first)
    with evaluate(False):
        yield sp.Add(*[-t for t in terms], -a)
        yield sp.Mul(sp.Add(*terms), -sp.Add(*terms[:3]), sp.Pow(a - b, -2))


def test_a_long_text_is_its_first_characters_then_dots():
    seen = 0
    for k in (3, 6, 9, 12):
        for e in _long_terms(k):
            for order in (None, "none"):
                whole = sp.sstr(e, order=order)
                assert sympy_text.shown(e, order, LIMIT) == _cut(whole), (k, order)
                seen += len(whole) > LIMIT
    assert seen > 20   # (most of them are cut)


def test_only_what_is_shown_is_printed(monkeypatch):
    # 500 terms of 5,000 characters: the printer reaches the first few only
    terms = [sp.sin(sp.Symbol(f"s{k}")) for k in range(500)]
    e = sp.Add(*terms, evaluate=False)
    printed = []
    real = StrPrinter._print_Function

    def counted(self, f, **kwargs):
        printed.append(f)
        return real(self, f, **kwargs)
    monkeypatch.setattr(StrPrinter, "_print_Function", counted)
    text = frontend._sympy_text(e)
    assert 0 < len(printed) < 40
    monkeypatch.undo()
    assert text == _cut(sp.sstr(sp.Add(*terms[:40], evaluate=False), order="none")) and text.endswith("...")


def test_the_header_is_the_whole_texts():
    # the generated code's header, cut at 200 characters, reads the same
    e = sp.Add(*[sp.sin(x * k) * sp.exp(-y / k) for k in range(1, 30)])
    whole = sp.sstr(e, order="none")   # (SymPy's own order, as every header)
    assert len(whole) > 2 * LIMIT
    head = next(line for line in compile_grad(e).source.splitlines() if " of: " in line)
    what = head[2:head.index(" of: ")]
    assert head == f"# {comment_text(f'{what} of: {whole}', 200)}"


def test_a_short_text_is_whole_and_a_printing_error_prints_whole(monkeypatch):
    assert frontend._sympy_text(sp.sin(x) + x ** 2) == sp.sstr(sp.sin(x) + x ** 2, order="none")
    e = sp.Add(*[sp.cos(y * k) for k in range(1, 60)])

    def refuse(self, expr, **kwargs):
        raise ValueError("no")
    monkeypatch.setattr(sympy_text._printer()[0], "_print", refuse)
    assert sympy_text.shown(e, "none", LIMIT) == _cut(sp.sstr(e, order="none"))


def test_a_symbol_named_with_the_cut_mark_is_printed_whole():
    odd = sp.Symbol("a" + sympy_text._CUT)
    e = sp.Add(odd, *[sp.sin(z * k) for k in range(1, 60)], evaluate=False)
    assert sympy_text.shown(e, "none", LIMIT) == _cut(sp.sstr(e, order="none"))
