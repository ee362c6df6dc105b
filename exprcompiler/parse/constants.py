"""Constants in the string language, and the token stream the parser reads them from.

The parser (parser.py) turns expressions into trace operations; some parts of the
text must instead be constants known at compile time: a call's keyword options
(``axis=0``, ``keepdims=True``, ``shape=(3, -1)``) and the key of ``x[1:, 2]``.
`TokenReader`, the parser's base class, reads them and checks them by kind here, so
the trace builder only ever sees values of the right kind, and every integer goes
through `shapes.user_int` (a 5000-digit index is a located ParseError, not Python's
ValueError).
"""

from __future__ import annotations

from typing import NamedTuple

from .. import ops as _ops
from ..errors import ParseError
from ..shapes import user_int
from .lexer import BAD, NEWLINES, Scanner, describe, error_at, kind_of, quote

__all__ = ["KEYWORD_VALUES", "OPTION_KINDS", "Tok", "TokenReader"]

KEYWORD_VALUES = {"True": True, "False": False, "None": None}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# What each keyword option of the op table takes (OpDef.keywords names the options of
# each op): (description, check, required). `keyword` checks every value given and
# `check_options` that the required ones were, so the builder only ever sees values of
# the right kind; None is an option's default. tests/test_front_errors.py asserts that
# every option in the op table has an entry here.
OPTION_KINDS = {
    "axis": ("an integer or a tuple of integers", lambda v: _is_int(v) or isinstance(v, tuple), False),
    "keepdims": ("True or False", lambda v: isinstance(v, bool), False),
    "shape": ("a tuple of integers such as (3, -1)", lambda v: _is_int(v) or isinstance(v, tuple), True),
}


class Tok(NamedTuple):
    """A token as the readers of constants see it: kind, text, and its number in the
    text, which `Scanner.locate` turns into a line and column for a message."""

    kind: str
    text: str
    index: int


class TokenReader:
    """The token stream, a window of token strings at a time (lexer.Scanner), and the
    readers of constants, which take it a `Tok` at a time. The parser's expression
    loop reads `toks` itself (keeping `i` in a local variable) and hands over by
    setting `i` and `depth` before it calls a reader."""

    def __init__(self, text: str):
        self.text = text
        self.scanner = Scanner(text)
        self.toks: list[str] = self.scanner.window()   # ends with "", the window's end
        # The distinct strings of toks, where the lexer gives them (a window it split),
        # else None: for the statement forms of a window (window_forms.py)
        self.distinct: set | None = self.scanner.distinct
        self.i = 0                  # the next token's place in toks
        self.base = 0               # the number of toks[0] in the text
        self.depth = 0              # open '(' and '[': a newline inside is a blank

    def refill(self) -> None:
        """Near the window's end (toks[i] is its "", or the last token before): the
        tokens not read yet, then the next window's."""
        self.base += self.i
        rest = self.toks[self.i:-1]
        self.toks = rest + self.scanner.window()
        self.i = 0
        self.distinct = self.scanner.distinct
        if rest and self.distinct is not None:
            self.distinct.update(rest)

    def _read(self, consume: bool) -> Tok:
        toks = self.toks
        while True:
            text = toks[self.i]
            if not text:
                self.refill()
                toks = self.toks
            elif self.depth and text in NEWLINES:
                self.i += 1
            elif text == BAD:
                raise self.scanner.bad_token_error()
            else:
                tok = Tok(kind_of(text), text, self.base + self.i)
                self.i += consume
                return tok

    def advance(self) -> Tok:
        return self._read(True)

    def peek(self) -> Tok:
        return self._read(False)

    def error(self, tok, message: str) -> ParseError:
        """A ParseError at `tok`: a Tok, a token number, or a located Token."""
        if isinstance(tok, int):
            tok = self.scanner.locate(tok)
        elif isinstance(tok, Tok):
            tok = self.scanner.locate(tok.index)
        return error_at(self.text, tok, message)

    # -- constants ------------------------------------------------------------------
    def keyword(self, name: Tok, call: tuple) -> None:
        """`name=value` inside a call: a constant option (axis=0, keepdims=True, shape=(3, -1))."""
        op, fn_name, _, kwargs = call[2]   # the call's marker (see parser.py)
        allowed = dict(op.keywords)
        if name.text not in allowed:
            options = ", ".join(allowed) or "none"
            raise self.error(name, f"{fn_name}() has no option {quote(name.text)} (options: {options})")
        if name.text in kwargs:
            raise self.error(name, f"option {quote(name.text)} given twice")
        self.advance()  # '='
        value_tok = self.peek()
        value = self.constant(name)
        what, ok, _ = OPTION_KINDS[name.text]
        if value is not None and not ok(value):
            raise self.error(value_tok, f"option {name.text}= of {fn_name}() takes {what}, "
                                        f"not {value!r}")
        if name.text == "shape" and _is_int(value):
            value = (value,)  # as NumPy's reshape(x, 5)
        kwargs[name.text] = value

    def constant(self, after: Tok):
        """An option's value: an integer, True/False/None, or a tuple of integers."""
        tok = self.advance()
        if tok.kind == "(":
            items = []
            while self.peek().kind != ")":
                items.append(self.integer(self.advance(), tok))
                if self.peek().kind == ",":
                    self.advance()
                elif self.peek().kind != ")":
                    raise self.error(self.peek(), "expected ',' or ')' in a tuple of integers")
            self.advance()
            return tuple(items)
        if tok.kind == "name" and tok.text in KEYWORD_VALUES:
            return KEYWORD_VALUES[tok.text]
        return self.integer(tok, after)

    def integer(self, tok: Tok, after: Tok) -> int:
        sign = 1
        if tok.kind == "-":
            sign, tok = -1, self.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(tok, f"expected an integer after {describe(after)}, found {describe(tok)}")
        value = user_int(tok.text)
        if value is None:
            raise self.error(tok, f"integer {quote(tok.text)} ({len(tok.text)} digits) is too large: "
                                  f"indices, axes and sizes are below 2**63")
        return sign * value

    def index_key(self, bracket: Tok) -> tuple:
        """The constant key of x[...]: integers and slices start:stop:step, by commas."""
        key = []
        while True:
            parts: list = [None]
            while self.peek().kind not in (",", "]", "eof", "newline", ";"):
                tok = self.peek()
                if tok.kind == ":":
                    self.advance()
                    if len(parts) == 3:
                        raise self.error(tok, "a slice has at most two ':' (start:stop:step)")
                    parts.append(None)
                elif parts[-1] is None:
                    parts[-1] = self.integer(self.advance(), bracket)
                else:
                    raise self.error(tok, "indices are integers and slices of integers (x[0], x[1:], "
                                          "W[:, 2]); expected ',', ':' or ']'")
            if len(parts) == 1:
                if parts[0] is None:
                    raise self.error(self.peek(), "expected an index")
                key.append(parts[0])
            else:
                parts += [None] * (3 - len(parts))
                if parts[2] == 0:
                    raise self.error(bracket, "a slice step cannot be zero")
                key.append(tuple(parts))
            end = self.advance()
            if end.kind == "]":
                return tuple(key)
            if end.kind != ",":
                raise self.error(bracket, "'[' was never closed")

    def check_options(self, tok: Tok, op: _ops.OpDef, kwargs: dict) -> None:
        """At the call's ')': every required option was given (reshape needs shape=)."""
        for option, _ in op.keywords:
            what, _, required = OPTION_KINDS[option]
            if required and kwargs.get(option) is None:
                raise self.error(tok, f"{tok.text}() needs the option {option}=..., {what}")
