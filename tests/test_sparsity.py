"""Sparsity patterns from traces, colorings, seed matrices and recovery (issue 16).

Every pattern is checked against the dense Jacobian or Hessian that compile_jacobian /
compile_hessian give at random points (the pattern never misses a nonzero), every
coloring against its definition, and every recovery from a compressed matrix
(the dense result times the seed matrix) against the dense result, exactly. Color
counts are the known ones (WAVE2-RESEARCH §3.3; Moré, Garbow, Hillstrom 1981).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exprcompiler as xc
from exprcompiler import coloring as C
from exprcompiler import sparsity as S
from exprcompiler.bench.sparse_colors import broyden_banded, broyden_tridiagonal, discrete_bvp, measure

pytest.importorskip("scipy")

SETTINGS = dict(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


# -- problems, as program text (the MGH ones come from the benchmark) ------------------

def least_squares(residuals: list) -> str:
    return "0.5*(" + " + ".join(f"({r})**2" for r in residuals) + ")"


def arrowhead(n: int) -> str:
    """Σ_{i<n} (x_i x_n - 1)² + x_i⁴: the Hessian is a diagonal plus a full last row/column."""
    return " + ".join(f"(x{i}*x{n} - 1)**2 + x{i}**4" for i in range(1, n))


def band(n: int, b: int) -> str:
    """A Hessian of half-bandwidth b: Σ_i x_i² + Σ_{0<d<=b} sin(x_i x_{i+d})."""
    terms = [f"x{i}**2" for i in range(1, n + 1)]
    terms += [f"sin(x{i}*x{i + d})" for d in range(1, b + 1) for i in range(1, n - d + 1)]
    return " + ".join(terms)


# -- dense references --------------------------------------------------------------------

def _point(trace, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, size=ins_shape) for ins_shape in
            (trace.instrs[v].shape for _, v in trace.inputs)]


def dense_jacobian(trace, seed=0):
    return np.asarray(xc.compile_jacobian(trace)(*_point(trace, seed))[1], dtype=float)


def dense_hessian(trace, seed=0):
    return np.asarray(xc.compile_hessian(trace)(*_point(trace, seed))[2], dtype=float)


def check_jacobian(trace, expected_fwd=None, expected_rev=None, exact=True, seeds=(0, 1)):
    """Pattern ⊇ nonzeros (== for `exact`), colorings valid, recovery exact both ways."""
    pattern = S.jacobian_structure(trace)
    mask = pattern.to_dense()
    fwd, rev = C.color_columns(pattern), C.color_rows(pattern)
    assert C.check_column_coloring(pattern, fwd)
    assert C.check_column_coloring(pattern.transpose(), rev)
    if expected_fwd is not None:
        assert C.n_colors(fwd) == expected_fwd
    if expected_rev is not None:
        assert C.n_colors(rev) == expected_rev
    seen = np.zeros_like(mask)
    for seed in seeds:
        J = dense_jacobian(trace, seed)
        assert not np.any((J != 0) & ~mask), "the pattern misses a nonzero"
        seen |= J != 0
        nz = J[mask]
        B = J @ C.seed_matrix(fwd)
        np.testing.assert_array_equal(C.recover(B, C.column_recovery(pattern, fwd)), nz)
        Bt = C.seed_matrix(rev).T @ J
        np.testing.assert_array_equal(C.recover(Bt, C.row_recovery(pattern, rev)), nz)
    if exact:
        np.testing.assert_array_equal(seen, mask)
    return pattern, fwd, rev


def check_hessian(trace, expected=None, exact=True, seeds=(0, 1)):
    pattern = S.hessian_structure(trace)
    mask = pattern.to_dense()
    np.testing.assert_array_equal(mask, mask.T)
    colors = C.star_coloring(pattern)
    assert C.check_star_coloring(pattern, colors)
    if expected is not None:
        assert C.n_colors(colors) == expected
    seen = np.zeros_like(mask)
    for seed in seeds:
        H = dense_hessian(trace, seed)
        assert not np.any((H != 0) & ~mask), "the pattern misses a nonzero"
        seen |= H != 0
        B = H @ C.seed_matrix(colors)
        np.testing.assert_array_equal(C.recover(B, C.star_recovery(pattern, colors)), H[mask])
    if exact:
        np.testing.assert_array_equal(seen, mask)
    return pattern, colors


# -- known color counts ---------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 10, 50])
def test_broyden_tridiagonal_three_colors(n):
    pattern, _, _ = check_jacobian(xc.to_trace("; ".join(broyden_tridiagonal(n))), 3, 3)
    assert pattern.nnz == 3 * n - 2


@pytest.mark.parametrize("n", [10, 30])
def test_broyden_banded_seven_colors(n):
    check_jacobian(xc.to_trace("; ".join(broyden_banded(n))), 7, 7)


def test_discrete_bvp_three_colors():
    check_jacobian(xc.to_trace("; ".join(discrete_bvp(20))), 3, 3)


def test_benchmark_measures_the_known_counts():
    r = measure("broyden_banded", 40)
    assert (r["fwd"], r["rev"], r["nnz"]) == (7, 7, 7 * 40 - 16)


def test_diagonal_one_color():
    check_jacobian(xc.to_trace("; ".join(f"sin(x{i})" for i in range(1, 9))), 1, 1)


def test_dense_row_wants_reverse_and_dense_column_forward():
    n = 12
    row = [f"x{i}**2" for i in range(1, n)] + [" + ".join(f"x{i}" for i in range(1, n + 1))]
    check_jacobian(xc.to_trace("; ".join(row)), n, 2)
    col = [f"x{i}*x1" for i in range(2, n + 1)] + ["exp(x1)"]
    check_jacobian(xc.to_trace("; ".join(col)), 2, n)


def test_mode_choice_and_dense_cases():
    n = 200
    diagonal = np.eye(n, dtype=bool)
    row, col, both = diagonal.copy(), diagonal.copy(), diagonal.copy()
    row[-1], col[:, 0] = True, True
    both[-1], both[:, 0] = True, True
    for mask, mode, count in ((row, "reverse", 2), (col, "forward", 2), (both, "forward", n),
                              (diagonal, "forward", 1)):
        got_mode, colors = C.color_jacobian(S.Pattern.from_dense(mask))
        assert (got_mode, C.n_colors(colors)) == (mode, count)
        assert C.check_column_coloring(mask if mode == "forward" else mask.T, colors)
    tri = S.jacobian_structure(xc.to_trace("; ".join(broyden_tridiagonal(10))))
    assert C.n_colors(C.color_jacobian(tri)[1]) == 3
    assert C.n_colors(C.color_jacobian(S.Pattern.from_dense(np.ones((1, 1))))[1]) == 1


def test_one_variable():
    check_jacobian(xc.to_trace("x1**3"), 1, 1)
    check_hessian(xc.to_trace("x1**3"), 1)


def test_pentadiagonal_least_squares_hessian_five_colors():
    pattern, _ = check_hessian(xc.to_trace(least_squares(broyden_tridiagonal(20))), 5)
    assert pattern.nnz == 5 * 20 - 6


@pytest.mark.parametrize("n", [10, 40])
def test_arrowhead_hessian_two_colors(n):
    _, colors = check_hessian(xc.to_trace(arrowhead(n)), 2)
    # the distance-2 (column) coloring of the same pattern needs n: star uses symmetry
    assert C.n_colors(C.color_columns(S.hessian_structure(xc.to_trace(arrowhead(n))))) == n


@pytest.mark.parametrize("b", [1, 2, 3])
def test_band_half_width_b_needs_2b_plus_1(b):
    check_hessian(xc.to_trace(band(15, b)), 2 * b + 1)


# -- patterns ------------------------------------------------------------------------

def test_pattern_is_a_scipy_matrix_and_wrt_orders_columns():
    trace = xc.to_trace("x1*x2; sin(x3)")
    J = S.jacobian_pattern(trace, wrt=["x3", "x1"])
    assert J.shape == (2, 2) and J.dtype == bool
    np.testing.assert_array_equal(J.toarray(), [[False, True], [True, False]])
    H = S.hessian_pattern(trace)
    np.testing.assert_array_equal(H.toarray(), [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="not an input"):
        S.jacobian_pattern(trace, wrt=["z"])


def test_hessian_rules_linear_bilinear_and_division():
    # linear: nothing; x*y: the cross pair only; x/y: cross pair and y's own pair
    assert S.hessian_structure(xc.to_trace("3*x - y + x")).nnz == 0
    np.testing.assert_array_equal(S.hessian_structure(xc.to_trace("x*y")).to_dense(), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(S.hessian_structure(xc.to_trace("x/y")).to_dense(), [[0, 1], [1, 1]])
    check_hessian(xc.to_trace("x/y + exp(z)*y - w*w"))


def test_long_sums_under_nonlinear_ops():
    # sets past sparsity._EAGER indices are unioned lazily: read them under sin, x/s, s*x
    n = 45
    lines = ["t1 = x1"] + [f"t{k} = 0.9*t{k - 1} + x{k}**2" for k in range(2, n + 1)]
    program = "\n".join(lines) + "\n"
    check_jacobian(xc.to_trace(program + f"sin(t{n}), t{n}*x3, x5/t20, t30 - x{n}"), exact=False)
    check_hessian(xc.to_trace(program + f"sin(t{n}) + t{n}*x3 + x5/t20 + t30"), exact=False)
    hess = S.hessian_structure(xc.to_trace(program + f"x1*t{n} + t30")).to_dense()
    # x1·t: the cross pairs with x1; the squares x_k² their diagonal entries; nothing else
    assert hess[0].all() and np.array_equal(hess[1:, 1:], np.eye(n - 1, dtype=bool))


def test_lazy_and_eager_unions_agree(monkeypatch):
    programs = [least_squares(broyden_tridiagonal(12)), arrowhead(9), band(10, 2),
                "; ".join(broyden_banded(12)), "t = x1*x2 + x3\nu = t/x4 + sin(t)\nexp(u)*x5, u - x6"]
    shapes_program = ("A @ sin(x) * x[1] + sum(x**2); mean(transpose(A)[2] * x[0:4])", {"x": (6,), "A": (4, 6)})
    traces = [xc.to_trace(p) for p in programs] + [xc.to_trace(*shapes_program)]
    eager = [(S.jacobian_structure(t).to_dense(), S.hessian_structure(t).to_dense()) for t in traces]
    monkeypatch.setattr(S, "_EAGER", 0)   # every union of two nonempty sets lazy
    for t, (jac, hess) in zip(traces, eager):
        np.testing.assert_array_equal(S.jacobian_structure(t).to_dense(), jac)
        np.testing.assert_array_equal(S.hessian_structure(t).to_dense(), hess)


def test_zero_derivative_ops_add_no_dependence():
    trace = xc.to_trace("where(x > y, z, 2*z) + floor(y); sign(x)")
    np.testing.assert_array_equal(S.jacobian_structure(trace).to_dense(),
                                  [[False, False, True], [False, False, False]])


def test_tensor_trace_pattern():
    trace = xc.to_trace("A @ sin(x) * x[1] + sum(x**2); x[0:3] * reshape(x, shape=(2, 3))[1]; "
                        "mean(transpose(A)[2] * x[0:4])",
                        {"x": (6,), "A": (4, 6)})
    pattern = S.jacobian_structure(trace)
    assert pattern.shape == (8, 30)   # outputs (4,) + (3,) + (); wrt A (24) then x (6)
    check_jacobian(trace, exact=False)
    np.testing.assert_array_equal(pattern.to_dense()[4:7, 24:],
                                  [[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1]])
    check_hessian(xc.to_trace("sum(sin(x) * x[0]) + x[1:] @ x[:-1]", {"x": (5,)}), exact=False)


def test_unsupported_tensor_op_is_named():
    # every op of a parsed function is supported; the derivative passes' own are not
    trace = xc.compile_vjp("x[1] * 2", shapes={"x": (4,)}).trace
    with pytest.raises(NotImplementedError, match="scatter"):
        S.jacobian_pattern(trace)


# -- colorings --------------------------------------------------------------------------

def test_every_ordering_gives_a_valid_coloring():
    pattern = S.jacobian_structure(xc.to_trace("; ".join(broyden_banded(25))))
    graph = C.column_graph(pattern)
    for ordering in C.ORDERINGS:
        order = C.order_vertices(graph, ordering)
        assert sorted(order) == list(range(25))
        assert C.check_column_coloring(pattern, C.greedy_coloring(graph, order))
    hess = S.hessian_structure(xc.to_trace(arrowhead(12)))
    graph = C.symmetric_graph(hess)
    counts = {o: C.n_colors(C.star_coloring_in_order(graph, C.order_vertices(graph, o))) for o in C.ORDERINGS}
    assert all(C.check_star_coloring(hess, C.star_coloring_in_order(graph, C.order_vertices(graph, o)))
               for o in C.ORDERINGS)
    assert counts["natural"] == 12 and counts["largest_first"] == 2   # why several orderings are tried
    assert C.star_coloring_in_order(graph, C.order_vertices(graph, "natural"), limit=2) is None


def test_star_check_rejects_a_bicolored_path():
    path = S.Pattern.from_dense(np.eye(4, dtype=bool) | np.eye(4, k=1, dtype=bool) | np.eye(4, k=-1, dtype=bool))
    assert not C.check_star_coloring(path, [0, 1, 0, 1])
    assert C.check_star_coloring(path, [0, 1, 0, 2])
    assert not C.check_column_coloring(path, [0, 0, 1, 2])


def test_seed_matrix():
    np.testing.assert_array_equal(C.seed_matrix([0, 1, 0, 2]), [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])


# -- random sparse programs ------------------------------------------------------------

_UNARY = ("sin({a})", "exp(-({a})**2)", "tanh({a})", "({a})**2", "sqrt(1 + ({a})**2)", "3*{a}", "-{a}")
_BINARY = ("{a}*{b}", "{a} + {b}", "{a}/(2 + sin({b}))", "{a} - 2*{b}", "hypot({a}, {b})", "arctan2({a}, 1 + {b}**2)")


@st.composite
def sparse_programs(draw):
    """m outputs over n inputs, each built from a few randomly chosen inputs and
    intermediates (shared between outputs), so the Jacobian is sparse and irregular."""
    n = draw(st.integers(1, 8))
    m = draw(st.integers(1, 8))
    values = [f"x{i}" for i in range(1, n + 1)]
    lines = []
    for k in range(draw(st.integers(0, 10))):
        if draw(st.booleans()):
            rhs = draw(st.sampled_from(_UNARY)).format(a=draw(st.sampled_from(values)))
        else:
            rhs = draw(st.sampled_from(_BINARY)).format(a=draw(st.sampled_from(values)),
                                                       b=draw(st.sampled_from(values)))
        lines.append(f"t{k} = {rhs}")
        values.append(f"t{k}")
    outs = [draw(st.sampled_from(_BINARY + _UNARY)).format(a=draw(st.sampled_from(values)),
                                                            b=draw(st.sampled_from(values)))
            for _ in range(m)]
    lines.append(", ".join(outs))
    # every input is an input of the trace, even one no output reads
    lines[-1] = lines[-1] + "".join(f", 0*x{i}" for i in range(1, n + 1))
    return "\n".join(lines)


@given(sparse_programs())
@settings(**SETTINGS)
def test_random_programs_pattern_covers_and_recovery_is_exact(program):
    trace = xc.to_trace(program)
    check_jacobian(trace, exact=False)
    check_hessian(_summed(program), exact=False)   # the Hessian of the sum of the outputs


def _summed(program: str):
    head, last = program.rsplit("\n", 1) if "\n" in program else ("", program)
    body = head + "\n" if head else ""
    return xc.to_trace(body + " + ".join(f"({o})" for o in _split_outputs(last)))


def _split_outputs(line: str) -> list:
    """The comma-separated outputs of a program's last line, commas inside calls kept."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(line):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(line[start:k])
            start = k + 1
    parts.append(line[start:])
    return parts


def test_large_banded_pattern_and_colors():
    n = 1000
    trace = xc.to_trace("; ".join(broyden_banded(n)))
    pattern = S.jacobian_structure(trace)
    assert pattern.nnz == 7 * n - (5 + 4 + 3 + 2 + 1) - 1   # rows near the ends have fewer
    assert C.n_colors(C.color_columns(pattern)) == 7
