"""A generated NumPy text read back as a statement program's parts: its statements cut
into tokens (C-level string methods, a chunk at a time), each token's key text and the
slot of its hole, each statement's template number and slots (_Statements), and the
templates' definitions from their keys (_template_def).

Where it sits: numpy_program.load_program, for a text that numpy_backend.generated
did not key (a text from elsewhere, lines the renderer does not key); a Program from
the trace needs none of this (numpy_program.load_statements).
"""

from __future__ import annotations

import builtins
import keyword
import re
from itertools import accumulate, count, filterfalse, islice, repeat

from ..trace.render import Numbers
from .numpy_runner import _hole, _template

# The statements are cut into tokens by C-level string methods, not a regular expression
# (sre scans ~25 ns a character: 3 µs a statement). Only the holes need whitespace on
# both sides: an opening bracket gets a space after it (`np.sin( v3 )`: the function and
# its bracket are one token), a closing one and a comma a space before, a unary minus
# one after (-v3 is `-` and `v3`, not one of 10⁵ distinct tokens; 1e-05 has no space
# before its sign and keeps it). split() then leaves names, literals, operators, `=`
# and tokens such as `np.sin(`, `x.T`, `axis=1`.
_SPACED = (("(", "( "), (")", " )"), ("[", "[ "), ("]", " ]"), (",", " ,"), (" -", " - "))
# The holes inside a token that is not a plain variable name: a name not after a dot
# (an attribute) nor before `=` (a keyword argument); a float literal, unsigned (repr's
# forms: 0.5, 1e-05, 1.5e+20; integers, as in axis=(0, 1), stay in the template).
# Generated names never start with "_" (naming.identifier): no clash with the runner.
_HOLE = r"(?<![\w.])(?:[A-Za-z_]\w*+(?!=)|\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)"


def _holes_in(text: str):
    """_HOLE's matches in `text` (compiled at the first use, by re's cache: a text read
    back only, not a program that generated keyed: ~0.2 ms of `import exprcompiler`)."""
    return re.compile(_HOLE).finditer(text)


_KNOWN = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_MARK = "\x00"   # a hole in a template's key: a character generated text never holds
# A chunk's text ends with this: the target of a statement that does not follow (its
# key text is a hole's, its token has no slot), so that the last statement's key ends
# in a hole like every other's (see _Statements.add).
_END = f" {_MARK} = "
_NEVER = ("'", '"', "\\", ";", _MARK)   # in the text the program takes


def _template_def(number: int, key: str) -> str:
    """`def t12(_v, _s, _o): _v[_s[_o]] = ...` for a statement's key `... $` (its
    right-hand side, then its target's hole: see _Statements.add); for the return
    line's key `return ...`, that line. (Generated names never start with "_".)"""
    if key.startswith("return "):
        pieces = key.split(_MARK)
    else:
        right = key[:-len(_MARK)].split(_MARK)
        pieces = ["", " = " + right[0], *right[1:]]
    text = [pieces[0]]
    for k, piece in enumerate(pieces[1:]):
        text += [_hole(k), piece]
    return _template(number, "".join(text).strip(), len(pieces) - 1)


class _Statements:
    """The program's statements, tokenized a chunk at a time: per statement its
    template's number (in `numbered`) and the slots of its holes (one statement's
    after another's in the list `arguments`). Slots start at 1 (slot 0 is never
    used), so that filter(None, ...) drops the tokens that are not holes (None)
    without a call per token.

    `slot_of` gives the slot of each plain name (a hole's), parameters first. It is
    the one large dict (2·10⁶ names at 10⁶ operations), and a lookup in it costs what
    a cache miss costs, growing with its size: it is looked up once per distinct name
    per chunk (about 1.3 a statement: setdefault, where a name not yet seen takes a
    number of `count` and a name seen before leaves its number unused), in the text's
    order (an adjoint reads its primal names in the reverse of the order they were
    written, so their entries are near one another), and each token is then looked
    up in the chunk's own small dict. (Looked up once per token, 6-7 a statement, it
    took 0.5 µs a statement at 10⁴ operations and 1.1 at 10⁵.) `text_of` gives the
    key text of every other token ever seen (operators, known names, literals, tokens
    such as `np.sin(`: a few hundred), `hole_of` the slot of those among them that
    hold a hole (a literal, `x.T`). `keys` numbers each distinct key, `holes` gives
    each key's number of holes; `assigned` holds the statements' targets' slots."""

    def __init__(self, params, known: frozenset):
        self.known = known
        self.slot_of = dict(zip(params, count(1)))
        self.size = 1 + len(params)   # slots given, slot 0 included
        self.literals: dict[str, int] = {}
        self.text_of: dict[str, str] = {}
        self.hole_of: dict[str, int] = {}
        self.keys = Numbers()
        self.holes: list[int] = []
        self.numbered: list[int] = []
        self.arguments: list[int] = []
        self.assigned: set[int] = set()   # the targets' slots

    def add(self, text: str, returned: str = "") -> bool:
        """Tokenize statement lines (`    name = expression\n`), and the return line
        without its indent (`returned`: `return ...\n`) if given; False for a token
        holding two holes or a statement's target that is not one plain name.

        A statement's key is the key text of its tokens from the one after its `=` to
        the next statement's target (_END's for the chunk's last): the chunk's key text
        split at ` = ` (one on each line, and no token `=` otherwise) gives the keys, with
        no token a line to mark the lines' ends. A key's holes are the right-hand side's
        and then the target's; the statement's tuple of slots takes them in the text's
        order, the target's first (_template_def writes the template so)."""
        text += _END + returned
        for char, spelled in _SPACED:   # (str.translate to longer strings is 10x slower)
            if char in text:   # (a scan for a character is cheaper than replace's)
                text = text.replace(char, spelled)
        tokens = text.split()
        distinct = dict.fromkeys(tokens)   # in the text's order (see the class's docstring)
        plain = list(filterfalse(self.known.__contains__, filter(str.isidentifier, distinct)))
        local = dict(zip(plain, map(self.slot_of.setdefault, plain, count(self.size))))
        self.size += len(plain)
        others = distinct.keys() - local.keys()
        text_of = self.text_of
        for token in others.difference(text_of):
            if not self._classify(token):
                return False
        with_holes = others.intersection(self.hole_of)
        local.update(zip(with_holes, map(self.hole_of.__getitem__, with_holes)))
        keys = f"{' '.join(map(text_of.get, tokens, repeat(_MARK)))} ".split(" = ")
        if keys[0] != _MARK:   # the first target is a plain name
            return False
        numbered = list(map(self.keys.__getitem__, keys[1:] if returned else keys[1:-1]))
        holes = self.holes
        for key in islice(self.keys, len(holes), None):
            if not (key.endswith(" " + _MARK) and not key.endswith(", " + _MARK) or key.startswith("return ")):
                return False   # a target that is not one plain name (a, b = ...), two ` = ` on a line
            holes.append(key.count(_MARK))
        ends = list(accumulate(map(holes.__getitem__, numbered)))
        starts = [0, *ends[:-1]]
        slots = tuple(filter(None, map(local.get, tokens)))
        if len(slots) != ends[-1]:
            return False
        self.arguments.extend(slots)
        self.numbered += numbered
        if returned:
            starts.pop()   # the return line's first hole is no target
        self.assigned.update(map(slots.__getitem__, starts))
        return True

    def _classify(self, token: str) -> bool:
        """A token other than a name's: its key text and the slot of its hole (a name
        or a float literal: x.T, 1.0, 1e-05), if it holds one."""
        found = [m for m in _holes_in(token) if m.group()[0].isdigit() or m.group() in self.slot_of]
        if len(found) > 1:
            return False
        if found:
            m, = found
            hole = m.group()
            if hole[0].isdigit():
                if hole not in self.literals:
                    self.literals[hole] = self.size
                    self.size += 1
                self.hole_of[token] = self.literals[hole]
            else:
                self.hole_of[token] = self.slot_of[hole]
            self.text_of[token] = token[:m.start()] + _MARK + token[m.end():]
        else:
            self.text_of[token] = token
        return True


def _plain_lines(text: str, n: int) -> bool:
    """Whether `text` is `n` lines `    name = expression\n` as the program takes them:
    four spaces and one ` = ` a line (checked by the keys: see _Statements.add), no
    string literal, backslash or `;`, and no _MARK."""
    return (text.startswith("    ") and text.count("\n    ") == n - 1 and text.count(" = ") == n
            and not any(char in text for char in _NEVER))

