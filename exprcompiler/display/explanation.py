"""What `explain()` returns: its text, which prints and compares as the plain string
did, and a table of the trace sizes in a notebook (jacobians.explain builds it)."""

from __future__ import annotations

from typing import Sequence

from .html import esc, paragraph, pre, safe_display, table


class Explanation(str):
    """The text of `explain()` (a str: print, ==, `in` work as on any string) that shows
    as itself at the prompt rather than as a quoted string full of \\n, and as a table
    in a notebook. `head`, `rows` (what, operations, note) and `tail` are its parts."""

    def __new__(cls, text: str, head: Sequence[str] = (), rows: Sequence[tuple] = (),
                tail: Sequence[str] = ()):
        self = super().__new__(cls, text)
        self.head, self.rows, self.tail = list(head), list(rows), list(tail)
        return self

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))

    @safe_display
    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<pre>{esc(str(self))}</pre>"
        body = table(["trace", "operations", "note"],
                     [(what, str(count), note) for what, count, note in self.rows], right=[1])
        # the notes after the table (mode choice, sparsity, rewrites) may be indented
        # sub-tables: kept as text
        return ("<div>" + "".join(paragraph(line) for line in self.head) + body
                + (pre("\n".join(self.tail)) if self.tail else "") + "</div>")


__all__ = ["Explanation"]
