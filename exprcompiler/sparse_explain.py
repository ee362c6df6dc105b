"""What a sparse Jacobian or Hessian costs, and its pattern as a picture (issue 16).

Where it sits: beside jacobians.explain, for `explain(expr, sparse=True)`, the sparse
objects' `.explain()` and `exprc jacobian --sparse`. It reads a pattern (sparsity.py)
and a coloring (coloring.py, or a compiled object's); nothing here compiles.

The cost against the dense form is counted in sweeps: the dense forward-mode
Jacobian (or Hessian) runs n tangent sweeps, the reverse-mode one m adjoint sweeps;
the compressed one runs one per color. Each sweep touches the whole trace once, so
the ratio of sweeps is the ratio of work for tensor programs; for a program of
scalars the builder already drops what a unit seed does not reach, so the dense trace
does about the same arithmetic and the saving is the m·n entries it writes (and, for
large n, building and compiling n sweeps at all).
"""

from __future__ import annotations

import numpy as np

from . import coloring as C
from . import sparsity


def analyse(primal, wrt, kind: str, mode: str = "auto"):
    """(pattern, Coloring) of a trace's Jacobian (kind "jacobian") or Hessian."""
    from .sparse_jacobian import Coloring
    if kind == "hessian":
        structure = sparsity.hessian_structure(primal, wrt)
        return structure, Coloring("star", C.star_coloring(structure))
    structure = sparsity.jacobian_structure(primal, wrt)
    if mode == "auto":
        return structure, Coloring(*C.color_jacobian(structure))
    colors = C.color_columns(structure) if mode == "forward" else C.color_rows(structure)
    return structure, Coloring(mode, colors)


def report(structure, coloring, kind: str, operations=None) -> list:
    """Lines: nonzeros, colors, the mode chosen and the sweeps against the dense form."""
    m, n = structure.shape
    nnz, k = structure.nnz, coloring.count
    what = "Hessian" if kind == "hessian" else "Jacobian"
    share = f"{100 * nnz / (m * n):.3g}% of {m * n}" if m * n else "an empty matrix"
    lines = [f"sparse {what} ({m}x{n}): {nnz} structural nonzeros ({share})"]
    if kind == "hessian":
        dense, how = n, "Hessian-vector products (forward over reverse)"
        lines.append(f"star coloring (symmetric recovery): {k} color{'s' if k != 1 else ''}, "
                     f"so {k} {how} against {n} for the dense Hessian")
    else:
        dense = n if coloring.mode == "forward" else m
        sweep = "tangent (JVP)" if coloring.mode == "forward" else "adjoint (VJP)"
        side = "columns" if coloring.mode == "forward" else "rows"
        lines.append(f"{coloring.mode} mode: {side} colored (distance-2), {k} color{'s' if k != 1 else ''}, "
                     f"so {k} {sweep} sweeps against {dense} for the dense {coloring.mode}-mode Jacobian")
    if k >= dense and dense > 0:
        lines.append(f"the pattern is dense for coloring: {k} colors = {dense}, no saving over the "
                     f"dense {what} (sparse=True still returns a scipy.sparse matrix)")
    elif k:
        lines.append(f"{dense / k:.3g}x fewer sweeps than dense; the result holds {nnz} numbers "
                     f"where the dense one holds {m * n}")
    if operations is not None:
        lines.append(f"the compressed sweeps' trace: {operations} operations")
    return lines


def picture(structure, width: int = 72, ascii: bool = False) -> str:
    """The pattern in text, one character per entry ('#'/'.' with ascii, else '█'/'·'),
    or per block of entries when it is wider or taller than `width` (a block shows
    '#' when it holds any nonzero)."""
    m, n = structure.shape
    full, empty = ("#", ".") if ascii else ("█", "·")
    step = max(1, -(-max(m, n) // width))
    rows_out, cols_out = -(-m // step), -(-n // step)
    grid = np.zeros((rows_out, cols_out), dtype=bool)
    rows = np.repeat(np.arange(m), np.diff(structure.indptr))
    grid[rows // step, structure.indices // step] = True
    lines = ["".join(full if c else empty for c in r) for r in grid]
    if step > 1:
        lines.append(f"(each character is a {step}x{step} block)")
    return "\n".join(lines)


def plot(structure, path: str, title: str = "") -> None:
    """A PNG of the pattern (matplotlib's spy); ImportError naming the extra without it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'exprcompiler[plot]'") from None
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.spy(structure.to_scipy(), markersize=max(0.5, min(6.0, 300 / max(structure.shape + (1,)))))
    ax.set_title(title or f"{structure.shape[0]}x{structure.shape[1]}, {structure.nnz} nonzeros")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def explain_sparse(obj) -> str:
    """A compiled sparse object's explain(): its pattern, coloring and cost."""
    from .jacobians import operations
    head = f"function: {' '.join(obj.primal.source.split())[:100]}" if obj.primal.source else "function: (a trace)"
    return "\n".join([head] + report(obj.structure, obj.coloring, obj.kind, operations(obj.trace)))


def explain_rows(primal, wrt) -> list:
    """The sparse lines of `explain(expr, sparse=True)`: the Hessian of one output, the
    Jacobian of several."""
    kind = "hessian" if len(primal.outputs) == 1 and primal.instrs[primal.outputs[0][1]].shape == () \
        else "jacobian"
    structure, coloring = analyse(primal, wrt, kind)
    return report(structure, coloring, kind)


__all__ = ["analyse", "report", "picture", "plot", "explain_sparse", "explain_rows"]
