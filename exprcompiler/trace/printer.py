"""Printing traces as the lecture tables print them (Griewank & Walther, ch. 1).

    v_-1 = x1                = 1.5000
    v_1  = v_-1 / v_0        = 1.5000 / 0.5000 = 3.0000
    v̄_4  = v̄_4 + v̄_5         = 2.8437
    x̄1   = v̄_-1              = 3.0118

Primal variables are v_k, tangents v̇_k, adjoints v̄_k (ASCII: vdot_k, vbar_k);
shared temporaries t_k. With values (from `interpret(..., all_values=True)`) each
line shows its number, and one-step lines also show the arithmetic.

Columns: the name, the shape (tensor traces only: `v_3 : (n,)`), the expression and
the value, each starting at the same offset on every row. An expression longer than
RHS_WIDTH would push its value out of line, so that value goes on a line of its own,
under the other values. `trace_rows` gives the cells, for displays other than text.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from .. import ops as _ops
from .ir import Label, Trace
from ..ops import PREC_ADD, PREC_ATOM
from ..shapes import show
from .render import Renderer, Spelling, format_op

_MARK = {"dot": "\u0307", "bar": "\u0304"}
RHS_WIDTH = 48  # the widest expression column; a longer one puts its value on the next line


class Row(NamedTuple):
    """One line of a trace table: `name : shape = rhs = tail` (shape "" for a scalar
    trace, tail "" without values)."""
    name: str
    shape: str
    rhs: str
    tail: str


def _kind_parts(kind: str) -> list[str]:
    return [] if kind == "v" else kind.split("_")


def decorate(base: str, kind: str, ascii: bool = False) -> str:
    """x1 + bar -> x̄1 (ASCII x1_bar); y + dot -> ẏ."""
    parts = _kind_parts(kind)
    if not parts:
        return base
    if ascii:
        return base + "".join("_" + p for p in parts)
    marks = "".join(_MARK[p] for p in parts)
    k = 0
    while k < len(base) and base[k].isalpha():
        k += 1
    at = max(k, 1)  # mark the stem's last letter: x̄1, thetā; a name without letters: its first char
    return base[:at] + marks + base[at:]


def decorate_output(name: str, ascii: bool = False) -> str:
    """y.bar -> ȳ; a name whose suffixes are not all marks (a Jacobian's or a Hessian's
    entry, y1.d.x) is shown as it is named, the name its outputs are looked up by."""
    base, *kinds = name.split(".")
    if not all(k in _MARK for k in kinds):
        return name
    return decorate(base, "_".join(kinds) or "v", ascii)


def label_text(label: Label, ascii: bool = False) -> str:
    if label.index is None:
        return decorate(label.base or "?", label.kind, ascii)
    parts = _kind_parts(label.kind)
    if ascii:
        stem = "v" + "".join(parts)
    else:
        stem = "v" + "".join(_MARK[p] for p in parts)
    text = f"{stem}_{label.index}"
    return f"{text}[{label.tag}]" if label.tag else text


def format_number(x) -> str:
    a = np.asarray(x)
    if a.ndim > 0 and a.size != 1:
        text = np.array2string(a, precision=4, threshold=6, separator=", ", max_line_width=10**6)
        return " ".join(text.split())  # a matrix on one line: [[0., 1.], [2., 3.]]
    x = float(a.reshape(()))
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-4 <= abs(x) < 1e6:
        return f"{x:.4f}"
    return f"{x:.4e}"


def _table_const(ascii: bool):
    def const(value: float) -> str:
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return ("inf" if ascii else "∞") if value > 0 else ("-inf" if ascii else "−∞")
        text = repr(value)
        if text.endswith(".0"):
            text = text[:-2]
        return text if ascii or not text.startswith("-") else "−" + text[1:]
    return const


def table_spelling(ascii: bool) -> Spelling:
    return Spelling(symbol=lambda op: op.infix if ascii else op.uinfix,
                    call=lambda op: op.name,
                    const=_table_const(ascii))


def format_trace(trace: Trace, values: Optional[Sequence] = None, *, ascii: bool = False,
                 show_line: Optional[Callable[[Optional[Label]], bool]] = None,
                 show_output: Optional[Callable[[str], bool]] = None) -> str:
    """The table of `trace`; `values` are every variable's values (interpret with
    all_values=True). `show_line`/`show_output` select lines (e.g. only adjoints)."""
    return _align(trace_rows(trace, values, ascii=ascii, show_line=show_line, show_output=show_output))


def trace_rows(trace: Trace, values: Optional[Sequence] = None, *, ascii: bool = False,
               show_line: Optional[Callable[[Optional[Label]], bool]] = None,
               show_output: Optional[Callable[[str], bool]] = None) -> list[Row]:
    """The cells of format_trace's table, one Row per line."""
    spell = table_spelling(ascii)
    temps: dict[int, str] = {}

    def name_of(i: int) -> str:
        label = trace.labels[i]
        if label is not None:
            return label_text(label, ascii)
        if i not in temps:
            temps[i] = f"t_{len(temps) + 1}"
        return temps[i]

    r = Renderer(trace, spell, name_of)
    # Tensor traces print each line's shape: v_3 : (n,) = v_-2 @ v_-1
    shaped = any(ins.shape != () for ins in trace.instrs)
    rows: list[Row] = []
    for i, ins in enumerate(trace.instrs):
        if not r.named[i] or (show_line is not None and not show_line(trace.labels[i])):
            continue
        lhs = r.expr(i)[0]
        if ins.op == "input":
            label = trace.labels[i]
            rhs = decorate(label.base, label.kind, ascii) if label and label.base else ins.name
            if label is None:
                lhs = ins.name
            if lhs == rhs:  # a seed of an unnumbered output (ȳ for a constant): nothing to say
                continue
        else:
            rhs = r.rhs(i)
        tail = ""
        if values is not None:
            tail = format_number(values[i])
            if ins.op not in ("input", "copy", "neg") and r.operands_inline(i) \
                    and all(np.size(values[a]) == 1 for a in ins.args):
                operands = [_value_operand(values[a]) if trace.instrs[a].op != "const" else r.expr(a)
                            for a in ins.args]
                tail = format_op(_ops.OPS[ins.op], operands, spell, ins.attrs)[0] + " = " + tail
        rows.append(Row(lhs, show(ins.shape) if shaped else "", rhs, tail))
    for name, v in trace.outputs:
        if show_output is not None and not show_output(name):
            continue
        tail = format_number(values[v]) if values is not None else ""
        rows.append(Row(decorate_output(name, ascii), show(trace.instrs[v].shape) if shaped else "",
                        r.expr(v)[0], tail))
    return rows


def _value_operand(value) -> tuple[str, int]:
    """A number standing for an operand; negative ones get parentheses in any
    binary operation (1.0 + (-2.5)), as a person would write them."""
    text = format_number(value)
    return text, (PREC_ADD if text.startswith("-") else PREC_ATOM)


def _align(rows: list[Row]) -> str:
    if not rows:
        return ""
    w_name = max(_width(row.name) for row in rows)
    shaped = any(row.shape for row in rows)
    w_shape = max(_width(row.shape) for row in rows)
    w_rhs = min(max(_width(row.rhs) for row in rows), RHS_WIDTH)
    lines = []
    for row in rows:
        line = _pad(row.name, w_name) + (" : " + _pad(row.shape, w_shape) if shaped else "")
        line += " = " + row.rhs
        if row.tail:
            value_at = _width(line) - _width(row.rhs) + w_rhs  # where every row's " = value" starts
            if _width(row.rhs) > w_rhs:  # too long: the value under the others, on its own line
                lines.append(line.rstrip())
                line = ""
            line = _pad(line, value_at) + " = " + row.tail
        lines.append(line.rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    return len(_visible(text))


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _visible(text: str) -> str:
    """Text without combining marks, so columns line up in a terminal."""
    return "".join(c for c in text if c not in "\u0304\u0307")
