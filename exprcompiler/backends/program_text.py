"""The text of a long generated NumPy function, made only when something asks for it.

Where it sits: numpy_backend.generated renders a long function of plain lines as a
statement program (numpy_program.Program: per statement a template's number and the
slots of its holes, by slot a hole's text), which numpy_backend.load runs without
the text. The text itself (2.3 million lines, ~100 MB with linecache's copy of its
lines, at 10⁶ operations) is then wanted only by a reader: `.source`, `inspect`, a
traceback, NumPy's warnings. So generated hands out a `LazySource` (its `str()` is
the text, formatted from the program at the first call and kept), and load
registers `Lines` with linecache: a sequence whose line k is formatted from the
program when linecache is asked for it (a traceback's one line: one statement
formatted, not the text). Both format from the same program as generated's eager
text (`formatted`, which it calls too), so every reader sees the same bytes.

linecache's own lazy entries (a 1-tuple of a function) were the other way: they
serve only file names that are not `<...>` and that os.stat cannot find, and the
first traceback would make, and keep, every line.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import Callable

# (string.Formatter's parser itself: `import string` cost ~0.4 ms of `import exprcompiler`)
from _string import formatter_parser


def formatted(head: str, formats: list, numbered, slots, texts: list) -> str:
    """The function's text: `head` (the lines before the body, the `def` line last,
    no newline at its end), then per statement its format (numbered) with its slots'
    texts (`slots`: every statement's, one after another), one format call for all
    of them (the header's braces doubled: a description's)."""
    keys = "\n".join([head.replace("{", "{{").replace("}", "}}"), *map(formats.__getitem__, numbered), ""])
    return keys.format(*map(texts.__getitem__, slots))


def format_holes(fmt: str) -> int:
    """The number of holes `{}` of a statement's format (a doubled brace is none)."""
    return sum(field is not None for _, field, _, _ in formatter_parser(fmt))


def slot_starts(holes: list, numbered) -> array:
    """Where each statement's slots start in a program's one list of slots (and, last,
    its end): `holes`, each template's number of them; `numbered`, each statement's
    template."""
    return array("q", accumulate(map(holes.__getitem__, numbered), initial=0))


class Texts:
    """The holes' texts by slot (names, literals: numpy_program.Program's `texts`) in
    one str, joined by newlines, which no name or literal holds: as a list they are as
    many str objects as slots (2·10⁵ at 10⁵ operations, 110 bytes an operation of
    generate's peak of memory and of the program's), wanted only when text is made.
    `list()` splits them; `texts[slot]` too, at the first call (a line of a
    traceback), and keeps that list. `joined` may be made only when first asked for
    (`made_by`). `holes`, if not None: per hole of the program, the number of its text
    (where the program's slots are not one a text: name_later.py); else its slot's."""

    __slots__ = ("_joined", "_make", "_list", "holes")

    def __init__(self, texts):
        self._joined = "\n".join(texts)
        self._make = None
        self._list = None
        self.holes = None

    @classmethod
    def from_joined(cls, joined: str) -> "Texts":
        """The texts already joined by newlines (name_codes.Names.joined: no str each)."""
        made = cls(())
        made._joined = joined
        return made

    @classmethod
    def made_by(cls, make: Callable[[], str]) -> "Texts":
        """The texts that make() joins by newlines, when first asked for (generate makes
        a program whose text is wanted only by a reader, or by its compile on use:
        name_codes.Names.deferred)."""
        made = cls(())
        made._joined, made._make = None, make
        return made

    @property
    def joined(self) -> str:
        joined = self._joined
        if joined is None:
            make = self._make
            if make is None:   # (made by another thread meanwhile)
                return self._joined
            joined = self._joined = make()   # (two threads at once: both make the same str)
            self._make = None
        return joined

    def list(self) -> list:
        return self._list if self._list is not None else self.joined.split("\n")

    def __getitem__(self, slot: int) -> str:
        if self._list is None:
            self._list = self.joined.split("\n")
        return self._list[slot]


class LazySource:
    """A statement program's text (numpy_program.Program, with its `head`): `str()`
    formats it once and keeps it. Where a str is expected (`.source` of Artifact,
    Kernel and Compiled) its holder converts it (`text_of`)."""

    __slots__ = ("program", "_text")

    def __init__(self, program):
        self.program = program
        self._text = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self.once()
        return self._text

    def once(self) -> str:
        """The text without keeping it (what reads it once: numpy_tier's compile)."""
        if self._text is not None:
            return self._text
        p = self.program
        return formatted(p.head, p.formats, p.numbered, text_holes(p), p.texts.list())

    def line_count(self) -> int:
        return self.program.start + 1 + len(self.program.numbered)

    def __repr__(self) -> str:
        return f"<generated source of {self.line_count():,} lines, not formatted yet>" if self._text is None \
            else f"<generated source of {self.line_count():,} lines>"


def text_holes(program):
    """Per hole of a statement program, the number of its text (program.texts'): its
    own numbering where the program's texts have one, else its slot."""
    holes = program.texts.holes
    return program.slots if holes is None else holes


def text_of(source) -> str:
    """The text of a source: a str, or a LazySource's."""
    return source if type(source) is str else str(source)


def lines_in(source) -> int:
    """The newlines of a source, a str or a LazySource (whose text is not made)."""
    return source.count("\n") if type(source) is str else source.line_count()


# Slices of more lines than this come from the whole text (made once) rather than
# from a format call per line (inspect.getsource asks for the function's every line).
_SLICE_FROM_TEXT = 2_000


class Lines(Sequence):
    """A LazySource's lines, each ending with a newline, as linecache holds a file's:
    line k formatted from the program when asked for (a traceback's, a warning's);
    a long slice (inspect's) cut from the whole text."""

    def __init__(self, source: LazySource):
        self.source = source
        self.head = [line + "\n" for line in source.program.head.split("\n")]
        self._starts = None   # where each statement's slots start (an array: made for the first line asked for)

    def __len__(self) -> int:
        return self.source.line_count()

    def __iter__(self):
        return iter(self[:])

    def __getitem__(self, k):
        n = len(self)
        if isinstance(k, slice):
            rows = range(*k.indices(n))
            if len(rows) > _SLICE_FROM_TEXT:
                return str(self.source).splitlines(True)[k]
            return [self[j] for j in rows]
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("line index out of range")
        if k < len(self.head):
            return self.head[k]
        p = self.source.program
        step = k - len(self.head)
        if self._starts is None:
            self._starts = slot_starts(list(map(format_holes, p.formats)), p.numbered)
        at = slice(self._starts[step], self._starts[step + 1])
        return p.formats[p.numbered[step]].format(*map(p.texts.__getitem__, text_holes(p)[at])) + "\n"


__all__ = ["LazySource", "Lines", "Texts", "format_holes", "formatted", "slot_starts", "text_holes", "text_of"]
