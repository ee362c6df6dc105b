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

from .. import ops as _ops
from ..errors import ParseError
from ..shapes import user_int
from .lexer import Token, describe, error_at, quote, tokenize

__all__ = ["KEYWORD_VALUES", "OPTION_KINDS", "TokenReader"]

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


class TokenReader:
    """The token stream with lookahead, and the readers of constants."""

    def __init__(self, text: str):
        self.text = text
        self._next = tokenize(text).__next__
        self.pushed: list[Token] = []   # looked-at tokens, the next one last

    # The grammar needs at most two tokens of lookahead ("name =" starts an
    # assignment), so a small push-back stack is enough.
    def advance(self) -> Token:
        return self.pushed.pop() if self.pushed else self._next()

    def peek(self, k: int = 0) -> Token:
        if k == 0 and self.pushed:   # (the parser's usual question)
            return self.pushed[-1]
        while len(self.pushed) <= k:
            self.pushed.insert(0, self._next())
        return self.pushed[-1 - k]

    def error(self, tok: Token, message: str) -> ParseError:
        return error_at(self.text, tok, message)

    # -- constants ------------------------------------------------------------------
    def keyword(self, name: Token, call: tuple) -> None:
        """`name=value` inside a call: a constant option (axis=0, keepdims=True, shape=(3, -1))."""
        op, fn_tok, kwargs = call[2]
        allowed = dict(op.keywords)
        if name.text not in allowed:
            options = ", ".join(allowed) or "none"
            raise self.error(name, f"{fn_tok.text}() has no option {quote(name.text)} (options: {options})")
        if name.text in kwargs:
            raise self.error(name, f"option {quote(name.text)} given twice")
        self.advance()  # '='
        value_tok = self.peek()
        value = self.constant(name)
        what, ok, _ = OPTION_KINDS[name.text]
        if value is not None and not ok(value):
            raise self.error(value_tok, f"option {name.text}= of {fn_tok.text}() takes {what}, "
                                        f"not {value!r}")
        if name.text == "shape" and _is_int(value):
            value = (value,)  # as NumPy's reshape(x, 5)
        kwargs[name.text] = value

    def constant(self, after: Token):
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

    def integer(self, tok: Token, after: Token) -> int:
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

    def index_key(self, bracket: Token) -> tuple:
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

    def check_options(self, tok: Token, op: _ops.OpDef, kwargs: dict) -> None:
        """At the call's ')': every required option was given (reshape needs shape=)."""
        for option, _ in op.keywords:
            what, _, required = OPTION_KINDS[option]
            if required and kwargs.get(option) is None:
                raise self.error(tok, f"{tok.text}() needs the option {option}=..., {what}")
