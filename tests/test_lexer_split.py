"""The lexer's fast path (Scanner._split: str methods on a plain window) must give
exactly the tokens of its regular expression (but for a newline: LINE, which the
parser reads as one), or decline (None) and leave the window to it. Texts are
drawn from an alphabet of the characters where the two could part:
'.', 'e', digits and '_' in and around runs, '*' and '=' that make '**' and '==',
blanks, and characters that are not plain (tabs, '#', '<', '\\r', unicode)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.errors import ExprcError
from exprcompiler.parse import lexer, parse
from exprcompiler.parse.lexer import EOF, LINE, NEWLINES, Scanner

ALPHABET = list("aexT_Ee019.") * 3 + list(" ") * 6 + list("\n*=+-(),;[]:@") * 2 + \
    ["**", "==", "1e", "1e5", ".5", "x.T", "t1.5", "2.", "..", "\t", "\f", "\v", "#", "<", "!", "\r", "é", "$"]


def tokens(text: str, split: bool, known=()) -> tuple:
    """Each window's tokens and range, with the fast path or without it (whose
    newlines, LINE, are read as the regular expression's "\\n")."""
    scanner = Scanner(text)
    scanner.valid = dict.fromkeys(known)
    if not split:
        scanner._split = lambda chunk: None
    out = []
    while (toks := scanner.window())[0] != EOF:
        out.append((tuple("\n" if tok == LINE else tok for tok in toks), scanner.windows[-1]))
    return tuple(out), scanner.bad_at


TEXTS = st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join)


@settings(max_examples=600, deadline=None)
@given(TEXTS, st.sampled_from([1, 3, 8, lexer.WINDOW]), TEXTS)
def test_split_gives_the_regular_expressions_tokens(text, window, before):
    # `before`: the tokens of text read earlier, which the parser would know (not checked again)
    known = [t for t in lexer._regex("scan").findall(before) if t and lexer._regex("good").fullmatch(t)]
    old = lexer.WINDOW
    lexer.WINDOW = window
    try:
        assert tokens(text, True, known) == tokens(text, False)
    finally:
        lexer.WINDOW = old


@pytest.mark.parametrize("text, plain", [
    ("t1 = sin(x) * 2.5\nt2 = t1**2 == 1.e5 - .5 / t1\nt2", True),
    ("y = A @ x[1:, 0]; y", True),
    ("x.T @ x", False),          # a '.' in a run of letters: two tokens
    ("t1.5", False),
    ("1e-5 * x", False),         # "1e" is no run of its own
    ("1_000 * x", False),        # the regular expression reads 1 then _000
    ("2x", False),
    ("x # c", False),            # not plain: comments, tabs, '<', other scripts
    ("x\t+ y\f", True),
    ("x <= y", False),
    ("α + 1", False),
])
def test_which_windows_are_split(text, plain):
    assert (Scanner(text)._split(text) is not None) == plain


def test_known_tokens_are_not_checked_again():
    # (the parser's known names and numbers come from checked windows)
    scanner = Scanner("")
    scanner.valid = {"2x": 0}   # not a token: trusted as the parser's
    assert scanner._split("y = 2x") == ["y", "=", "2x"]


def test_a_parse_of_plain_text_matches_the_regular_expressions():
    text = "".join(f"t{k} = log(2 + sin(t{k - 1})) * x{k % 3} ** 2 - 0.5 / t{k - 1}\n"
                   for k in range(1, 300)) + "t299"
    text = "t0 = x0 * x1\n" + text
    scanner = Scanner(text)
    assert scanner._split(text) is not None
    plain = str(parse(text))
    old = Scanner._split
    Scanner._split = lambda self, chunk: None
    try:
        assert str(parse(text)) == plain
    finally:
        Scanner._split = old


def test_a_split_windows_newlines_are_line_tokens():
    # (str.split() at whitespace would drop "\\n"; LINE is no whitespace, and a newline
    # to the parser)
    toks = Scanner("a = b\n\nc = (a\n+ b)\nc").window()
    assert toks == ["a", "=", "b", LINE, LINE, "c", "=", "(", "a", LINE, "+", "b", ")", LINE, "c", ""]
    assert LINE in NEWLINES and not LINE.isspace() and LINE.encode() not in lexer._PLAIN


@pytest.mark.parametrize("text", [
    "a = x * y\n\nb = a * x\n\n",
    "a = (x\n+ y)\nb = sin(\na\n)\nb",
    "a = x +\nb = a\nb",
    "a = (x\nb = a\nb",
    "a = x\n)\na",
    "a = x\nb = a\n",
    "\n\n",
    "a = x\n= y\na",
    "f(x,\naxis=0\n)",
    "a = x;\nb = a; a\nb",
])
def test_newlines_read_the_same_from_either_path(text, monkeypatch):
    def outcome():
        try:
            t = parse(text, lenient=True)
            return repr((t.instrs, t.outputs))
        except ExprcError as err:
            return type(err).__name__, str(err), getattr(err, "line", None), getattr(err, "col", None)
    assert Scanner(text)._split(text) is not None   # (a plain window: split)
    split = outcome()
    monkeypatch.setattr(Scanner, "_split", lambda self, chunk: None)
    assert outcome() == split
