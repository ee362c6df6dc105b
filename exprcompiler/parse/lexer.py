"""Tokenizer of the string language: the first step of text → tokens → Trace.

`tokenize(text)` yields `Token`s lazily, so a syntax error near the start of a
huge input is reported without scanning the rest. Scanning is one compiled
regular expression applied with `finditer`; every alternative is free of
nested or overlapping quantifiers and the last one matches any character that
is not a blank, so the scan is linear in the input and skips nothing but blanks.

The lexer knows as little grammar as possible, with one exception it shares
with Python: newlines inside parentheses are not statement separators, so it
counts parentheses and drops those newlines. Everything else (what may follow
what) is the parser's business.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterator, NamedTuple

from ..errors import ParseError

__all__ = ["Token", "tokenize", "error_at", "describe", "quote"]

# Token kinds: "number", "name", "newline", "eof", or the operator text itself
# ("+", "**", "(", ",", ";", "=", ...), which keeps the parser's tests short.
# Whitespace is taken with the token that follows it (one match a token, not two;
# whitespace at the very end matches nothing and is passed over). No alternative can
# start with a blank, so backtracking into the blanks finds nothing either.
_TOKEN_RE = re.compile(
    r"""
    [ \t\f]*
    (?:
      (?P<name>[^\W\d]\w*)
    | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<op>\*\*|==|!=|<=|>=|[-+*/(),;=@.\[\]:<>])
    | (?P<newline>\r\n|\r|\n)
    | (?P<comment>\#[^\r\n]*)
    | (?P<bad>[^ \t\f])
    )
    """,
    re.VERBOSE | re.DOTALL,
)

# After a number, an "e" that does not start a valid exponent: "1e", "1e+", "2E-".
_BAD_EXPONENT_RE = re.compile(r"[eE](?:[+-]|(?!\w))")

_EOL_RE = re.compile(r"[\r\n]")

# Characters people paste from papers or other languages, with the spelling we use.
_HINTS = {
    "^": "use '**' for powers",
    "×": "use '*' to multiply", "·": "use '*' to multiply", "⋅": "use '*' to multiply",
    "∗": "use '*' to multiply",
    "−": "use '-' (ASCII minus)", "–": "use '-' (ASCII minus)",
    "÷": "use '/' to divide",
    "{": "only parentheses group expressions",
}


class Token(NamedTuple):
    """One token: its kind, its text, and where it starts (offset, 1-based line,
    offset of the start of that line — the column is derived from these). A named
    tuple: a large input has millions, made without a Python-level __init__."""

    kind: str
    text: str
    pos: int
    line: int
    line_start: int

    @property
    def col(self) -> int:
        return self.pos - self.line_start + 1

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.line}:{self.col})"


_new_token = tuple.__new__   # _new_token(Token, fields): Token(*fields) without its __new__


def quote(text: str, limit: int = 24) -> str:
    # Messages must stay one readable line even for a 10^6-character name.
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'"


def describe(tok: Token) -> str:
    """How a message names a token: 'x', '+', end of line, end of input."""
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "newline":
        return "end of line"
    return quote(tok.text)


def _describe_char(ch: str) -> str:
    if ch == "'":
        return '"\'"'
    if "\udc80" <= ch <= "\udcff":  # how Python passes on a byte of argv or stdin that is not UTF-8
        return f"U+{ord(ch):04X}, byte 0x{ord(ch) - 0xDC00:02X} of text that is not UTF-8"
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}'"
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed character')})"


def error_at(text: str, tok: Token, message: str) -> ParseError:
    """A ParseError pointing at `tok`, carrying its source line for the caret."""
    # Find the end of the token's line without splitting the whole text.
    m = _EOL_RE.search(text, tok.line_start)
    end = m.start() if m else len(text)
    return ParseError(message, tok.line, tok.col, text[tok.line_start:end])


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of `text`, then "eof" tokens forever.

    Raises ParseError for a character that is not part of the language and for a
    number whose exponent has no digits.
    """
    line, line_start, depth = 1, 0, 0
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "name":
            yield _new_token(Token, ("name", m[kind], m.start(kind), line, line_start))
        elif kind == "op":
            tok_text = m[kind]
            if tok_text in "([":
                depth += 1
            elif tok_text in ")]" and depth > 0:
                depth -= 1
            yield _new_token(Token, (tok_text, tok_text, m.start(kind), line, line_start))
        elif kind == "number":
            start = m.start(kind)
            bad_exp = _BAD_EXPONENT_RE.match(text, m.end())
            if bad_exp:
                bad = Token("number", m[kind], start, line, line_start)
                raise error_at(text, bad, f"invalid number {quote(text[start:bad_exp.end()])}:"
                                          " the exponent has no digits")
            yield _new_token(Token, ("number", m[kind], start, line, line_start))
        elif kind == "newline":
            if depth == 0:  # inside parentheses a newline is just whitespace
                yield Token("newline", m[kind], m.start(kind), line, line_start)
            line, line_start = line + 1, m.end()
        elif kind == "bad":  # anything else — quotes, backslashes, '$', '?' ...
            tok_text = m[kind]
            bad = Token("bad", tok_text, m.start(kind), line, line_start)
            message = f"unexpected character {_describe_char(tok_text)}"
            if tok_text in _HINTS:
                message += f"; {_HINTS[tok_text]}"
            raise error_at(text, bad, message)
        # a comment: nothing
    eof = Token("eof", "", len(text), line, line_start)
    while True:  # the parser may look past the end; it keeps seeing "eof"
        yield eof
