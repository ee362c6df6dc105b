"""The inputs a text reads in its first window, declared before the parser runs.

Where it sits: in `parse` (text → tokens → Trace), between the lexer's first window
and the parser's first statement. The trace puts its inputs first, in natural order
(x2 before x10); the parser meets them where they are first read, between the
operations. Finishing the trace then moves them to the front and renumbers every
instruction after them (Builder.finish: about 0.5 µs an instruction at 10⁵). Declared
first, in that order, they are where the trace wants them and nothing moves.

A name read in the first window that is not assigned there is an input, or the
parser's error ("used before it is assigned"): the window's tokens tell which names
are read, by C-level set and map operations, with no parsing (in the window's forms,
window_forms.py, which the plans make anyway, a byte per token tells the tokens that
'=' or '(' follows). The guess only moves where inputs are built: a name guessed
wrongly (read nowhere: the window's tokens can mislead only for an option whose '='
is past a newline) is an unused input instruction, which the parser takes out of the
builder's inputs before the finish, which then drops it as dead code and renumbers,
as it did before; an input first read in a later window is appended where it is
read, as before. Either way the trace is the same. (A wrong guess also counts against
the input-size limit.) Where every input was guessed, they are in natural order as
declared, and the parser hands that order to the finish, which need not sort them.
"""

from __future__ import annotations

from itertools import compress

from ..trace.ir import natural_key
from .grammar import _CODES
from .window_forms import ASSIGN, Window

__all__ = ["read_names"]

# A name followed by one of these is assigned, an option or called, not read.
_NOT_READ_BEFORE = frozenset(("=", "("))
# The same as a translation of a window's codes (window_forms.py): 1 at the codes of
# '=' and '(', 0 elsewhere
_NOT_READ_BEFORE_CODES = bytes(int(code in (ASSIGN, _CODES["("])) for code in range(256))
_NUMBER_START = frozenset("0123456789.")


def read_names(window, not_a_name: frozenset, more: bool) -> list[str]:
    """The names that a token window reads and does not assign, in natural order.
    `window`: the lexer's token list (ending with "", the window's end), or its forms
    (window_forms.Window, made with the parser's codes), whose codes tell the tokens
    that '=' or '(' follows, and whose distinct tokens the lexer may have found (at 10³
    operations of the scaling benchmark's text a third of the list's cost). `not_a_name`:
    the tokens that cannot be read as an input (operators, newlines, functions,
    constants, True/False/None); `more`: other windows follow."""
    if isinstance(window, Window):
        toks = window.toks
        distinct = set(toks) if window.distinct is None else set(window.distinct)
        distinct.difference_update(compress(toks, window.codes[1:].translate(_NOT_READ_BEFORE_CODES)))
    else:
        toks = window
        distinct = set(toks)
        distinct.difference_update(compress(toks, map(_NOT_READ_BEFORE.__contains__, toks[1:])))
    if "." in distinct:   # x.T: an attribute
        distinct.difference_update(compress(toks[1:], map(".".__eq__, toks)))
    if more and len(toks) >= 2:
        # the window's last token: an '=' or '(' after it is in the next window
        distinct.discard(toks[-2])
    distinct.difference_update(not_a_name)
    return sorted((t for t in distinct if t and t[0] not in _NUMBER_START and t[0] != " "),
                  key=natural_key)
