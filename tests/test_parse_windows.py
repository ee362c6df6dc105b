"""The parser reads its text a window at a time (parse/lexer.py's Scanner): where the
windows end must change nothing, neither the trace nor an error's message, line and
column. Each text is parsed with the usual window and with windows of a few
characters, which end between every two tokens that a blank or a newline separates
(after a name before its '(' or '=', inside comments, options and index keys)."""

from __future__ import annotations

import pytest

from exprcompiler.errors import ExprcError
from exprcompiler.parse import lexer, parse

TEXTS = [
    "a = sin (x) + 2\n b = a * (a\n + 1)\n b",
    "f1 = x*y; f2 = sin(x); f1 + f2",
    "r = sqrt(x**2 + y**2)  # a comment ( with + tokens\r\nr*cos(y), r*sin(x), x*y",
    "# only comments first\n\n  # and blanks\n x ** - y ** 2 / (1e-3 + .5 * 3.)",
    "sum(x , axis = 0 , keepdims = True) + mean(x, axis=(0, \n 1))",
    "sum(x [1 : ] - x[ : -1]) + x[\n 0 ]",
    "reshape(x, shape = (\n 3 , -1 ))",
    "max (x\n , y) + min( x ,\n 1)",
    "t = x\r\n(t +\r y) * t",
    "A.T @ (A @ x)",
    # errors, at a window's end or not
    "x + $",
    "a = 1e+ x",
    "x = 2\n y = x +  \n  y",
    "sin (x",
    "f(x)",
    "x  1",
    "None (x)",
    "sin\n(x)",
    "(sin\n(x))",
    "(x\n y)",
    "a = x; a = a + 1; a + b  # then  ^ here",
    "x  # comment\n  ^ y",
    "q = (1 +\n 2",
    "x.\nT",
    "(x .\n T)",
    "sum(x, axis\n=\n0)",
    "sum(x, bad\n=0)",
    "x[1 2]",
    "a = 1\n a = 2",
    "1 + (2 * (3 + \n 4)) ; y = 3 ; ",
]
SHAPES = {"x": (3,), "A": (3, 3)}


def outcome(text: str):
    """The trace as text, or the error's class, message, line and column."""
    try:
        return str(parse(text, SHAPES if "[" in text or "@" in text or "axis" in text
                         or "shape" in text else None))
    except ExprcError as err:
        return type(err).__name__, str(err), getattr(err, "line", None), getattr(err, "col", None)


@pytest.mark.parametrize("window", [1, 2, 3, 5, 8])
def test_where_windows_end_changes_nothing(monkeypatch, window):
    want = [outcome(text) for text in TEXTS]
    monkeypatch.setattr(lexer, "WINDOW", window)
    assert [outcome(text) for text in TEXTS] == want


def test_the_windows_do_end_between_tokens(monkeypatch):
    # (so the test above reads its texts across several windows)
    monkeypatch.setattr(lexer, "WINDOW", 1)
    scanner = lexer.Scanner(TEXTS[0])
    while scanner.window()[0] != lexer.EOF:
        pass
    assert len(scanner.windows) > 10


def test_an_error_far_into_the_text_is_located():
    # The error's place is found by scanning its window again.
    text = "".join(f"t{k} = sin(x) * {k}\n" for k in range(20_000)) + "t1 + * 2\n"
    with pytest.raises(ExprcError) as info:
        parse(text)
    assert (info.value.line, info.value.col) == (20_001, 6)
    assert "expected an expression after '+'" in str(info.value)


def test_a_bad_character_at_a_window_end(monkeypatch):
    monkeypatch.setattr(lexer, "WINDOW", 4)
    with pytest.raises(ExprcError) as info:
        parse("x + y  $ z")
    assert (info.value.line, info.value.col) == (1, 8)
    assert "unexpected character '$'" in str(info.value)
