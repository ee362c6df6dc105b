"""A function and its derivatives in LaTeX (`g.latex()`), through SymPy's printer.

The derivatives shown are exprcompiler's own — the Jacobian trace of reverse mode
(passes.jacobian), turned into SymPy by trace/to_sympy.py — so what a notebook shows
is what the compiled code computes, only written as one formula per entry (SymPy
merges the shared subexpressions the trace keeps apart). A comparison used as a number,
Piecewise((1, B), (0, True)), is written as Iverson's bracket [B], so a comparison of
comparisons reads as one line rather than cases inside a case's condition. User names
that are not plain identifiers are escaped for LaTeX, so a name such as a&b cannot break
the alignment.
"""

from __future__ import annotations

import re
from typing import Optional

import sympy
from sympy.printing.latex import LatexPrinter

from .. import passes
from ..errors import ConversionError
from ..trace.ir import Trace
from ..trace.sympy_piecewise import indicator_condition
from ..trace.to_sympy import to_sympy
from .html import safe_display

# SymPy prints each entry as one tree (shared subexpressions repeated): past a few
# hundred operations that is neither readable nor quick.
MAX_OPS = 300

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?\Z")
_ESCAPES = {"\\": r"\backslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
            "#": r"\#", "_": r"\_", "^": r"\hat{}", "~": r"\sim{}", "<": r"\lt{}", ">": r"\gt{}",
            " ": r"\ "}


def latex_name(name: str) -> str:
    """x1 -> x_{1} (SymPy's way); any other name -> \\mathtt{...} with every LaTeX
    special character escaped."""
    if _PLAIN.match(name):
        return sympy.latex(sympy.Symbol(name))
    return r"\mathtt{" + "".join(_ESCAPES.get(c, c) for c in name) + "}"


class _Printer(LatexPrinter):
    def _print_Piecewise(self, expr):
        if _bracket(expr):
            return r"\left[" + self._print(expr.args[0].cond) + r"\right]"
        return super()._print_Piecewise(expr)

    # A bracket needs no parentheses around it.
    def parenthesize(self, item, level, is_neg=False, strict=False):
        return self._print(item) if _bracket(item) else super().parenthesize(item, level, is_neg, strict)

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        return not _bracket(expr) and super()._needs_mul_brackets(expr, first, last)


def _bracket(expr) -> bool:
    return isinstance(expr, sympy.Piecewise) and indicator_condition(expr) is not None \
        and float(expr.args[0].expr) == 1.0


class Latex:
    """Equations `lhs = rhs`, one per row: `str()` is the LaTeX source (an aligned
    environment), a notebook typesets it; `rows` holds (lhs, rhs) LaTeX pairs and
    `exprs` the SymPy expressions of the right-hand sides."""

    def __init__(self, rows: list[tuple[str, str]], exprs: Optional[list] = None):
        self.rows = rows
        self.exprs = exprs or []

    def __str__(self) -> str:
        body = r" \\ ".join(f"{lhs} &= {rhs}" for lhs, rhs in self.rows)
        return r"\begin{aligned} " + body + r" \end{aligned}"

    __repr__ = __str__

    @safe_display
    def _repr_latex_(self) -> str:
        return "$$" + str(self) + "$$"


def latex(primal: Trace, wrt: Optional[list] = None, *, max_ops: int = MAX_OPS) -> Latex:
    """The outputs of `primal` and their derivatives with respect to `wrt` (default:
    every input; [] for none) as LaTeX."""
    if any(ins.shape != () for ins in primal.instrs):
        raise ConversionError("latex() shows scalar functions; this one has tensor variables "
                              "(print its trace instead)")
    if primal.size > max_ops:
        raise ConversionError(f"latex(): the function has {primal.size} operations, more than "
                              f"max_ops={max_ops} can show readably; pass max_ops=... to try anyway")
    if wrt is None or wrt:
        from ..api import with_wrt
        primal, wrt = with_wrt(primal, wrt)
    trace = passes.jacobian(primal, wrt, "reverse") if wrt else primal
    exprs = dict(zip(trace.output_names, to_sympy(trace)))
    names = {s: latex_name(s.name) for e in exprs.values() for s in e.free_symbols}

    def tex(expr) -> str:
        return _Printer({"symbol_names": names}).doprint(expr)

    lhs = [(latex_name(y), y) for y in primal.output_names]
    lhs += [(rf"\frac{{\partial {latex_name(y)}}}{{\partial {latex_name(x)}}}", f"{y}.d.{x}")
            for y in primal.output_names for x in wrt]
    return Latex([(left, tex(exprs[key])) for left, key in lhs], [exprs[key] for _, key in lhs])


__all__ = ["Latex", "latex", "latex_name"]
