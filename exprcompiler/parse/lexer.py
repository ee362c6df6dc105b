"""Tokenizer of the string language: the first step of text → tokens → Trace.

`tokenize(text)` yields `Token`s lazily, so a syntax error near the start of a
huge input is reported without scanning the rest. Scanning is one compiled
regular expression applied with `finditer`; every alternative is free of
nested or overlapping quantifiers and the last one matches any single
character, so the scan is linear in the input and never skips text.

The lexer knows as little grammar as possible, with one exception it shares
with Python: newlines inside parentheses are not statement separators, so it
counts parentheses and drops those newlines. Everything else (what may follow
what) is the parser's business.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterator

from ..errors import ParseError

__all__ = ["Token", "tokenize", "error_at", "describe", "quote"]

# Token kinds: "number", "name", "newline", "eof", or the operator text itself
# ("+", "**", "(", ",", ";", "=", ...), which keeps the parser's tests short.
_TOKEN_RE = re.compile(
    r"""
      (?P<ws>[ \t\f]+)
    | (?P<comment>\#[^\r\n]*)
    | (?P<newline>\r\n|\r|\n)
    | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[^\W\d]\w*)
    | (?P<op>\*\*|==|!=|<=|>=|[-+*/(),;=@.\[\]:<>])
    | (?P<bad>.)
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


class Token:
    """One token: its kind, its text, and where it starts (offset, 1-based line,
    offset of the start of that line — the column is derived from these)."""

    __slots__ = ("kind", "text", "pos", "line", "line_start")

    def __init__(self, kind: str, text: str, pos: int, line: int, line_start: int):
        self.kind = kind
        self.text = text
        self.pos = pos
        self.line = line
        self.line_start = line_start

    @property
    def col(self) -> int:
        return self.pos - self.line_start + 1

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.line}:{self.col})"


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
        if kind == "ws" or kind == "comment":
            continue
        start = m.start()
        if kind == "newline":
            if depth == 0:  # inside parentheses a newline is just whitespace
                yield Token("newline", m.group(), start, line, line_start)
            line, line_start = line + 1, m.end()
            continue
        tok_text = m.group()
        if kind == "number":
            bad_exp = _BAD_EXPONENT_RE.match(text, m.end())
            if bad_exp:
                bad = Token("number", tok_text, start, line, line_start)
                raise error_at(text, bad, f"invalid number {quote(text[start:bad_exp.end()])}:"
                                          " the exponent has no digits")
            yield Token("number", tok_text, start, line, line_start)
        elif kind == "name":
            yield Token("name", tok_text, start, line, line_start)
        elif kind == "op":
            if tok_text in "([":
                depth += 1
            elif tok_text in ")]" and depth > 0:
                depth -= 1
            yield Token(tok_text, tok_text, start, line, line_start)
        else:  # "bad": anything else — quotes, backslashes, '.', '[', '@', ':' ...
            bad = Token("bad", tok_text, start, line, line_start)
            message = f"unexpected character {_describe_char(tok_text)}"
            if tok_text in _HINTS:
                message += f"; {_HINTS[tok_text]}"
            raise error_at(text, bad, message)
    eof = Token("eof", "", len(text), line, line_start)
    while True:  # the parser may look past the end; it keeps seeing "eof"
        yield eof
