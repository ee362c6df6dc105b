"""The front end: whatever the user gives (text, a SymPy expression, a Trace) -> Trace.

Text goes through our own parser, SymPy expressions through the iterative
converter; both then share common sub-sums (see passes.share_sums), so the same
function gives the same trace from either.
"""

from __future__ import annotations

from .errors import ConversionError, ShapeError
from .passes.replay import replay
from .passes.share_sums import share_sums
from .trace.ir import Builder, Trace, output_names, trace_from_builder


def _is_sympy(obj) -> bool:
    return type(obj).__module__.startswith("sympy")


def _is_matrix_expression(expr) -> bool:
    """A SymPy matrix expression (X*w - y from MatrixSymbols): one tensor-valued
    function. SymPy gives it is_Matrix too, like an explicit Matrix, whose entries
    are several outputs."""
    from sympy.matrices import MatrixBase
    from sympy.matrices.expressions import MatrixExpr
    return isinstance(expr, MatrixExpr) and not isinstance(expr, MatrixBase)


def _sympy_text(expr) -> str:
    """The expression as SymPy prints it, for headers; huge or deep ones are not
    printed (SymPy's printer recurses)."""
    try:
        if expr.count_ops(visual=False) > 2000:
            return "a SymPy expression"
        return str(expr)
    except Exception:  # printing is a courtesy, never an error (RecursionError included)
        return "a SymPy expression"


def to_trace(expr, shapes=None) -> Trace:
    """A list or tuple of expressions (or a SymPy column or row vector) is one
    function with an output per entry, y1, y2, ...

    `shapes` declares tensor inputs ({"X": ("n", 3), "w": (3,)}); undeclared names
    are scalars."""
    if shapes:
        return _with_shapes(expr, shapes)
    if isinstance(expr, Trace):
        return expr
    if isinstance(expr, (list, tuple)) or (_is_sympy(expr) and getattr(expr, "is_Matrix", False)
                                           and not _is_matrix_expression(expr)):
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


def _with_shapes(expr, shapes) -> Trace:
    from .shapes import check_declared
    if not hasattr(shapes, "items"):
        raise TypeError(f"shapes= expects a mapping name -> shape, got {type(shapes).__name__}")
    declared = {str(k): check_declared(str(k), v) for k, v in shapes.items()}
    if isinstance(expr, str):
        from .parse import parse
        trace = share_sums(parse(expr, declared))
    elif isinstance(expr, Trace):
        trace = expr
    else:
        raise TypeError("shapes= applies to expressions given as text (or to a Trace whose inputs "
                        "already carry them)")
    inputs = dict(trace.inputs)
    for name, shape in declared.items():
        if name not in inputs:
            raise ShapeError(f"shapes: {name!r} is not a variable of the expression "
                             f"(variables: {', '.join(inputs) or 'none'})")
        if trace.instrs[inputs[name]].shape != shape:
            raise ShapeError(f"shapes: {name!r} is declared {shape}, the trace has "
                             f"{trace.instrs[inputs[name]].shape}")
    return trace
