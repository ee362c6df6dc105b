"""Names of trace variables in generated source (Griewank/Tangent naming), and the
only two ways user text enters generated source: identifiers and escaped comments.

Inputs keep the user's names where those are plain ASCII identifiers; every other
name goes through an injective mangling into [A-Za-z0-9_], so two inputs never
share an identifier whatever their Unicode, and no identifier is a keyword, a
header's macro or a name the generated code uses (see `identifier`). Intermediates
are v1, v2, ..., tangents v1_dot, adjoints v1_bar, shared temporaries t1, t2. An
adjoint that the trace accumulates in several SSA steps (v̄_4 = v̄_4 + v̄_5) reuses
one name once the previous version is dead, so the code reads like the lecture
table.
"""

from __future__ import annotations

import re
from itertools import compress
from operator import itemgetter
from typing import Iterable, Optional

from ..trace.ir import Label, Trace

# A plain name: ASCII letters and digits in words joined by single underscores.
# Such a name is its own identifier, unless it is reserved or looks generated.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*\Z")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Generated names look like v12, t3, vm1, v4_bar, x_dot, x_bar_x1; the kernels' own
# helpers and macros start with xc_ / XC_ (xc_pow, XC_TILE, the split kernel's guard
# XC_PRELUDE_<NAME>), a namespace no user name may enter whatever the kernel defines.
_GENERATED_FORM = re.compile(r"^(v\d+|t\d+|vm\d+)(_|$)|_(bar|dot)(_|$)|^(xc|XC)_")
ESCAPED_PREFIX = "u__"


def param_alias(name: str) -> str:
    """A trace input's name as a keyword a compiled function also takes: a seed's
    dot (x.dot, y.bar, which no identifier holds) as an underscore (x_dot, y_bar).
    (Where a user's own name is x_dot, call_args gives the seed x_dot_.)"""
    return name.replace(".", "_")


def identifier(name: str, reserved: Iterable[str] = ()) -> str:
    """The identifier of a user-supplied name: injective over all strings for one
    `reserved` set, its values in [A-Za-z_][A-Za-z0-9_]*.

    Three classes with disjoint images: a plain name that is neither reserved nor of
    a generated form is itself (no double underscore, no trailing one); a plain name
    that is gets one trailing underscore (`int` -> `int_`, `v1` -> `v1_`; still no
    double underscore); anything else is `u__` followed by its characters, letters
    and digits as they are and every other character c as `_<hex of ord(c)>_`
    (`é` -> `u___e9_`, `_ue9_` -> `u___5f_ue9_5f_`), which decodes uniquely."""
    if _PLAIN.match(name):
        return name + "_" if name in reserved or _GENERATED_FORM.search(name) else name
    return ESCAPED_PREFIX + "".join(ch if ch in _ALNUM else f"_{ord(ch):x}_" for ch in name)


def preferred_name(label: Optional[Label], reserved: Iterable[str], is_input: bool = False) -> Optional[str]:
    if label is None:
        return None
    suffix = "" if label.kind == "v" else "_" + label.kind
    if label.base is not None and (is_input or label.index is None or label.index <= 0):
        stem = identifier(label.base, reserved)
    else:
        stem = f"v{label.index}" if label.index >= 0 else f"vm{-label.index}"
    tag = "_" + identifier(label.tag, reserved) if label.tag else ""
    return stem + suffix + tag


def statement_positions(trace: Trace, named: list[bool]) -> tuple[list[int], list[int], list[int]]:
    """For each variable, the position of the statement that computes it (inlined
    temporaries are computed inside the statement of their one use); each variable's
    last consumer (n: none); the inlined variables, in order."""
    instrs = trace.instrs
    n = len(instrs)
    consumer = [n] * n
    for i, args in enumerate(map(itemgetter(1), instrs)):
        for a in args:
            consumer[a] = i
    pos = list(range(n))
    inlined = list(compress(range(n), [not k and op != "const" for k, op in zip(named, map(itemgetter(0), instrs))]))
    for i in reversed(inlined):
        c = consumer[i]
        pos[i] = pos[c] if c < n else n
    return pos, consumer, inlined


def last_reads(trace: Trace, named: list[bool]) -> list[int]:
    """For each variable, the position of the last statement that reads it (-1: none;
    n + 1 for an output): its last consumer's, unless an inlined consumer's statement
    comes later (a named consumer c is at c, before the last)."""
    n = len(trace.instrs)
    pos, consumer, inlined = statement_positions(trace, named)
    pos.append(-1)   # (n: no consumer)
    last_read = list(map(pos.__getitem__, consumer))
    instrs = trace.instrs
    for i in inlined:
        p = pos[i]
        for a in instrs[i].args:
            if last_read[a] < p:
                last_read[a] = p
    for _, v in trace.outputs:
        last_read[v] = n + 1
    return last_read


class _LastRead:
    """assign_names' test for reusing a name: whether variable v is read for the last
    time by statement i or before. Most reuses are an adjoint's accumulation
    (v̄ = v̄ + ...), whose previous version only that statement reads: `uses`
    (trace.render.use_counts) tells, without last_reads' scan of every argument."""

    def __init__(self, trace: Trace, named: list[bool], uses: Optional[list[int]]):
        self.trace, self.named, self.uses = trace, named, uses
        self.last_read: Optional[list[int]] = None   # last_reads(trace, named), once needed
        self.budget = len(trace.instrs)   # instructions the scans below may read, before last_reads pays

    def read_by(self, v: int, i: int) -> bool:
        instrs = self.trace.instrs
        if self.last_read is None and self.uses is not None:
            left = self.uses[v] - instrs[i].args.count(v)   # reads by others (an output's too)
            if left == 0:
                return True
            # the others, from v on, while they are statements before i and the budget lasts
            stop = min(i, v + 1 + self.budget)
            for r in range(v + 1, stop):
                args = instrs[r].args
                if v in args:
                    if not self.named[r]:
                        break   # inlined: its statement may come after i
                    left -= args.count(v)
                    if left == 0:
                        self.budget -= r - v
                        return True
            else:
                self.budget -= stop - v - 1
                if stop == i:
                    return False   # read after i, or an output
        if self.last_read is None:
            self.last_read = last_reads(self.trace, self.named)
        return self.last_read[v] <= i


_NO_LABEL = (None, -1, None, None)   # preferred_name's slow path: no label


def assign_names(trace: Trace, named: list[bool], reserved: set[str],
                 uses: Optional[list[int]] = None, aliases: Optional[dict[int, int]] = None) -> list[Optional[str]]:
    """One name per named variable; a name is reused only by the same label once its
    previous holder is read for the last time (by the statement that rebinds it).
    `uses`: trace.render.use_counts(trace), if known (it spares most traces the
    scan for each variable's last reader). `aliases`, if given (a dict): each variable
    that reuses a name -> the first variable of that name (numpy_program's values
    have a slot per name)."""
    instrs = trace.instrs
    names: list[Optional[str]] = [None] * len(instrs)
    holder: dict[str, Optional[int]] = dict.fromkeys(reserved)   # name -> its variable (None: reserved)
    read_by = _LastRead(trace, named, uses).read_by
    temps = 0
    labels = trace.labels
    for i, label in compress(enumerate(labels), named):
        kind, index, base, tag = label or _NO_LABEL
        if base is None and tag is None and index >= 0:
            # v12, v12_bar (most lines): what preferred_name gives, without its call
            pref = f"v{index}" if kind == "v" else f"v{index}_{kind}"
        else:
            is_input = instrs[i].op == "input"
            pref = preferred_name(label, reserved, is_input)
            if is_input and pref is None:
                pref = identifier(instrs[i].name, reserved)
            if pref is None:
                temps += 1
                pref = f"t{temps}"
        prev = holder.setdefault(pref, i)   # (one lookup where the name is free: most lines)
        if prev != i:
            name, k = pref, 0
            while prev is not None or name in holder:
                if prev is not None and instrs[prev].op != "input" and labels[prev] == label \
                        and read_by(prev, i):
                    if aliases is not None:
                        aliases[i] = aliases.get(prev, prev)
                    break
                k += 1
                name = f"{pref}_{k}"
                prev = holder.get(name)
            holder[name] = i
            pref = name
        names[i] = pref
    return names


def comment_text(text: str, limit: int, *, c: bool = False) -> str:
    """User text shown in a generated comment (`# ...`, or inside `/* ... */` with
    `c=True`): one line, printable, bounded, and unable to end or redirect the comment.

    Every character that is not printable (newlines included) becomes `?`; for C,
    a printable non-ASCII one is spelled `<U+00E9>` and the backslash becomes `?`
    too (so no line splice). Then a space goes between the two characters of every
    `*/`, `/*` and `??` (C: comment end, nested opening, trigraph) or after `coding`
    before `:`/`=` (Python: an encoding declaration). That last pass inserts only
    spaces, which belong to no such pair, so its output contains none of them,
    whatever the input."""
    flat = "".join(map(_c_char if c else _py_char, text.strip().replace("\r\n", "\n").replace("\n", "; ")))
    if len(flat) > limit:
        flat = flat[:limit - 3] + "..."
    return _SPLIT_C.sub(" ", flat) if c else _SPLIT_PY.sub(" ", flat)


def _c_char(ch: str) -> str:
    if " " <= ch <= "~":
        return "?" if ch == "\\" else ch
    return f"<U+{ord(ch):04X}>" if ch.isprintable() else "?"


def _py_char(ch: str) -> str:
    return ch if ch.isprintable() else "?"


_SPLIT_C = re.compile(r"(?<=\*)(?=/)|(?<=/)(?=\*)|(?<=\?)(?=\?)")
_SPLIT_PY = re.compile(r"(?<=coding)(?=[:=])")
