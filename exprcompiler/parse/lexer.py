"""Tokenizer of the string language: the first step of text → tokens → Trace.

The parser reads the text a window at a time (`Scanner`): one `findall` of a
compiled regular expression gives a window's tokens as plain strings, with no
position and no object per token, which is most of what made the lexer cost
(a generator step, a match object and a tuple a token: 4 µs per operation at 10⁵
operations, the findall 0.9). Where a token is needs finding only for an error
message, so `Scanner.locate` scans that one window again with `finditer`.

Windows end after a newline, or before a blank or an operator, never inside a
comment, so no token spans two of them and a window's tokens are those of the whole
text. A window is about `WINDOW` characters (longer only where nothing lets it end,
as in one 10⁶-character name), so a syntax error near the start of a huge input is
reported without scanning the rest, and a window's tokens take bounded memory. Every
alternative of the expression is free of nested or overlapping quantifiers, and
blanks, comments and names are taken possessively, so a scan is linear in the input.
A character that is not part of the language (and a number whose exponent has no
digits) is matched with the rest of its window, so it is the window's last token,
the only one checked for it.

Most windows (plain ASCII: no comment, '<', '!' or '\r') are not scanned by the
regular expression at all (`Scanner._split`): a blank put around each operator, a
split at blanks gives the same token strings (0.77 against 0.85 µs an operation on
the scaling benchmark's text at 10⁵, in one process; the parse, -5 to -10% of its
instructions, as the tokens' hashes, computed there, serve the parser's lookups);
the distinct strings that the parser does not know yet are checked to be one token
each, in one match, and a window where one is not (x.T, 1e-5, 2x) takes the regular
expression. tests/test_lexer_split.py holds the two to the same tokens, but for one:
a split window's newline is the token LINE ("\0", which no plain window holds; one
of NEWLINES, which is all the parser asks of a newline), so that str.split() at
any whitespace gives the tokens, without the empty strings that a split at single
blanks left between two (a third of the pieces: 0.08 µs an operation, -3% of the
parse, at 10⁵ and 10⁶).

The lexer knows as little grammar as possible, with one exception it shares
with Python: newlines inside parentheses are not statement separators, which the
parser applies (it counts the parentheses). Everything else (what may follow
what) is the parser's business.
"""

from __future__ import annotations

import functools
import re
from typing import Iterator, NamedTuple

from ..errors import ParseError

__all__ = ["Token", "Scanner", "tokenize", "error_at", "describe", "quote", "kind_of",
           "EOF", "BAD", "LINE", "NEWLINES"]

# The tokens' forms, each written once for the three expressions below.
_NAME = r"[^\W\d]\w*+"
_MANTISSA = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_EXPONENT = r"(?:[eE][+-]?[0-9]+)?"
_NO_EXPONENT = r"[eE](?:[+-]|(?!\w))"   # after a number, an "e" that starts no exponent: "1e", "1e+"
_OPERATOR = r"\*\*|==|!=|<=|>=|[-+*/(),;=@.\[\]:<>]"
_NEWLINE = r"\r\n|\r|\n"

# The regular expressions below serve windows that are not plain (comments, other
# scripts' letters, a bad character), texts longer than a window and messages:
# compiled at their first use (_regex), not at import (~0.9 ms of CPU of a process's
# first parse, whose text is usually plain and short).
_PATTERNS = {
    # One token a match, its text the group: blanks and comments before it are skipped.
    # A window's last match is the empty string at its end ("\Z"), which tells the
    # parser to read the next window.
    "scan": rf"(?:[ \t\f]|#[^\r\n]*+)*+"
            rf"({_NAME}|{_MANTISSA}{_EXPONENT}(?:{_NO_EXPONENT}[\s\S]*)?|{_OPERATOR}|{_NEWLINE}|[^ \t\f][\s\S]*|\Z)",
    # A token of the language, to tell a window's last token from a bad one.
    "good": rf"{_NAME}|(?>{_MANTISSA}){_EXPONENT}|{_OPERATOR}|{_NEWLINE}",
    # A number followed by an "e" that does not start a valid exponent: "1e", "1e+", "2E-".
    "bad exponent": rf"(?>{_MANTISSA}{_EXPONENT})({_NO_EXPONENT})",
    # Where a window may end: after a newline, or before a blank or an operator that no
    # token continues (not the '+' of 1e+5, the second '*' of '**' or the '=' of '<=').
    # (Each alternative starts with its character, so a search skips to the candidates.)
    "cut": r"\n|[ \t\f(),;\[\]/@<>!:]|[-+](?<![eE][-+])|\*(?<!\*\*)|=(?<![=<>!]=)",
    # A line's end (positions in messages, a comment's end).
    "eol": _NEWLINE,
}


@functools.cache
def _regex(name: str) -> re.Pattern:
    return re.compile(_PATTERNS[name])


# The fast path (Scanner._split): a window of plain ASCII, with the characters below
# only, is split at blanks after a blank is put around each operator. Its tokens are
# then the runs of letters, digits, '_' and '.' and the operators, which are the
# regular expression's tokens exactly where each run is one token (checked: _one_token),
# once '**' and '==' are joined again (a newline is LINE). Windows with
# anything else (comments, '<', '!', '\r', other scripts' letters, a bad character)
# take the regular expression.
# The work is done on the window's bytes (it is ASCII): bytes.replace is 3x faster
# than str.replace, and the plain test is one bytes.translate that deletes the plain
# characters (nothing left: plain), 10x faster than a regular expression's search.
_PLAIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_ \t\f\n()*+-/,=.;[]:@"
_SPACED = (b"(", b")", b"*", b"+", b"-", b"/", b",", b"=", b";", b"[", b"]", b":", b"@")
_SPACE_AROUND = (*((c, b" " + c + b" ") for c in _SPACED), (b"\n", b" \0 "))


def _one_token(run: str) -> bool:
    """Whether a run of a plain window that is not a name is one token: an operator,
    LINE or a number (digits with a '.' among, before or after them or none, then e or
    E and digits, if any). (A run of letters that holds a '.', a number such as "1e" or
    "1_0", or ".." is not.) By str methods: a regular expression of the tokens took
    ~0.4 ms to compile, at the lexer's import in a process's first parse."""
    if run in _OPERATORS or run == LINE:
        return True
    mantissa, e, exponent = run.replace("E", "e").partition("e")
    # (the text is ASCII: isdigit is [0-9]; a digit at least, with one '.' if any)
    return mantissa.replace(".", "", 1).isdigit() and (not e or exponent.isdigit())


# Characters a window, about 5,000 tokens: the window's strings, token list and forms
# (~0.3 MB) stay in a core's cache beside the builder's tables. (The parse of the
# scaling benchmark's text against 1 << 15, fresh processes alternating, busy machine:
# 10⁴ operations -4%, 10⁵ -2%, 10⁶ -6%; 1 << 13 no better; 1 << 16 worse.)
WINDOW = 1 << 14

# Tokens the parser sees that the text cannot make (no token starts with a blank).
EOF = " eof"     # after the last token, for ever
BAD = " bad"     # a character that is not part of the language, reported when read
LINE = "\0"     # a newline, in a window split by str methods (Scanner._split)
NEWLINES = frozenset(("\n", "\r\n", "\r", LINE))
_OPERATORS = frozenset(("**", "==", "!=", "<=", ">=", *"-+*/(),;=@.[]:<>"))
_NUMBER_START = frozenset("0123456789.")
_ONE_TOKEN = _OPERATORS | {LINE}   # (what _one_token takes without a look at the run)

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
    """One token located for a message: its kind, its text, and where it starts
    (offset, 1-based line, offset of the start of that line — the column is derived
    from these)."""

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


def kind_of(text: str) -> str:
    """A token's kind: "name", "number", "newline", "eof", "bad", or the operator
    text itself ("+", "**", "(", ",", ";", "=", ...), which keeps the parser's tests
    short."""
    if text in _OPERATORS:
        return text
    if text in NEWLINES:
        return "newline"
    if text == EOF:
        return "eof"
    if text == BAD:
        return "bad"
    return "number" if text[0] in _NUMBER_START else "name"


def quote(text: str, limit: int = 24) -> str:
    # Messages must stay one readable line even for a 10^6-character name.
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'"


def describe(tok) -> str:
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
    import unicodedata   # (here, for a message: its import was ~0.3 ms of a process's first parse)
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed character')})"


def error_at(text: str, tok: Token, message: str) -> ParseError:
    """A ParseError pointing at `tok`, carrying its source line for the caret."""
    # Find the end of the token's line without splitting the whole text.
    m = _regex("eol").search(text, tok.line_start)
    end = m.start() if m else len(text)
    return ParseError(message, tok.line, tok.col, text[tok.line_start:end])


def _located(text: str, kind: str, tok_text: str, pos: int) -> Token:
    """The token at offset `pos`, with its line (every line break before it counts:
    none is inside a token but a newline)."""
    line = 1 + len(_regex("eol").findall(text, 0, pos))
    line_start = max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos)) + 1
    return Token(kind, tok_text, pos, line, line_start)


def _bad_token_error(text: str, pos: int) -> ParseError:
    """The error for the bad token at `pos`: a number whose exponent has no digits,
    or a character that is not part of the language."""
    m = _regex("bad exponent").match(text, pos)
    if m:
        bad = _located(text, "number", text[pos:m.start(1)], pos)
        return error_at(text, bad, f"invalid number {quote(text[pos:m.end()])}:"
                                   " the exponent has no digits")
    ch = text[pos]   # anything else — quotes, backslashes, '$', '?' ...
    message = f"unexpected character {_describe_char(ch)}"
    if ch in _HINTS:
        message += f"; {_HINTS[ch]}"
    return error_at(text, _located(text, "bad", ch, pos), message)


class Scanner:
    """The text's tokens, a window at a time, and where each one is for messages.

    Tokens are numbered from 0 in the order of the text (blanks and comments are not
    tokens; newlines are, inside parentheses too); `windows` holds each window's first
    token number and its character range, so `locate` finds a token again."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0                                   # where the next window starts
        self.count = 0                                 # tokens in the windows so far
        self.windows: list[tuple[int, int, int]] = []  # (first token, start, end)
        self.bad_at = -1                               # offset of the bad token, once seen
        # Token texts known to be tokens, which _split need not check again: the parser
        # sets its `known` (names and numbers it has read, all from checked windows).
        self.valid: dict = {}
        # The last window's distinct tokens, if it was split (else None): the parser's
        # statement forms look the window's tokens up in a dict made of them
        self.distinct: set | None = None

    def window(self) -> list[str]:
        """The next window's tokens, ending with "" (the window's end); past the
        text's end, EOF. A bad token is replaced by BAD, the window's last."""
        text, pos = self.text, self.pos
        self.distinct = None
        if pos >= len(text) or self.bad_at >= 0:
            return [EOF, ""]
        end = self._window_end(pos)
        toks = self._split(text[pos:end])
        if toks is None:
            toks = _regex("scan").findall(text, pos, end)
            while toks and not toks[-1]:   # the end's "", twice after a trailing comment
                toks.pop()
            # (a plain window's tokens are all good: runs checked by _one_token, or known ones)
            if toks and not _regex("good").fullmatch(toks[-1]):
                self.bad_at = end - len(toks[-1])
                toks[-1] = BAD
        self.windows.append((self.count, pos, end))
        self.pos = end
        self.count += len(toks)
        toks.append("")
        return toks

    def _split(self, chunk: str):
        """The tokens of a plain window (see _PLAIN) by bytes and str methods; None where it
        is not plain or where a run is not one token."""
        if not chunk.isascii():
            return None
        data = chunk.encode()
        if data.translate(None, _PLAIN):   # (a character that is not plain)
            return None
        for op, spaced in _SPACE_AROUND:
            data = data.replace(op, spaced)
        if b"*  *" in data:   # '**' was split; "* *" has two blanks between
            data = data.replace(b" *  * ", b" ** ")
        if b"=  =" in data:
            data = data.replace(b" =  = ", b" == ")
        toks = data.decode().split()
        distinct = set(toks)
        fresh = distinct.difference(self.valid)
        if fresh:
            # (names are most of them, and one token each: str.isidentifier, of ASCII
            # text, is the expression's [A-Za-z_]\w*; at 10³ operations of the scaling
            # benchmark's text the check took 60% of the time of the match of them all)
            fresh = fresh.difference(filter(str.isidentifier, fresh))
            fresh.difference_update(_ONE_TOKEN)   # (operators and LINE: no call of _one_token each)
            if not all(map(_one_token, fresh)):
                return None
        self.distinct = distinct
        return toks

    def _window_end(self, pos: int) -> int:
        text = self.text
        if pos + WINDOW >= len(text):   # (the rest is one window: no cut, and no compile of its regex)
            return len(text)
        m = _regex("cut").search(text, pos + WINDOW)
        if m is None:
            return len(text)
        end = m.end() if m[0] == "\n" else m.start()
        hash_at = text.rfind("#", pos, end)
        if hash_at >= 0 and not _regex("eol").search(text, hash_at, end):
            m = _regex("eol").search(text, hash_at)   # inside a comment: end after its line
            end = m.end() if m else len(text)
        return end

    def bad_token_error(self) -> ParseError:
        return _bad_token_error(self.text, self.bad_at)

    def locate(self, index: int) -> Token:
        """Token number `index` with its position; EOF past the last one."""
        if index >= self.count:
            return _located(self.text, "eof", "", len(self.text))
        for first, start, end in reversed(self.windows):
            if first <= index:
                for tok in self._located_tokens(start, end):
                    if index == first:
                        return tok
                    first += 1
                break
        return _located(self.text, "eof", "", len(self.text))

    def _located_tokens(self, start: int, end: int) -> Iterator[Token]:
        """The tokens of the window [start, end), located."""
        text = self.text
        line = 1 + len(_regex("eol").findall(text, 0, start))
        line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
        for m in _regex("scan").finditer(text, start, end):
            tok_text, pos = m[1], m.start(1)
            if not tok_text:
                break
            if pos == self.bad_at:
                yield Token("bad", tok_text[0], pos, line, line_start)
                return
            kind = kind_of(tok_text)
            yield Token(kind, tok_text, pos, line, line_start)
            if kind == "newline":
                line, line_start = line + 1, m.end()


def tokenize(text: str) -> Iterator[Token]:
    """Yield the located tokens of `text` as the parser reads them (newlines inside
    parentheses dropped), then "eof" tokens forever. Raises ParseError for a
    character that is not part of the language and for a number whose exponent has
    no digits. For tests and tools: the parser reads `Scanner` windows."""
    scanner, depth = Scanner(text), 0
    while scanner.window()[0] != EOF:
        _, start, end = scanner.windows[-1]
        for tok in scanner._located_tokens(start, end):
            if tok.kind == "bad":
                raise scanner.bad_token_error()
            if tok.kind in ("(", "["):
                depth += 1
            elif tok.kind in (")", "]") and depth > 0:
                depth -= 1
            if tok.kind != "newline" or depth == 0:
                yield tok
    eof = scanner.locate(scanner.count)
    while True:  # the parser may look past the end; it keeps seeing "eof"
        yield eof
