"""The C backend on tensor traces against the NumPy backend (itself tested against the
reference interpreter in test_tensor.py): every tensor case's value, JVP and VJP, the
lecture notes' losses, transposed and strided views in every loop order, inf/NaN
semantics, threads, the temporaries' workspace kept between calls, and readable
deterministic source."""

import numpy as np
import pytest

from exprcompiler import (CompileError, ShapeError, compile_expr, compile_grad, compile_hessian, compile_hvp,
                          compile_jvp, compile_vjp)
from exprcompiler.backends import c_build
from exprcompiler.bench.runner import flat_arrays
from exprcompiler.backends.c_tensor import generate_c_tensor
from exprcompiler.shape_binding import concrete
from exprcompiler.frontend import to_trace

from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import HAVE_CC, NO_CC, examples, in_threads
from merged_cases import case_of, merged
from test_random_tensor import SETTINGS, programs
from test_tensor import BIND, CASES, LOGISTIC, MLP, MLP_SHAPES, _data, _mlp_point

if not HAVE_CC:
    pytest.skip(NO_CC, allow_module_level=True)


pytestmark = pytest.mark.usefixtures("private_cache")


_flat = flat_arrays  # (y, (g1, g2)) -> [y, g1, g2] as float64 arrays


def assert_same(got, want, rtol=1e-12):
    """Equal to rtol relative (scaled by each array's largest entry), with inf and NaN
    exactly where NumPy has them."""
    got, want = _flat(got), _flat(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_array_equal(np.isinf(g) & (g > 0), np.isinf(w) & (w > 0))
        np.testing.assert_array_equal(np.isinf(g) & (g < 0), np.isinf(w) & (w < 0))
        finite = np.isfinite(w)
        scale = np.max(np.abs(w[finite]), initial=1.0)
        np.testing.assert_allclose(g[finite], w[finite], rtol=rtol, atol=rtol * scale)


def _both(make, program, shapes, **kw):
    return make(program, shapes=shapes, **kw), make(program, shapes=shapes, backend="c", **kw)


def _arguments(compiled, rng) -> dict:
    return {name: rng.normal(size=concrete(compiled.trace.instrs[v].shape, BIND))
            for name, (_, v) in zip(compiled.inputs, compiled.trace.inputs)}


def assert_cases_same(group: str, make):
    """`make` of every case of GROUPS[group] in one C kernel (merged_cases.py: one build
    per group and kind, not one per case): each case's outputs equal the NumPy
    backend's; a failure names every case that differs."""
    cases, arguments = GROUPS[group]
    f_np, f_c = _both(make, merged(cases), None)
    assert f_c.backend == "c" and "const ptrdiff_t *dims" in f_c.source
    kwargs = arguments(f_np, np.random.default_rng(len(cases)))
    names, got, want = f_c.trace.output_names, _flat(f_c(**kwargs)), _flat(f_np(**kwargs))
    assert len(got) == len(want) == len(names)
    failures = []
    for k, (program, _) in enumerate(cases):
        mine = [j for j, name in enumerate(names) if case_of(name) == k]
        try:
            assert mine, f"no outputs in {names}"
            assert_same([got[j] for j in mine], [want[j] for j in mine])
        except AssertionError as err:
            failures.append(f"{program!r} ({make.__name__}): {err}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("make", [compile_expr, compile_jvp, compile_vjp], ids=["value", "jvp", "vjp"])
def test_every_tensor_case_matches_numpy(make):
    assert_cases_same("tensor", make)


@given(programs(), st.integers(0, 2**31 - 1))
@settings(max_examples=examples(10), **SETTINGS)
def test_random_tensor_programs_match_numpy(primal, seed):
    # size-1 and broadcast dimensions, reductions over random axes, keepdims, stacks
    f_np, f_c = compile_vjp(primal), compile_vjp(primal, backend="c")
    args = _arguments(f_np, np.random.default_rng(seed))
    assert_same(f_c(**args), f_np(**args))


# -- the lecture notes' losses ----------------------------------------------------------
def test_least_squares_gradient_matches_numpy():
    X, w, y = _data(n=300, p=40)
    shapes = {"X": ("n", 40), "w": (40,), "y": ("n",)}
    g_np, g_c = _both(compile_grad, "0.5 * sum((X @ w - y)**2)", shapes, wrt=["w"])
    assert_same(g_c(X, w, y), g_np(X, w, y))
    np.testing.assert_allclose(g_c(X, w, y)[1][0], X.T @ (X @ w - y), rtol=1e-12)


def test_logistic_gradient_matches_numpy():
    X, w, _ = _data()
    y = np.where(np.random.default_rng(1).random(X.shape[0]) < 0.5, -1.0, 1.0)
    g_np, g_c = _both(compile_grad, LOGISTIC, {"X": ("n", 6), "w": (6,), "y": ("n",)}, wrt=["w"])
    assert_same(g_c(X, w, y), g_np(X, w, y))


def test_two_layer_network_gradient_matches_numpy():
    point = _mlp_point()
    g_np, g_c = _both(compile_grad, MLP, MLP_SHAPES, wrt=["W1", "b1", "W2", "b2"])
    assert_same(g_c(**point), g_np(**point))


def test_second_order_matches_numpy():
    # the least-squares HVP is Xᵀ(Xv) (forward over reverse); the Hessian is HVP sweeps
    X, w, y = _data(n=30, p=4)
    shapes = {"X": ("n", 4), "w": (4,), "y": ("n",)}
    loss = "0.5 * sum((X @ w - y)**2) + sum(sin(w))"
    v = np.random.default_rng(4).normal(size=4)
    h_np, h_c = _both(compile_hvp, loss, shapes, wrt=["w"])
    assert_same(h_c(X, w, y, v), h_np(X, w, y, v))
    H_np, H_c = _both(compile_hessian, loss, shapes, wrt=["w"])
    assert_same(H_c(X=X, w=w, y=y), H_np(X=X, w=w, y=y))


# -- every loop order of the matrix product, and views ------------------------------------
VIEW_CASES = [
    ("A.T @ v", {"A": (4, 3), "v": (4,)}),            # matrix·vector, transposed: rows accumulated
    ("v @ A.T", {"v": (3,), "A": (4, 3)}),            # vector·matrix, transposed: dot products
    ("A @ B.T", {"A": (3, 4), "B": (5, 4)}),          # matrix·matrix, transposed: dot products
    ("A.T @ B.T", {"A": (4, 3), "B": (5, 4)}),
    ("A[::2, 1:] @ B[1, :3]", {"A": (5, 4), "B": (2, 5)}),
    ("reshape(A.T, shape=(-1,))", {"A": (3, 4)}),      # a strided view copied before reshaping
    ("sum(reshape(A, shape=(2, 6)) * B, axis=0)", {"A": (3, 4), "B": (2, 6)}),
    ("x[-1] * x[0] + x[2:]", {"x": ("n",)}),
    ("sum(relu(X @ W1.T + b1))", {"W1": (5, 3), "b1": (5,), "X": ("n", 3)}),
    ("max(x, axis=0) + min(x, axis=(0, 1), keepdims=True)", {"x": (3, 4)}),
    ("mean(x, axis=0) + logsumexp(x, axis=0)", {"x": ("n", 3)}),
    ("softmax(x, axis=1)", {"x": (2, 3, 4)}),
    ("norm(A @ B) + sum(outer(u, u))", {"A": (2, 3), "B": (3, 2), "u": (2,)}),
    ("concatenate(x, y, axis=1)", {"x": (2, 3), "y": (2, 1)}),
    ("stack(x, y, axis=0)", {"x": (2, 3), "y": (2, 3)}),
]


@pytest.mark.parametrize("make", [compile_expr, compile_vjp], ids=["value", "vjp"])
def test_views_and_loop_orders_match_numpy(make):
    assert_cases_same("views", make)


def test_larger_products_over_several_threads_give_the_same_numbers():
    rng = np.random.default_rng(5)
    A, B, v = rng.normal(size=(70, 50)), rng.normal(size=(50, 30)), rng.normal(size=50)
    shapes = {"A": ("n", 50), "B": (50, 30), "v": (50,)}
    one = compile_expr("sum(A @ B) + sum(A @ v)", shapes=shapes, backend="c", threads=1)
    two = compile_expr("sum(A @ B) + sum(A @ v)", shapes=shapes, backend="c", threads=2)
    assert one(A, B, v) == two(A, B, v)
    assert one(A, B, v) == pytest.approx(np.sum(A @ B) + np.sum(A @ v), rel=1e-12)


# -- IEEE semantics -------------------------------------------------------------------------
EDGE_CASES = [
    ("sum(log(x))", [0.0, 1.0, 2.0]),
    ("log(x) * x", [0.0, -1.0, np.inf, np.nan]),
    ("max(x) + min(x)", [1.0, np.nan, 2.0]),
    ("max(x)", [-np.inf, -np.inf]),
    ("logsumexp(x)", [np.inf, 1.0]),
    ("logsumexp(x)", [-np.inf, -np.inf]),
    ("softmax(x)", [np.inf, 1.0]),
    ("norm(x)", [0.0, 0.0]),
    ("sqrt(x) / x", [0.0, 4.0]),
    ("where(x > 0, x, 0 * x)", [np.inf, -np.inf, np.nan]),
]


def _edge_arguments(compiled, rng) -> dict:
    """Case k's x its edge points; every seed ones (the derivative: a VJP with a seed of ones)."""
    return {name: np.array(EDGE_CASES[case_of(name)][1]) if name.endswith("_x")
            else np.ones(concrete(compiled.trace.instrs[v].shape, {}))
            for name, (_, v) in zip(compiled.inputs, compiled.trace.inputs)}


@pytest.mark.parametrize("make", [compile_expr, compile_vjp], ids=["value", "vjp"])
def test_inf_and_nan_as_numpy(make):
    assert_cases_same("edges", make)


# (cases, their arguments (compiled, rng) -> {name: array}): each group one kernel per kind
GROUPS = {
    "tensor": (CASES, _arguments),
    "views": (VIEW_CASES, _arguments),
    "edges": ([(p, {"x": (len(x),)}) for p, x in EDGE_CASES], _edge_arguments),
}


# -- the kernel, its source and its errors ----------------------------------------------------
def test_source_is_deterministic_readable_and_loops_over_named_dimensions():
    trace = to_trace("0.5 * sum((X @ w - y)**2)", {"X": ("n", 6), "w": (6,), "y": ("n",)})
    first, decl = generate_c_tensor(trace, func_name="f")
    assert first == generate_c_tensor(trace, func_name="f")[0]
    assert decl.startswith("int f(const ptrdiff_t *dims, int threads, const double *in0")
    assert "const ptrdiff_t D0 = dims[0];" in first and "D0 = n" in first
    assert "const double *const X = in0;" in first and "#pragma omp simd reduction(+:" in first


def test_user_names_never_reach_the_source_unmangled():
    g = compile_grad("sum(_u41_ * f_grad) + sum(int)", shapes={"_u41_": (2,), "f_grad": (2,), "int": (2,)},
                     backend="c")
    value, grads = g(np.ones(2), np.full(2, 2.0), np.ones(2))
    assert value == 6.0
    np.testing.assert_array_equal(grads[1], [1.0, 1.0])


def test_scalar_traces_keep_the_per_point_kernel():
    assert "_point(" in compile_grad("x * y", backend="c").source
    assert "dims" in compile_grad("sum(x * y)", shapes={"x": (3,)}, backend="c").source


def test_call_time_shape_errors_come_before_the_kernel():
    g = compile_grad("sum(X @ w)", shapes={"X": ("n", 3), "w": (3,)}, backend="c")
    with pytest.raises(ShapeError, match="'w'"):
        g(np.ones((4, 3)), np.ones(2))
    value, (gX, gw) = g(np.ones((4, 3)), np.ones(3))  # the same kernel, another n
    assert value == 12.0 and gX.shape == (4, 3)


def test_non_contiguous_arguments():
    g = compile_grad("sum(X @ w)", shapes={"X": (3, "p"), "w": ("p",)}, wrt=["w"], backend="c")
    X = np.arange(12.0).reshape(4, 3).T         # a transposed (Fortran-order) argument
    w = np.arange(8.0)[::2]                       # a strided one
    value, (gw,) = g(X, w)
    assert value == pytest.approx(np.sum(X @ w))
    np.testing.assert_array_equal(gw, X.sum(axis=0))


def test_no_compiler_is_a_compile_error_that_points_to_numpy(monkeypatch):
    monkeypatch.setattr(c_build.shutil, "which", lambda name: None)
    c_build.find_compiler.cache_clear()
    try:
        with pytest.raises(CompileError, match='backend="numpy"'):
            compile_grad("sum(x * x)", shapes={"x": (7,)}, backend="c")
    finally:
        c_build.find_compiler.cache_clear()


def test_diagonal_and_diag_from_sympy_compile_on_c():
    sp = pytest.importorskip("sympy")
    S = sp.MatrixSymbol("S", 3, 3)
    A = np.arange(9.0).reshape(3, 3) - 2.5
    expr = sp.Trace(S * S.T) + sp.Trace(S)  # sum(S * S) + sum(diagonal(S)); its adjoint uses diag
    got, want = compile_grad(expr, backend="c")(A), compile_grad(expr)(A)
    assert got[0] == pytest.approx(want[0], rel=1e-14)
    np.testing.assert_allclose(got[1][0], want[1][0], rtol=1e-14)


def test_an_op_without_c_loops_is_a_compile_error(monkeypatch):
    from exprcompiler.backends import c_tensor
    monkeypatch.delitem(c_tensor.EMITTERS, "outer")
    with pytest.raises(CompileError, match="no loops for outer"):
        compile_expr("outer(u, v)", shapes={"u": (2,), "v": (3,)}, backend="c")


# -- the temporaries' workspace: kept per thread between calls ----------------------------
def test_workspace_is_reused_across_calls_sizes_and_threads():
    """Four threads at once, cycling through sizes from 1 row to 40 000 (temporaries
    above glibc's mmap threshold), every result equal to the NumPy backend's; the blocks
    are reused at a repeated size and at most Workspace.KEEP are kept per thread."""
    import threading
    shapes = {"X": ("n", 6), "w": (6,), "y": ("n",)}
    g_np, g_c = _both(compile_grad, LOGISTIC, shapes, wrt=["w"])
    rng = np.random.default_rng(7)

    def case(n):  # (arguments, NumPy's results): each thread its own data
        X, w, y = rng.normal(size=(n, 6)), rng.normal(size=6), np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return (X, w, y), g_np(X, w, y)
    sizes = (1, 7, 300, 40_000)
    cases = [[case(n) for n in sizes] for _ in range(4)]
    workspace = g_c._fn.workspace
    held = lambda: workspace.local.__dict__.get("held", {})  # noqa: E731 - this thread's blocks
    g_c(*cases[0][2][0])
    block = dict(held())
    g_c(*cases[0][2][0])
    assert held() == block and all(held()[k] is block[k] for k in block)  # the same block again
    barrier, failures = threading.Barrier(4), []

    def work(k):
        try:
            for r in range(16):  # each round all threads at one size (so a shared block would clash)
                args, want = cases[k][r % len(sizes)]
                barrier.wait()
                assert_same(g_c(*args), want)
                assert len(held()) <= workspace.KEEP
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            barrier.abort()
            failures.append(err)
    in_threads(work)
    assert not failures, failures
    assert held() == block  # other threads' calls left this thread's block alone
