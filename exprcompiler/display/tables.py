"""The lecture tables of a function at a point — the forward primal trace, the tangent
traces (one per seed direction) and the reverse adjoint trace — as `exprc trace` prints
them, and as HTML tables in a notebook.

`trace_tables(primal, wrt, env, mode)` builds the blocks that `exprc trace` prints
(cli.cmd_trace calls it) and `CompiledFunction.trace_at(**point)` shows; the text of
each table is trace/printer.format_trace's and the HTML cells are the printer's own
(trace_rows), so the two never disagree on a digit.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from .. import passes
from ..trace.check import interpret
from ..trace.ir import Trace
from ..trace.printer import Row, decorate, format_trace, trace_rows
from .html import paragraph, safe_display, table

# A table over this many instructions shows its size and its first rows in a notebook
# (formatting costs about 30 µs per instruction, and nobody reads 10^4 rows there).
MAX_INSTRS = 3000
FIRST_ROWS = 30


class Block(NamedTuple):
    """One table: its title, the trace, every variable's values (None: no point given)
    and the printer's line filters."""
    title: str
    trace: Trace
    values: Optional[list] = None
    show_line: Optional[Callable] = None
    show_output: Optional[Callable] = None

    def text(self, ascii: bool) -> str:
        return format_trace(self.trace, self.values, ascii=ascii, show_line=self.show_line,
                            show_output=self.show_output)

    def rows(self, ascii: bool) -> list[Row]:
        return trace_rows(self.trace, self.values, ascii=ascii, show_line=self.show_line,
                          show_output=self.show_output)

    def first(self, ascii: bool, count: int = FIRST_ROWS) -> tuple[list[Row], str]:
        """The first `count` rows of the table and their text, formatting only the part
        of the trace up to them (a prefix of an SSA trace is a trace)."""
        t, lines = self.trace, count
        while True:  # temporaries pass show_line but are inlined: widen until enough rows
            shown, cut = 0, len(t.instrs)
            for i, label in enumerate(t.labels):
                if self.show_line is None or self.show_line(label):
                    shown += 1
                    if shown > lines:
                        cut = i
                        break
            prefix = Block(self.title, Trace(t.instrs[:cut], t.labels[:cut], ()),
                           None if self.values is None else self.values[:cut], self.show_line)
            rows = prefix.rows(ascii)[:count]
            if len(rows) >= count or cut == len(t.instrs):
                break
            lines *= 2
        return rows, "\n".join(prefix.text(ascii).splitlines()[:count])


def _unit_seed(value, on: bool):
    """1 or 0 for a scalar; for a tensor e_1 (1 in its first element) or zeros."""
    if np.ndim(value) == 0:
        return float(on)
    seed = np.zeros(np.shape(value))
    if on:
        seed.flat[0] = 1.0
    return seed


def _values(trace: Trace, env: Optional[dict]):
    return interpret(trace, env, all_values=True) if env is not None else None


def trace_blocks(primal: Trace, wrt: list, env: Optional[dict] = None, mode: str = "reverse",
                 ascii: bool = False) -> list[Block]:
    """The tables of `exprc trace`: the primal trace; for mode "forward" (or "both") one
    tangent trace per variable of `wrt` (seeded with a unit vector; without a point,
    one table of the tangent trace); for "reverse" (or "both") the adjoint trace.
    Mode "primal" gives the primal table alone."""
    if mode not in ("primal", "reverse", "forward", "both"):
        raise ValueError(f"mode={mode!r}: use 'primal', 'reverse', 'forward' or 'both'")
    blocks = [Block("forward primal trace", primal, _values(primal, env))]
    if mode in ("forward", "both"):
        tangent = passes.jvp(primal, wrt)
        if env is None:
            blocks.append(Block("forward tangent trace", tangent))
        for x in wrt if env is not None else ():
            # a tensor variable takes one sweep per element: the table shows the first,
            # seeded with the unit vector e_1 of its shape
            seeds = {f"{w}.dot": _unit_seed(env[w], w == x) for w in wrt}
            seed_text = ", ".join(f"{decorate(w, 'dot', ascii)} = "
                                  + (str(int(w == x)) if np.ndim(env[w]) == 0
                                     else ("e_1" if w == x else "0")) for w in wrt)
            more = f" (the first of {int(np.size(env[x]))} sweeps for {x})" if np.ndim(env[x]) else ""
            blocks.append(Block(f"forward tangent trace, seeds {seed_text}{more}", tangent,
                                _values(tangent, {**env, **seeds})))
    if mode in ("reverse", "both"):
        adjoint = passes.vjp(primal, wrt)
        seeds = {f"{y}.bar": 1.0 for y in primal.output_names}
        blocks.append(Block("reverse adjoint trace", adjoint,
                            _values(adjoint, None if env is None else {**env, **seeds}),
                            show_line=lambda lab: lab is None or lab.kind != "v",
                            show_output=lambda name: name.endswith(".bar")))
    return blocks


def cells(row: Row) -> list[str]:
    """[variable, shape, definition, arithmetic, value] of a printer row: its tail is
    "value" or "arithmetic = value" (numbers never contain " = ")."""
    arith, _, value = row.tail.rpartition(" = ")
    return [row.name, row.shape, row.rhs, arith, value]


def block_html(title: str, rows: list[Row], note: str = "") -> str:
    table_cells = [cells(r) for r in rows]
    header = ["variable", "shape", "definition", "arithmetic", "value"]
    columns = [c for c in range(5) if c in (0, 2) or any(r[c] for r in table_cells)]
    body = table([header[c] for c in columns], [[r[c] for c in columns] for r in table_cells],
                 caption=title, right=[columns.index(4)] if 4 in columns else [])
    return body + (paragraph(note) if note else "")


class TraceTables:
    """The lecture tables of a function (at a point, when one is given): `print` gives
    the text of `exprc trace`; a notebook shows HTML tables. `blocks` holds each table's
    title, trace and values."""

    def __init__(self, blocks: list[Block], ascii: bool = False):
        self.blocks = blocks
        self.ascii = ascii

    def _large(self, block: Block) -> bool:
        return len(block.trace.instrs) > MAX_INSTRS

    def __str__(self) -> str:
        return "\n\n".join(f"{b.title}\n{b.text(self.ascii)}" for b in self.blocks)

    def __repr__(self) -> str:
        if not any(self._large(b) for b in self.blocks):
            return str(self)
        return "\n\n".join(f"{b.title}\n" + (b.first(self.ascii)[1] + "\n" + _size(b.trace)
                                             if self._large(b) else b.text(self.ascii))
                           for b in self.blocks)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))  # IPython's text form: the table, not the default <object at ...>

    @safe_display
    def _repr_html_(self) -> str:
        parts = []
        for b in self.blocks:
            if self._large(b):
                parts.append(block_html(b.title, b.first(self.ascii)[0], _size(b.trace)))
            else:
                parts.append(block_html(b.title, b.rows(self.ascii)))
        return "<div>" + "".join(parts) + "</div>"


def _size(trace: Trace) -> str:
    return (f"... a trace of {len(trace.instrs)} instructions ({trace.size} operations): "
            f"the first {FIRST_ROWS} rows are shown; print() shows them all")


def trace_tables(primal: Trace, wrt: list, env: Optional[dict] = None, mode: str = "reverse",
                 ascii: bool = False) -> TraceTables:
    return TraceTables(trace_blocks(primal, wrt, env, mode, ascii), ascii)


def tables_at(f, point: dict, mode: Optional[str] = None, ascii: bool = False) -> TraceTables:
    """The tables of a compiled function `f` at `point` (every input by name): the
    adjoint trace for a reverse-mode function, the tangent traces for a forward-mode
    one, the primal trace alone for a function without derivatives."""
    from ..api import with_wrt
    primal, wrt = with_wrt(f.primal, list(f.wrt) or None) if f.wrt else (f.primal, [])
    if mode is None:
        mode = "primal" if not wrt else ("forward" if f.mode == "forward" else "reverse")
    missing = [n for n in primal.input_names if n not in point]
    if missing:
        raise TypeError(f"trace_at: no value for {', '.join(missing)}")
    env = {}
    for n in primal.input_names:
        try:
            env[n] = np.asarray(point[n], dtype=float) if np.ndim(point[n]) else float(point[n])
        except (TypeError, ValueError):
            raise TypeError(f"trace_at: {n}={point[n]!r:.60} is not a number or an array of numbers") from None
    return trace_tables(primal, wrt, env, mode, ascii)


def trace_html(trace: Trace) -> str:
    """`Trace._repr_html_`: the trace's table, without values."""
    tables = TraceTables([Block("evaluation trace", trace)])
    return tables._repr_html_()


__all__ = ["Block", "TraceTables", "trace_blocks", "trace_tables", "tables_at", "trace_html",
           "cells"]
