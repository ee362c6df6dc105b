"""The front end: whatever the user gives (text, a SymPy expression, a Trace) -> Trace.

Text goes through our own parser, SymPy expressions through the iterative
converter; both then share common sub-sums (see passes.share_sums), so the same
function gives the same trace from either.
"""

from __future__ import annotations

from .passes.share_sums import share_sums
from .trace.ir import Trace


def _is_sympy(obj) -> bool:
    return type(obj).__module__.startswith("sympy")


def _sympy_text(expr) -> str:
    """The expression as SymPy prints it, for headers; huge or deep ones are not
    printed (SymPy's printer recurses)."""
    try:
        if expr.count_ops(visual=False) > 2000:
            return "a SymPy expression"
        return str(expr)
    except Exception:  # printing is a courtesy, never an error (RecursionError included)
        return "a SymPy expression"


def to_trace(expr) -> Trace:
    if isinstance(expr, Trace):
        return expr
    if isinstance(expr, str):
        from .parse import parse
        return share_sums(parse(expr))
    if _is_sympy(expr):
        from .parse.from_sympy import from_sympy
        return share_sums(from_sympy(expr, source=_sympy_text(expr)))
    raise TypeError(f"cannot compile a {type(expr).__name__}: give a string, a SymPy "
                    f"expression or a Trace")
