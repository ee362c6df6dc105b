"""The front end: whatever the user gives (text, a SymPy expression, a Trace) -> Trace.

Text goes through our own parser, SymPy expressions through the iterative
converter; both then share common sub-sums (see passes.share_sums), so the same
function gives the same trace from either.
"""

from __future__ import annotations

from .errors import ConversionError, ShapeError
from .passes.replay import replay
from .passes.share_sums import share_sums
from .trace.ir import Builder, Trace, gc_paused, output_names, trace_from_builder


def _is_sympy(obj) -> bool:
    # By the classes' modules, so text never imports SymPy; along the whole MRO, since
    # the class of f(x) for a user's Function('f') is made at run time (module None).
    return any((getattr(c, "__module__", None) or "").startswith("sympy") for c in type(obj).__mro__)


def _is_matrix_expression(expr) -> bool:
    """A SymPy matrix expression (X*w - y from MatrixSymbols): one tensor-valued
    function. SymPy gives it is_Matrix too, like an explicit Matrix, whose entries
    are several outputs."""
    from sympy.matrices import MatrixBase
    from sympy.matrices.expressions import MatrixExpr
    return isinstance(expr, MatrixExpr) and not isinstance(expr, MatrixBase)


# A header shows a SymPy expression as sstr(expr, order="none") prints it: SymPy's
# own order of terms and factors, the same formula, not str()'s sorted text. Sorting
# was most of the printer's time, on every new expression: str() orders a sum's
# terms by their monomials over generators it sorts by sort_key (decompose_power
# builds new powers for them, complex() evalf's each term's coefficient), so an
# 11-operation expression of 21 nodes printed in 1.4-1.6 ms, 0.1 ms unsorted: its
# compile_grad 3.6 -> 2.2 ms in a warm process, 5.0 -> 3.3 fresh (the 6-link pendulum's
# forcing vector, 7 expressions of up to 90 nodes: 45 ms sorted, 11 ms not). Nor
# is a numeric term evaluated to sort it (complex((3/2)**(10**12)) ran for minutes).
# Up to this many tree nodes the text is printed whole (sstr), and cut. It was 60, where
# the cut printer's own cost (5-10% of the printing) did not pay; that printer now
# prints a node met again from a memo and dispatches by class once (sympy_text.py),
# and prints the same text faster at any size (the 3-link pendulum's forcing entries,
# 23-39 nodes: 1.23-1.29 -> 0.91-1.01 ms; sin(x)*exp(-y) + x**2 and another of 13
# nodes: 191-205 -> 138-149 µs; medians of 30).
WHOLE_UP_TO = 0
# A list's SymPy entries are printed until their text reaches this many characters,
# the rest shown as "...": headers show at most 200 (NumPy) and 160 (C), explain 100,
# and the printer took 14 ms of the pendulum's forcing vector's 24 ms to_trace at 6
# links (7 entries). The NumPy build of its Jacobian, all printed against this (median
# of 11 interleaved rounds, load 1.2; × symengine's Lambdify(llvm) build in the same
# rounds): 3 links 15.5 -> 13.0 ms (1.32 -> 1.11x), 6 links 66 -> 55 ms (0.98 -> 0.81x),
# 10 links 125 -> 108 ms (0.74 -> 0.64x). An expression's text is cut after this many
# characters ("..." after them); one of more than WHOLE_UP_TO nodes is printed only
# that far (parse/sympy_text.py: the sum of the 6-link pendulum's forcing entries,
# 1,748 characters, in 1.0 ms instead of 3.7-3.9).
SOURCE_SHOWN = 240


def _sympy_text(expr) -> str:
    """The expression as SymPy prints it unsorted, for headers, its first SOURCE_SHOWN
    characters (then "...": parse/sympy_text.py); huge or deep ones are not printed
    (SymPy's printer recurses)."""
    try:
        size = _tree_size(expr, 4000)
        if size > 4000:
            return "a SymPy expression"
        from .parse.sympy_text import cut, shown
        if size > WHOLE_UP_TO:   # (printed only as far as the header shows)
            return shown(expr, "none", SOURCE_SHOWN)
        from sympy import sstr
        return cut(sstr(expr, order="none"), SOURCE_SHOWN)
    except Exception:  # printing is a courtesy, never an error (RecursionError included)
        return "a SymPy expression"


def _tree_size(expr, cap: int) -> int:
    """Nodes of `expr` written out as a tree (as the printer and count_ops see it, a
    shared subexpression once per use), counted up to `cap` + 1 over the DAG's
    distinct nodes: count_ops walks the tree, whose size doubles with each level of
    sharing (a 10³-operation DAG did not finish in minutes). Stops past `cap` distinct
    nodes (each is in the tree at least once), so a huge DAG costs no more than a small
    one (a whole walk was 7 µs per operation of a 10⁴-operation model). A subtree
    past `cap` puts the whole past it: the walk stops there (a 10⁴-operation SymPy
    DAG's walk to 4,000 distinct nodes was 15 ms, 1.3 µs per operation)."""
    # (plain loops: two generator expressions a node were most of the walk's time,
    # ~0.06 of the ~0.1 ms it took in every to_trace of a SymPy DAG that passes `cap`;
    # a node's args read once, kept on the stack for its finish, and a leaf finished
    # where it is met: 93-96 -> 82-83 µs on a SymPy DAG of 10² operations, medians of 50)
    size: dict[int, int] = {}
    stack = [(expr, None)]
    pop, push = stack.pop, stack.append
    while stack:
        node, args = pop()
        key = id(node)
        if key in size:
            continue
        if args is None:
            args = node.args
            if args:
                push((node, args))
                for a in args:
                    if id(a) not in size:
                        push((a, None))
                continue
        if len(size) >= cap:
            return cap + 1
        total = 1
        for a in args:
            total += size[id(a)]
        size[key] = total
        if total > cap:   # (the root holds this subtree)
            return cap + 1
    return size[id(expr)]


@gc_paused()
def to_trace(expr, shapes=None, max_ops=None) -> Trace:
    """A list or tuple of expressions (or a SymPy column or row vector) is one
    function with an output per entry, y1, y2, ...

    `shapes` declares tensor inputs ({"X": ("n", 3), "w": (3,)}); undeclared names
    are scalars. `max_ops` is the input-size limit (default: trace.ir.max_ops_limit(),
    from the environment variable EXPRCOMPILER_MAX_OPS or the machine's memory): an
    expression that needs more operations raises InputTooLarge early."""
    if shapes:
        return _with_shapes(expr, shapes, max_ops)
    if isinstance(expr, Trace):
        return expr
    if isinstance(expr, (list, tuple)) or (_is_sympy(expr) and getattr(expr, "is_Matrix", False)
                                           and not _is_matrix_expression(expr)):
        return _combine(expr, max_ops)
    if isinstance(expr, str):
        from .parse import parse
        return share_sums(parse(expr, max_ops=max_ops), numbered=True)
    if _is_sympy(expr):
        return _sympy_trace(expr, max_ops)
    raise ConversionError(f"cannot compile a {type(expr).__name__}: give a string, a SymPy "
                          f"expression or a Trace")


def _sympy_trace(expr, max_ops=None, printed: bool = True) -> Trace:
    """A SymPy expression's trace, its source the expression as SymPy prints it
    (`printed`), else none."""
    from .parse.from_sympy import from_sympy
    return share_sums(from_sympy(expr, source=_sympy_text(expr) if printed else "", max_ops=max_ops),
                      numbered=True)


def _combine(exprs, max_ops=None) -> Trace:
    if getattr(exprs, "is_Matrix", False):
        if min(exprs.shape) > 1:
            raise ConversionError(f"a {exprs.shape[0]}x{exprs.shape[1]} SymPy matrix: give a "
                                  f"column or row vector, or a list of expressions")
        exprs = list(exprs)
    if not exprs:
        raise ConversionError("an empty list of expressions: give at least one")
    b = Builder()
    outputs, sources = [], []
    shown = 0   # characters of the sources so far; past SOURCE_SHOWN the rest is "..."
    for k, e in enumerate(exprs):
        if isinstance(e, (list, tuple, Trace)) or (_is_sympy(e) and getattr(e, "is_Matrix", False)):
            raise ConversionError(f"entry {k} of the list: give a string or a SymPy expression")
        if shown <= SOURCE_SHOWN:
            part = to_trace(e, max_ops=max_ops)
            sources.append(part.source or "?")
            shown += len(sources[-1]) + 2
        elif _is_sympy(e):
            part = _sympy_trace(e, max_ops, printed=False)
        else:
            part = to_trace(e, max_ops=max_ops)
        vmap = replay(b, part)
        outputs += [vmap[v] for _, v in part.outputs]
    if len(sources) < len(exprs):
        sources.append("...")
    names = output_names(len(outputs), set(b._inputs))
    return share_sums(trace_from_builder(b, list(zip(names, outputs)), source="; ".join(sources)), numbered=True)


def _with_shapes(expr, shapes, max_ops=None) -> Trace:
    from .shapes import check_declared, shown
    if not hasattr(shapes, "items"):
        raise ShapeError(f"shapes= expects a mapping name -> shape, got {type(shapes).__name__}")
    declared = {}
    for name, shape in shapes.items():
        if not isinstance(name, str):
            raise ShapeError(f"shapes: names are strings, got the {type(name).__name__} {shown(name)}")
        declared[name] = check_declared(name, shape)
    if isinstance(expr, str):
        from .parse import parse
        trace = share_sums(parse(expr, declared, max_ops=max_ops), numbered=True)
    elif isinstance(expr, Trace):
        trace = expr
    else:
        raise ConversionError("shapes= applies to expressions given as text (or to a Trace whose "
                              "inputs already carry them)")
    inputs = dict(trace.inputs)
    for name, shape in declared.items():
        if name not in inputs:
            listed = ", ".join(list(inputs)[:20]) + (", ..." if len(inputs) > 20 else "")
            raise ShapeError(f"shapes: {shown(name)} is not a variable of the expression "
                             f"(variables: {listed or 'none'})")
        if trace.instrs[inputs[name]].shape != shape:
            raise ShapeError(f"shapes: {shown(name)} is declared {shape}, the trace has "
                             f"{trace.instrs[inputs[name]].shape}")
    return trace
