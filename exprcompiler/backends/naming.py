"""Names of trace variables in generated source (Griewank/Tangent naming), and the
only way user text enters generated source: sanitized comments.

Inputs keep the user's names (mangled where they would clash with the target
language or with generated names), intermediates are v1, v2, ..., tangents
v1_dot, adjoints v1_bar, shared temporaries t1, t2. An adjoint that the trace
accumulates in several SSA steps (v̄_4 = v̄_4 + v̄_5) reuses one name once the
previous version is dead, so the code reads like the lecture table.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Optional

from ..trace.ir import Label, Trace

# Generated names look like v12, t3, v4_bar, x_dot...; a user name of that form gets
# a trailing underscore so it can never collide with one.
_GENERATED_FORM = re.compile(r"^(v\d+|t\d+|vm\d+)(_|$)|_(bar|dot)(_|$)")


def identifier(name: str, reserved: Iterable[str] = ()) -> str:
    """A valid, non-clashing identifier for a user-supplied name."""
    name = unicodedata.normalize("NFKC", name)
    text = "".join(c if (c.isalnum() or c == "_") and c.isascii() or c.isidentifier() else "_"
                   for c in name) or "_"
    if not text.isidentifier():
        text = "_" + text
    if text in reserved or _GENERATED_FORM.search(text):
        text += "_"
    return text


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


def statement_positions(trace: Trace, named: list[bool]) -> list[int]:
    """For each variable, the position of the statement that computes it (inlined
    temporaries are computed inside the statement of their one use)."""
    n = len(trace.instrs)
    consumer = [n] * n
    for i, ins in enumerate(trace.instrs):
        for a in ins.args:
            consumer[a] = i
    pos = list(range(n))
    for i in range(n - 1, -1, -1):
        if not named[i] and trace.instrs[i].op != "const":
            pos[i] = pos[consumer[i]] if consumer[i] < n else n
    return pos


def assign_names(trace: Trace, named: list[bool], reserved: set[str]) -> list[Optional[str]]:
    """One name per named variable; a name is reused only by the same label once its
    previous holder is read for the last time (by the statement that rebinds it)."""
    n = len(trace.instrs)
    pos = statement_positions(trace, named)
    last_read = [-1] * n
    for i, ins in enumerate(trace.instrs):
        for a in ins.args:
            last_read[a] = max(last_read[a], pos[i])
    for _, v in trace.outputs:
        last_read[v] = n + 1
    names: list[Optional[str]] = [None] * n
    holder: dict[str, int] = {}
    temps = 0
    for i, ins in enumerate(trace.instrs):
        if not named[i]:
            continue
        pref = preferred_name(trace.labels[i], reserved, ins.op == "input")
        if ins.op == "input" and pref is None:
            pref = identifier(ins.name, reserved)
        if pref is None:
            temps += 1
            pref = f"t{temps}"
        name, k = pref, 0
        while name in holder or name in reserved:
            prev = holder.get(name)
            if (prev is not None and trace.instrs[prev].op != "input"
                    and trace.labels[prev] == trace.labels[i] and last_read[prev] <= i):
                break
            k += 1
            name = f"{pref}_{k}"
        holder[name] = i
        names[i] = name
    return names


def comment_text(text: str, limit: int, *, c: bool = False) -> str:
    """User text shown in a generated comment: one line, printable, bounded. For C
    (`c=True`) also ASCII only, with no `*/` or `/*` that could end or nest it."""
    ok = (lambda ch: ch.isprintable() and ch.isascii()) if c else str.isprintable
    flat = "".join(ch if ok(ch) else ("?" if c else " ") for ch in text.strip().replace("\n", "; "))
    if c:
        flat = flat.replace("*/", "* /").replace("/*", "/ *").replace("\\", "/")
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."
