"""The front end: whatever the user gives (text, a SymPy expression, a Trace) -> Trace.

Text goes through our own parser, SymPy expressions through the iterative
converter; both then share common sub-sums (see passes.share_sums), so the same
function gives the same trace from either.
"""

from __future__ import annotations

from .errors import ConversionError
from .passes.replay import replay
from .passes.share_sums import share_sums
from .trace.ir import Builder, Trace, output_names, trace_from_builder


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
    """A list or tuple of expressions (or a SymPy column or row vector) is one
    function with an output per entry, y1, y2, ..."""
    if isinstance(expr, Trace):
        return expr
    if isinstance(expr, (list, tuple)) or (_is_sympy(expr) and getattr(expr, "is_Matrix", False)):
        return _combine(expr)
    if isinstance(expr, str):
        from .parse import parse
        return share_sums(parse(expr))
    if _is_sympy(expr):
        from .parse.from_sympy import from_sympy
        return share_sums(from_sympy(expr, source=_sympy_text(expr)))
    raise TypeError(f"cannot compile a {type(expr).__name__}: give a string, a SymPy "
                    f"expression or a Trace")


def _combine(exprs) -> Trace:
    if getattr(exprs, "is_Matrix", False):
        if min(exprs.shape) > 1:
            raise ConversionError(f"a {exprs.shape[0]}x{exprs.shape[1]} SymPy matrix: give a "
                                  f"column or row vector, or a list of expressions")
        exprs = list(exprs)
    if not exprs:
        raise ValueError("an empty list of expressions")
    b = Builder()
    outputs, sources = [], []
    for k, e in enumerate(exprs):
        if isinstance(e, (list, tuple, Trace)) or (_is_sympy(e) and getattr(e, "is_Matrix", False)):
            raise TypeError(f"entry {k} of the list: give a string or a SymPy expression")
        part = to_trace(e)
        vmap = replay(b, part)
        outputs += [vmap[v] for _, v in part.outputs]
        sources.append(part.source or "?")
    names = output_names(len(outputs), set(b._inputs))
    return share_sums(trace_from_builder(b, list(zip(names, outputs)), source="; ".join(sources)))
