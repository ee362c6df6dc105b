"""The names a first window reads, found from the window's forms (early_inputs.read_names
of a window_forms.Window) as from its token list, and the parser's finish handed the
natural order of the inputs when every one was declared early (not sorted again)."""

from __future__ import annotations

import pytest
from conftest import spy

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.parse import lexer, parse, parser
from exprcompiler.parse.early_inputs import read_names
from exprcompiler.parse.grammar import _CODES
from exprcompiler.parse.window_forms import Window
from exprcompiler.trace import ir
from exprcompiler.trace.ir import natural_key

from test_early_inputs import TEXTS

WINDOW_CASES = [
    *TEXTS,
    "a = sin(x2) + x10 * pi; f(b, axis=1)\n c = a.T + T\n",
    "t1 = x == y\n t2 = t1 != z\n t3 = x <= t2\n t3",     # '==', '<=': no '=' after a name
    "a = gamma(x) + gamma\n b = ln(a) + ln\n b",          # names that are functions and variables
    "u = x\n (v) = u\n v",
]


def _windows(text: str):
    """Each window of `text` as the parser holds it: its token list, and whether more follow."""
    scanner = lexer.Scanner(text)
    while True:
        toks = scanner.window()
        if toks[0] == lexer.EOF:
            return
        yield toks, scanner.distinct, scanner.pos < len(text)


@pytest.mark.parametrize("window", [lexer.WINDOW, 16])
@pytest.mark.parametrize("text", WINDOW_CASES)
def test_forms_read_the_names_the_tokens_read(monkeypatch, window, text):
    monkeypatch.setattr(lexer, "WINDOW", window)
    for toks, distinct, more in _windows(text):
        expected = read_names(toks, parser._NOT_TARGET, more)
        for seen in (distinct, None):   # (a split window's distinct tokens, or none: a scanned one)
            before = None if seen is None else set(seen)
            forms = Window(toks, _CODES, seen)
            assert read_names(forms, parser._NOT_TARGET, more) == expected
            assert forms.distinct is seen and seen == before   # (left as it was)


def test_forms_tell_assigned_and_called_names():
    toks = lexer.Scanner("a = f(b) + c\n d = a(k)\n d + g\n").window()
    forms = Window(toks, _CODES, set(toks))
    # a and d assigned, f and a called: b, c, g, k are read
    assert read_names(forms, parser._NOT_TARGET, False) == ["b", "c", "g", "k"]


def _finished(monkeypatch, text: str, shapes=None):
    """The input order the parser hands its finish, and the finished trace's inputs."""
    orders: list = []
    real = parser.trace_from_builder

    def recording(b, outputs, **kwargs):
        orders.append(kwargs.get("input_order"))
        return real(b, outputs, **kwargs)
    monkeypatch.setattr(parser, "trace_from_builder", recording)
    trace = parse(text, shapes)
    return orders[0], list(trace.input_names)


@pytest.mark.parametrize("text", [
    FAMILIES["random DAG"](300),
    "x10 + x2 * x1 + x02",
    "sum(X, axis\n=0) + y",       # axis guessed wrongly: dropped, the rest in order
])
def test_inputs_all_guessed_are_handed_in_natural_order(monkeypatch, text):
    order, names = _finished(monkeypatch, text, {"X": (2, 3)} if "X" in text else None)
    assert order is not None and order == names == sorted(names, key=natural_key)


def test_an_input_read_later_leaves_the_order_to_the_finish(monkeypatch):
    monkeypatch.setattr(lexer, "WINDOW", 8)
    order, names = _finished(monkeypatch, "a = sin(x10) * x10\nb = a * a + a\nc = b * x2\nc")
    assert order is None and names == ["x2", "x10"]


def test_handed_order_is_the_sorted_one(monkeypatch):
    # the finish sorts (natural_key) where it is not handed an order: the same inputs
    texts = [FAMILIES["random DAG"](200), "z1 * x10 + x9 + b2 * b10"]
    handed = [list(parse(text).input_names) for text in texts]
    monkeypatch.setattr(ir.Builder, "finish", _without_order(ir.Builder.finish))
    assert [list(parse(text).input_names) for text in texts] == handed


def _without_order(finish):
    def unordered(b, outputs, *, input_order=None, **kwargs):
        return finish(b, outputs, input_order=sorted(b._inputs, key=natural_key), **kwargs)
    return unordered
