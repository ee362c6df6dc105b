"""compile_jacobian(..., sparse=True) and compile_hessian(..., sparse=True): the
compressed sweeps of a coloring, one kernel, CSR results (issue 16).

Every sparse result is compared with the dense compile_jacobian / compile_hessian at
the same point *exactly* (each nonzero is computed by the same rule applications), on
random sparse programs (hypothesis), on the MGH problems (as programs of scalars and
as tensor programs), on both backends and in both modes.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import exprcompiler as xc
from exprcompiler.bench import sparse_problems as P
from exprcompiler.bench.sparse_colors import broyden_banded, discrete_bvp
from test_sparsity import _summed, sparse_programs

sp = pytest.importorskip("scipy.sparse")


def _point(trace, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1.5, 1.5, size=trace.instrs[v].shape) for name, v in trace.inputs}


def rosenbrock(n: int) -> str:
    return " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(1, n))


def assert_jacobian_exact(sparse_J, dense_J, point):
    values, jac = sparse_J(**point)
    d_values, d_jac = dense_J(**point)
    assert sp.issparse(jac) and jac.format == "csr"
    np.testing.assert_array_equal(values, d_values)
    np.testing.assert_array_equal(jac.toarray(), d_jac)
    # the structural pattern holds every nonzero, and the data follows its indices
    assert not np.any((np.asarray(d_jac) != 0) & ~sparse_J.pattern.toarray())
    np.testing.assert_array_equal(jac.indices, sparse_J.pattern.indices)


def assert_hessian_exact(sparse_H, dense_H, point):
    """The sparse Hessian's values are the dense one's, bit for bit, but where star
    coloring recovers an entry (i, j) from the other side of the symmetric pair: the
    dense Hessian takes (H e_j)[i] for i <= j for both, the coloring may need (H e_i)[j],
    equal in exact arithmetic and often an ulp apart in rounding. There the entry must
    be one of the two sides' values exactly (a dense HVP's, for scalar inputs)."""
    value, grad, hess = sparse_H(**point)
    d_value, d_grad, d_hess = dense_H(**point)
    assert sp.issparse(hess) and hess.format == "csr"
    assert value == d_value
    np.testing.assert_array_equal(grad, d_grad)
    got, want = hess.toarray(), np.asarray(d_hess)
    off = ~((got == want) | (np.isnan(got) & np.isnan(want)))
    if off.any() and all(np.shape(v) == () for v in point.values()):
        sides = _hvp_columns(sparse_H.primal, point)
        for i, j in zip(*np.nonzero(off)):
            assert got[i, j] in (sides[i, j], sides[j, i]), (i, j, got[i, j], sides[i, j], sides[j, i])
        off[:] = False
    np.testing.assert_array_equal(np.where(off, got, want), want)


def _hvp_columns(primal, point) -> np.ndarray:
    """C[i, j] = (H e_j)[i], each column a dense forward-over-reverse HVP."""
    h = xc.compile_hvp(primal)
    wrt = [name for name in h.inputs if not name.endswith("_dot")]
    cols = [np.array(h(**point, **{f"{u}_dot": float(u == w) for u in wrt})[2]) for w in wrt]
    return np.array(cols).T


# -- exactness -------------------------------------------------------------------------

def check_random_program(program, modes):
    trace = xc.to_trace(program)
    point = _point(trace)
    for mode in modes:
        J = xc.compile_jacobian(trace, mode=mode, sparse=True)
        assert J.colors.mode in ("forward", "reverse") and (mode == "auto" or J.colors.mode == mode)
        # the same mode's dense Jacobian: forward and reverse round differently
        assert_jacobian_exact(J, xc.compile_jacobian(trace, mode=J.colors.mode), point)
    summed = _summed(program)
    assert_hessian_exact(xc.compile_hessian(summed, sparse=True), xc.compile_hessian(summed), _point(summed))


@given(sparse_programs())
@settings(deadline=None, max_examples=6, suppress_health_check=[HealthCheck.too_slow])
def test_random_programs_match_the_dense_jacobian_and_hessian_exactly(program):
    check_random_program(program, ["auto"])


def test_an_entry_recovered_from_the_other_side_is_that_sides_value():
    """Found by the explore profile: with x2 and x3 sharing a color, row x1 cannot give
    the (x1, x3) entry, so star coloring reads it from the x1 sweep's row x3: (H e1)[3],
    an ulp from the dense Hessian's (H e3)[1] (which it puts at both places), and exactly
    that HVP's value."""
    program = "x1*x2, arctan2(x3, 1 + x1**2), 0*x1, 0*x2, 0*x3"
    summed = _summed(program)
    H = xc.compile_hessian(summed, sparse=True)
    point = _point(summed)
    got, dense = H(**point)[2].toarray(), xc.compile_hessian(summed)(**point)[2]
    sides = _hvp_columns(summed, point)
    assert got[0, 2] == got[2, 0] == sides[2, 0] != dense[0, 2] == sides[0, 2]
    check_random_program(program, ["auto"])


@pytest.mark.slow
@given(sparse_programs())
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_random_programs_both_modes_many(program):
    check_random_program(program, ["forward", "reverse"])


@pytest.mark.parametrize("make, colors", [(broyden_banded, 7), (discrete_bvp, 3)])
def test_mgh_scalar_programs_numpy(make, colors):
    trace = xc.to_trace("; ".join(make(14)))
    for mode in ("forward", "reverse"):
        J = xc.compile_jacobian(trace, mode=mode, sparse=True)
        assert J.colors.count == colors and J.mode == mode
        # the same mode's dense Jacobian (mode="auto" may pick elimination, which rounds differently)
        assert_jacobian_exact(J, xc.compile_jacobian(trace, mode=mode), _point(trace, 3))


def test_chained_rosenbrock_hessian_three_colors():
    H = xc.compile_hessian(rosenbrock(12), sparse=True)
    assert H.colors.count == 3 and H.colors.mode == "star"
    assert_hessian_exact(H, xc.compile_hessian(rosenbrock(12)), _point(H.primal, 1))
    hess = H(**_point(H.primal, 1))[2]
    assert (hess != hess.T).nnz == 0   # symmetric recovery


@pytest.mark.parametrize("name", ["broyden_banded", "discrete_bvp"])
def test_tensor_programs_match_dense(name):
    text, shapes, wrt, data = P.PROBLEMS[name](16)
    J = xc.compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True)
    assert J.colors.count == {"broyden_banded": 7, "discrete_bvp": 3}[name]
    dense = xc.compile_jacobian(text, wrt=wrt, shapes=shapes)
    point = {"x": P.start(name, 16), **data}
    assert_jacobian_exact(J, dense, point)
    reverse = xc.compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True, mode="reverse")
    assert_jacobian_exact(reverse, dense, point)


def test_tensor_hessian_and_packed_call():
    text, shapes, _, _ = P.chained_rosenbrock(15)
    H = xc.compile_hessian(text, shapes=shapes, sparse=True)
    assert H.colors.count == 3
    x = P.start("chained_rosenbrock", 15)
    assert_hessian_exact(H, xc.compile_hessian(text, shapes=shapes), {"x": x})
    value, grad, hess = H.at(x)
    assert hess.shape == (15, 15) and grad.shape == (15,)


def test_c_backend_both_modes_and_hessian():
    text, shapes, wrt, data = P.broyden_banded(12)
    point = {"x": P.start("broyden_banded", 12), **data}
    dense = xc.compile_jacobian(text, wrt=wrt, shapes=shapes)
    assert_jacobian_exact(xc.compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True, backend="c"), dense, point)
    trace = xc.to_trace("; ".join(broyden_banded(10)))
    for mode in ("forward", "reverse"):
        J = xc.compile_jacobian(trace, mode=mode, sparse=True, backend="c")
        assert_jacobian_exact(J, xc.compile_jacobian(trace, mode=mode), _point(trace, 2))
    H = xc.compile_hessian(rosenbrock(8), sparse=True, backend="c")
    assert_hessian_exact(H, xc.compile_hessian(rosenbrock(8)), _point(H.primal, 2))


# -- the API ---------------------------------------------------------------------------

def test_batch_gives_stacked_data_with_one_pattern():
    trace = xc.to_trace("; ".join(discrete_bvp(6)))
    J = xc.compile_jacobian(trace, sparse=True)
    X = np.random.default_rng(0).uniform(-1, 1, (4, 6))
    values, data = J(*X.T)
    assert values.shape == (4, 6) and data.shape == (4, J.nnz)
    for k in range(4):
        v, jac = J(*X[k])
        np.testing.assert_array_equal(values[k], v)
        np.testing.assert_array_equal(J.matrix(data[k]).toarray(), jac.toarray())
    H = xc.compile_hessian(rosenbrock(6), sparse=True)
    value, grad, hdata = H(*X.T)
    assert value.shape == (4,) and grad.shape == (4, 6) and hdata.shape == (4, H.nnz)
    with pytest.raises(ValueError, match="nonzeros"):
        J.matrix(np.zeros(3))


def test_conventions_calls_at_pickle_repr():
    J = xc.compile_jacobian("x*y; y*z; z**2", sparse=True)
    assert J.inputs == ("x", "y", "z") and J.wrt == ("x", "y", "z") and J.kind == "jacobian"
    assert "nz0" in str(J.trace) or J.trace.outputs and "def " in J.source
    by_position, by_name, packed = J(1.0, 2.0, 3.0), J(z=3.0, x=1.0, y=2.0), J.at([1.0, 2.0, 3.0])
    for values, jac in (by_name, packed):
        np.testing.assert_array_equal(values, by_position[0])
        np.testing.assert_array_equal(jac.toarray(), by_position[1].toarray())
    np.testing.assert_array_equal(by_position[1].toarray(), [[2, 1, 0], [0, 3, 2], [0, 0, 6]])
    again = pickle.loads(pickle.dumps(J))
    assert again.colors.count == J.colors.count
    np.testing.assert_array_equal(again(1.0, 2.0, 3.0)[1].toarray(), by_position[1].toarray())
    assert "sparse jacobian" in repr(J) and "colors" in repr(J)
    assert J.pattern.dtype == bool and J.pattern.nnz == 5
    with pytest.raises(TypeError, match="missing"):
        J(1.0, 2.0)
    with pytest.raises(TypeError, match="given in x and by name"):
        xc.compile_jacobian("x*y; y", wrt=["x"], sparse=True).at([1.0], x=2.0, y=1.0)


def test_wrt_subset_and_data_inputs():
    J = xc.compile_jacobian("a*x*y; y*b", wrt=["y", "x"], sparse=True)
    values, jac = J(a=2.0, b=3.0, x=5.0, y=7.0)
    np.testing.assert_array_equal(jac.toarray(), [[10.0, 14.0], [3.0, 0.0]])
    values, jac = J.at([7.0, 5.0], a=2.0, b=3.0)
    np.testing.assert_array_equal(jac.toarray(), [[10.0, 14.0], [3.0, 0.0]])


def test_mode_choice_dense_row_goes_reverse():
    n = 8
    exprs = ["+".join(f"x{j}" for j in range(1, n + 1)) + "**2"] + [f"x{i}**2" for i in range(1, n + 1)]
    J = xc.compile_jacobian("; ".join(exprs), sparse=True)
    assert J.colors.mode == "reverse" and J.colors.count == 2
    assert "reverse mode" in J.explain()
    assert_jacobian_exact(J, xc.compile_jacobian("; ".join(exprs)), _point(J.primal))


def test_dense_problem_works_and_explain_says_dense():
    J = xc.compile_jacobian("x*y*z; x+y+z", sparse=True)   # 2 x 3, every entry: reverse mode, 2 rows
    assert J.colors.mode == "reverse" and J.colors.count == 2
    assert "dense" in J.explain() and "2 colors = 2" in J.explain()
    assert_jacobian_exact(J, xc.compile_jacobian("x*y*z; x+y+z", mode="reverse"), {"x": 1.5, "y": -2.0, "z": 0.5})
    text = xc.explain("x*y*z; x+y+z", sparse=True)
    assert "sparse Jacobian (2x3)" in text and "no saving" in text
    text = xc.explain(rosenbrock(10), sparse=True)
    assert "star coloring" in text and "3 colors, so 3 Hessian-vector products" in text and "against 10 for the dense" in text


def test_named_dimensions_are_refused_with_the_name():
    with pytest.raises(ValueError, match="'x'.*named dimensions"):
        xc.compile_jacobian("x[1:] * x[:-1]", shapes={"x": ("n",)}, sparse=True)


def test_without_scipy_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match="install SciPy"):
        xc.compile_jacobian("x*y; y", sparse=True)


# -- SciPy -----------------------------------------------------------------------------

def test_least_squares_on_the_discrete_boundary_value_problem():
    opt = pytest.importorskip("scipy.optimize")
    n = 50
    text, shapes, wrt, data = P.discrete_bvp(n)
    x0 = P.start("discrete_bvp", n)
    ls = xc.compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True).scipy_least_squares(**data)
    assert ls.jac_sparsity.shape == (n, n) and ls.jac_sparsity.nnz == 3 * n - 2
    dense = xc.compile_jacobian(text, wrt=wrt, shapes=shapes)   # n JVPs per Jacobian
    # the exact trust-region solver takes the same steps from the sparse Jacobian as
    # from the dense one (their numbers are equal), to the same solution
    r_dense = opt.least_squares(lambda x: dense(x=x, **data)[0], x0, jac=lambda x: dense(x=x, **data)[1],
                                tr_solver="exact")
    r_same = opt.least_squares(ls.fun, x0, jac=lambda x: ls.jac(x).toarray(), tr_solver="exact")
    assert r_dense.cost < 1e-15 and r_same.nfev == r_dense.nfev
    np.testing.assert_array_equal(r_same.x, r_dense.x)
    # and SciPy's sparse path (LSMR steps on the csr_matrix) solves it too: the problem
    # is ill-conditioned (cond ~ n²), so LSMR stops within 1e-4 of the exact solution
    r_sparse = opt.least_squares(ls.fun, x0, jac=ls.jac, tr_solver="lsmr")
    assert r_sparse.cost < 1e-11
    np.testing.assert_allclose(r_sparse.x, r_dense.x, rtol=0, atol=1e-4)
    assert ls.calls <= r_sparse.nfev + r_sparse.njev
    # finite differences grouped by the pattern (jac_sparsity): accepted, and a few steps descend
    r_fd = opt.least_squares(ls.fun, x0, jac_sparsity=ls.jac_sparsity, tr_solver="lsmr", max_nfev=4)
    assert r_fd.cost < 0.1 * 0.5 * np.sum(ls.fun(x0) ** 2)


def test_trust_constr_with_a_sparse_hessian():
    opt = pytest.importorskip("scipy.optimize")
    n = 20
    text, shapes, _, _ = P.chained_rosenbrock(n)
    x0 = np.full(n, 0.5)
    tc = xc.compile_hessian(text, shapes=shapes, sparse=True).scipy_trust_constr()
    assert tc.hess_sparsity.nnz == 3 * n - 2
    dense = xc.compile_hessian(rosenbrock(n))   # the same function of n scalars
    options = dict(gtol=1e-10, xtol=1e-14, maxiter=500)
    r_sparse = opt.minimize(tc.fun, x0, jac=tc.jac, hess=tc.hess, method="trust-constr", options=options)
    r_dense = opt.minimize(lambda x: dense.at(x)[0], x0, jac=lambda x: dense.at(x)[1],
                           hess=lambda x: dense.at(x)[2], method="trust-constr", options=options)
    # the global minimum, x = 1, both ways
    np.testing.assert_allclose(r_sparse.x, np.ones(n), atol=1e-8)
    np.testing.assert_allclose(r_dense.x, np.ones(n), atol=1e-8)
    assert r_sparse.fun < 1e-18 and np.linalg.norm(tc.jac(r_sparse.x)) < 1e-8


def test_results_share_read_only_indices_and_stay_correct():
    J = xc.compile_jacobian("x*y; y*z; z**2", sparse=True)
    first = J(1.0, 2.0, 3.0)[1]
    with pytest.raises(ValueError):
        first.eliminate_zeros()   # would restructure the shared index arrays
    own = first.copy()
    own.data[:] = 0.0
    own.eliminate_zeros()
    assert own.nnz == 0
    np.testing.assert_array_equal(J(1.0, 2.0, 3.0)[1].toarray(), [[2, 1, 0], [0, 3, 2], [0, 0, 6]])


def test_tensor_object_pickles_and_refuses_out():
    text, shapes, wrt, data = P.discrete_bvp(8)
    J = xc.compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True)
    x = P.start("discrete_bvp", 8)
    again = pickle.loads(pickle.dumps(J))
    np.testing.assert_array_equal(again(x=x, **data)[1].toarray(), J(x=x, **data)[1].toarray())
    np.testing.assert_array_equal(J.at(x, **data)[1].toarray(), J(x=x, **data)[1].toarray())
    with pytest.raises(TypeError, match="out= is not available"):
        J(x=x, **data, out=(np.zeros(8), np.zeros(22)))


# -- the command line ------------------------------------------------------------------

def test_cli_sparse_picture_nonzeros_and_plot(capsys, tmp_path):
    from exprcompiler.cli import main
    assert main(["jacobian", "x*y; y*z; z", "--sparse", "--ascii"]) == 0
    out = capsys.readouterr().out
    assert "sparse Jacobian (3x3): 5 structural nonzeros" in out
    assert "##.\n.##\n..#" in out and "2 colors" in out
    assert main(["jacobian", "x*y; y*z; z", "--sparse", "--at", "x=1,y=2,z=3"]) == 0
    out = capsys.readouterr().out
    assert "dy2/dz = 2.0" in out and "nonzeros (5):" in out
    assert main(["jacobian", "x[1:]*x[:-1]", "--shape", "x=5", "--sparse", "--ascii"]) == 0
    assert "4x5" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    png = tmp_path / "pattern.png"
    assert main(["jacobian", "x*y; y*z; z", "--sparse", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_large_pattern_is_drawn_in_blocks(capsys):
    from exprcompiler.cli import main
    assert main(["jacobian", "; ".join(discrete_bvp(200)), "--sparse", "--ascii"]) == 0
    out = capsys.readouterr().out
    assert "(each character is a 3x3 block)" in out
    picture = [line for line in out.splitlines() if set(line) <= {"#", "."} and line]
    assert len(picture) == 67 and all(len(line) == 67 for line in picture)


def test_explain_sparse_on_a_vector_output():
    text, shapes, wrt, _ = P.discrete_bvp(10)
    out = xc.explain(text, wrt=wrt, shapes=shapes, sparse=True)
    assert "sparse Jacobian (10x10): 28 structural nonzeros" in out and "3 colors" in out


def test_tensor_program_with_several_outputs_and_a_scalar_input():
    program = "a = x[1:]*x[:-1]\nb = sum(x) + y\nc = y*x[0]\na, b, c"
    shapes = {"x": (6,)}
    point = {"x": np.linspace(-1, 1, 6), "y": 0.7}
    for mode, colors in (("forward", 7), ("reverse", 3), ("auto", 3)):
        J = xc.compile_jacobian(program, wrt=["y", "x"], shapes=shapes, sparse=True, mode=mode)
        assert J.colors.count == colors and J.structure.shape == (7, 7)
        assert_jacobian_exact(J, xc.compile_jacobian(program, wrt=["y", "x"], shapes=shapes, mode=J.colors.mode),
                              point)


@pytest.mark.slow
def test_benchmark_quick_run_agrees_with_casadi_and_beats_dense(tmp_path):
    import json

    from exprcompiler.bench.cli import SUITES
    from exprcompiler.bench.report import write_json
    result = SUITES["sparse"][0]([1], 1, True)
    assert [r["colors"] for r in result.records] == ["7 forward", "3 forward", "3 star"]
    for r in result.records:
        assert r["dense"] > r["sparse"]
        assert r["err_casadi"] is None or r["err_casadi"] < 1e-12
    write_json(str(tmp_path / "b.json"), {}, [result])
    assert json.loads((tmp_path / "b.json").read_text())["suites"][0]["suite"] == "sparse"
