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


def to_trace(expr) -> Trace:
    if isinstance(expr, Trace):
        return expr
    if isinstance(expr, str):
        from .parse import parse
        return share_sums(parse(expr))
    if _is_sympy(expr):
        from .parse.from_sympy import from_sympy
        return share_sums(from_sympy(expr))
    raise TypeError(f"cannot compile a {type(expr).__name__}: give a string, a SymPy "
                    f"expression or a Trace")
