"""Sparse Jacobians, the one-off part: pattern detection and coloring on the sparse
Moré–Garbow–Hillstrom problems (issue 16); the timed sweeps are the `sparse` suite
(suite_sparse.py, `exprc bench sparse`). Run

    python -m exprcompiler.bench.sparse_colors [n ...]

It prints, per problem and n, the time to build the trace from text, to find the
Jacobian's pattern (sparsity.py) and to color it both ways (coloring.py, four
orderings each), the colors, and n / colors: how many times fewer sweeps the
compressed Jacobian needs than the dense forward-mode one. The problems are written
as straight-line programs of n scalar outputs; the tests use the same generators.
"""

from __future__ import annotations

import sys
import time


def broyden_tridiagonal(n: int) -> list:
    """MGH 30: f_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1 (x_0 = x_{n+1} = 0)."""
    out = []
    for i in range(1, n + 1):
        f = f"(3 - 2*x{i})*x{i} + 1"
        if i > 1:
            f += f" - x{i - 1}"
        if i < n:
            f += f" - 2*x{i + 1}"
        out.append(f)
    return out


def broyden_banded(n: int, ml: int = 5, mu: int = 1) -> list:
    """MGH 31: f_i = x_i (2 + 5 x_i²) + 1 - Σ_{j in J_i} x_j (1 + x_j), with
    J_i = {j != i : max(1, i - ml) <= j <= min(n, i + mu)}."""
    out = []
    for i in range(1, n + 1):
        js = [j for j in range(max(1, i - ml), min(n, i + mu) + 1) if j != i]
        out.append(f"x{i}*(2 + 5*x{i}**2) + 1 - (" + " + ".join(f"x{j}*(1 + x{j})" for j in js) + ")")
    return out


def discrete_bvp(n: int) -> list:
    """MGH 28: f_i = 2 x_i - x_{i-1} - x_{i+1} + h² (x_i + t_i + 1)³ / 2, h = 1/(n+1), t_i = i h."""
    h = 1.0 / (n + 1)
    out = []
    for i in range(1, n + 1):
        f = f"2*x{i} + {h * h / 2!r}*(x{i} + {i * h!r} + 1)**3"
        if i > 1:
            f += f" - x{i - 1}"
        if i < n:
            f += f" - x{i + 1}"
        out.append(f)
    return out


PROBLEMS = {"broyden_banded": broyden_banded, "discrete_bvp": discrete_bvp}


def measure(name: str, n: int) -> dict:
    from .. import coloring, sparsity
    from ..frontend import to_trace
    t0 = time.perf_counter()
    trace = to_trace("; ".join(PROBLEMS[name](n)))
    t1 = time.perf_counter()
    pattern = sparsity.jacobian_structure(trace)
    t2 = time.perf_counter()
    fwd = coloring.color_columns(pattern)
    t3 = time.perf_counter()
    rev = coloring.color_rows(pattern)
    t4 = time.perf_counter()
    k = min(coloring.n_colors(fwd), coloring.n_colors(rev))
    return dict(problem=name, n=n, nnz=pattern.nnz, ops=trace.size, trace_s=t1 - t0, pattern_s=t2 - t1,
                fwd_s=t3 - t2, rev_s=t4 - t3, fwd=coloring.n_colors(fwd), rev=coloring.n_colors(rev),
                ratio=n / k)


def main(argv=None) -> None:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [1000, 10000]
    print(f"{'problem':<16}{'n':>7}{'nnz':>8}{'ops':>8}{'trace s':>9}{'pattern s':>11}"
          f"{'color fwd s':>13}{'color rev s':>13}{'fwd':>5}{'rev':>5}{'n/colors':>10}")
    for name in PROBLEMS:
        for n in sizes:
            r = measure(name, n)
            print(f"{r['problem']:<16}{r['n']:>7}{r['nnz']:>8}{r['ops']:>8}{r['trace_s']:>9.3f}"
                  f"{r['pattern_s']:>11.3f}{r['fwd_s']:>13.3f}{r['rev_s']:>13.3f}{r['fwd']:>5}{r['rev']:>5}"
                  f"{r['ratio']:>10.0f}")


if __name__ == "__main__":
    main()
