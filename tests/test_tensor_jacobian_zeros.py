"""Dense tensor Jacobians and Hessians keep their structural zeros at edge lanes.

A unit seed leaves the other lanes' tangents (adjoints) at 0, and where a partial is
infinite (sqrt, cbrt, x**0.5 at 0, arcsin at ±1, log at 0) 0 · inf made NaN over
entries that are exactly 0 whatever the point. tensor_jacobians.py now zeroes the
non-finite entries outside the structural pattern (sparsity.py with the call's named
dimensions bound). Reference: the scalar-list Jacobian/Hessian of the same function
written per element (whose sweeps drop zero tangents symbolically), and sympy.
"""

import numpy as np
import pytest

import exprcompiler as xc
from exprcompiler import sparsity, tensor_jacobians
from exprcompiler.backends import c_build
from exprcompiler.frontend import to_trace

HAVE_CC = c_build.shutil.which("cc") is not None or c_build.shutil.which("gcc") is not None
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(not HAVE_CC, reason="no C compiler"))]
MODES = ["forward", "reverse"]

# (tensor expression of x (3,), the same per element, a point with an edge lane)
ELEMENTWISE = [
    ("sqrt(x)", "sqrt(x{k})", [0.0, 4.0, 9.0]),
    ("cbrt(x)", "cbrt(x{k})", [1.0, 0.0, 8.0]),
    ("x**0.5", "x{k}**0.5", [4.0, 1.0, 0.0]),
    ("arcsin(x)", "arcsin(x{k})", [0.5, 1.0, -1.0]),
    ("log(x)", "log(x{k})", [0.0, 2.0, 3.0]),
]


def scalar_jacobian(per_element: str, x, mode: str, backend: str):
    exprs = [per_element.format(k=k) for k in range(len(x))]
    J = xc.compile_jacobian(exprs, mode=mode, backend=backend)
    return J(*x)[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expr, per_element, point", ELEMENTWISE)
def test_elementwise_edge_lanes(expr, per_element, point, mode, backend):
    x = np.array(point)
    with np.errstate(all="ignore"):
        J = xc.compile_jacobian(expr, shapes={"x": ("n",)}, mode=mode, backend=backend)
        got = J(x)[1]
        want = scalar_jacobian(per_element, x, mode, backend)
    np.testing.assert_array_equal(got, want)
    assert got[~np.eye(3, dtype=bool)].tolist() == [0.0] * 6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_sqrt_against_sympy(mode, backend):
    sp = pytest.importorskip("sympy")
    xs = sp.symbols("x0:4")
    f = [sp.sqrt(v) for v in xs]
    point = {v: val for v, val in zip(xs, [0, 1, 4, 9])}
    want = np.array([[float(sp.limit(sp.diff(fi, v), v, point[v], "+")) if v == xi else
                      float(sp.diff(fi, v).subs(point)) for v in xs] for fi, xi in zip(f, xs)])
    with np.errstate(all="ignore"):
        got = xc.compile_jacobian("sqrt(x)", shapes={"x": (4,)}, mode=mode, backend=backend)(
            np.array([0.0, 1.0, 4.0, 9.0]))[1]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_matmul_block_with_edge_lane(mode, backend):
    """concatenate(W @ x, sqrt(y)): the W @ x rows do not depend on y, the sqrt(y)
    rows not on x nor on the other lanes of y."""
    W = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]])
    x, y = np.array([1.0, 2.0]), np.array([0.0, 4.0])
    with np.errstate(all="ignore"):
        J = xc.compile_jacobian("concatenate(W @ x, sqrt(y))", shapes={"W": (3, 2), "x": (2,), "y": (2,)},
                                wrt=["x", "y"], mode=mode, backend=backend)
        got = J(W=W, x=x, y=y)[1]
    want = np.zeros((5, 4))
    want[:3, :2] = W
    want[3, 2], want[4, 3] = np.inf, 0.25
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_matrix_matmul_rows(mode, backend):
    """sqrt(X) @ B: output row i depends on row i of X only; sqrt(X)[0, 0] is at 0."""
    X = np.array([[0.0, 1.0], [4.0, 9.0]])
    B = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    with np.errstate(all="ignore"):
        J = xc.compile_jacobian("sqrt(X) @ B", shapes={"X": ("n", "k"), "B": ("k", "p")}, wrt=["X"],
                                mode=mode, backend=backend)
        got = J(X=X, B=B)[1]
        per = [f"sqrt(X{i}{k})" for i in range(2) for k in range(2)]
        exprs = [" + ".join(f"{per[2 * i + k]} * ({float(B[k, j])!r})" for k in range(2)) for i in range(2) for j in range(3)]
        scalar = xc.compile_jacobian(exprs, wrt=["X00", "X01", "X10", "X11"], mode=mode, backend=backend)
        want = scalar(**{f"X{i}{k}": X[i, k] for i in range(2) for k in range(2)})[1]
    assert not np.isnan(got[3:]).any()   # the rows of X's second row: no NaN from X[0, 0]
    assert got[:3, 2:].tolist() == [[0.0] * 2] * 3 and got[3:, :2].tolist() == [[0.0] * 2] * 3
    # inside the pattern: forward, the JVP seeded on X[0, 1] carries sqrt(X)[0, 0]'s
    # tangent 0 · inf = NaN into the product's first row; those rows are swept again
    # in reverse mode
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_structural_zeros(backend):
    """sum(x**1.5) at x0 = 0: one HVP per column spread 0 · inf over row and column 0,
    and the symmetrization 0.5 (H + Hᵀ) spread a NaN on one side to the other."""
    x = np.array([0.0, 4.0, 9.0])
    with np.errstate(all="ignore"):
        H = xc.compile_hessian("sum(x**1.5)", shapes={"x": ("n",)}, backend=backend)
        value, grad, hess = H(x)
        S = xc.compile_hessian("x0**1.5 + x1**1.5 + x2**1.5", backend=backend)
        value_s, grad_s, hess_s = S(*x)
    assert value == value_s
    np.testing.assert_array_equal(grad, grad_s)
    np.testing.assert_array_equal(hess, hess_s)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_two_edge_lanes(backend):
    """sum(x**1.5) at x0 = x1 = 0: H[0, 1] is NaN in both HVP columns; the pattern
    makes it 0."""
    with np.errstate(all="ignore"):
        hess = xc.compile_hessian("sum(x**1.5)", shapes={"x": ("n",)}, backend=backend)(np.array([0.0, 0.0, 4.0]))[2]
    np.testing.assert_array_equal(hess, np.diag([np.inf, np.inf, 0.375]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_mixed_pairs(backend):
    """sum(cbrt(x) * y): x_k pairs with x_k and y_k only."""
    x, y = np.array([0.0, 8.0]), np.array([2.0, 3.0])
    with np.errstate(all="ignore"):
        H = xc.compile_hessian("sum(cbrt(x) * y)", shapes={"x": ("n",), "y": ("n",)}, wrt=["x", "y"],
                               backend=backend)
        _, grad, hess = H(x, y)
        S = xc.compile_hessian("cbrt(x0) * y0 + cbrt(x1) * y1", wrt=["x0", "x1", "y0", "y1"], backend=backend)
        _, grad_s, hess_s = S(x0=x[0], x1=x[1], y0=y[0], y1=y[1])
    np.testing.assert_array_equal(grad, grad_s)
    # d²/dx0 dy0 = cbrt'(0) = inf: NaN in the HVP column of y0 (x0's tangent 0 meets
    # cbrt''(0)), inf in x0's; the symmetrization takes the number
    np.testing.assert_array_equal(hess, hess_s)
    assert hess[0, 2] == hess[2, 0] == np.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_gradient_sum_of_sqrt(backend):
    """Inside the pattern: the JVP seeded on x_1 meets sqrt'(x_0) = inf with tangent
    0 before the sum; the NaN row is swept again in reverse mode."""
    with np.errstate(all="ignore"):
        g = xc.compile_grad("sum(sqrt(x))", shapes={"x": ("n",)}, mode="forward", backend=backend)
        value, (gx,) = g(np.array([0.0, 4.0, 9.0]))
    assert value == 5.0
    np.testing.assert_array_equal(gx, [np.inf, 0.25, 1 / 6])


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_jacobian_index_of_sqrt(backend):
    """Reverse, the adjoint of sqrt(x) is 0 at lane 0 where sqrt' is inf: x[1]'s adjoint
    goes through sqrt at lane 1 only (passes/reverse_index.py), so no NaN to repair."""
    with np.errstate(all="ignore"):
        J = xc.compile_jacobian("sqrt(x)[1] + x[0]", shapes={"x": ("n",)}, mode="reverse", backend=backend)
        jac = J(np.array([0.0, 4.0, 9.0]))[1]
    np.testing.assert_array_equal(jac, [[1.0, 0.25, 0.0]])


def test_forward_gradient_unused_lane():
    """The forward-mode gradient is the forward Jacobian's row: an element the
    function does not read gets 0 even where another lane's partial is infinite."""
    with np.errstate(all="ignore"):
        g = xc.compile_grad("sum(sqrt(x[1:]))", shapes={"x": ("n",)}, mode="forward")
        value, (gx,) = g(np.array([0.0, 0.0, 4.0]))
    assert value == 2.0
    assert gx[0] == 0.0 and gx[1] == np.inf


def test_finite_results_untouched():
    """A finite Jacobian is not read against any pattern (none is made)."""
    J = xc.compile_jacobian("sqrt(x)", shapes={"x": ("n",)}, mode="reverse")
    J(np.array([1.0, 4.0]))
    assert J._patterns._cache.peek(("reverse", (("x", (2,)),))) is None


def test_pattern_per_shape_set():
    J = xc.compile_jacobian("sqrt(x)", shapes={"x": ("n",)}, mode="forward")
    with np.errstate(all="ignore"):
        for n in (2, 3, 2):
            jac = J(np.arange(n, dtype=float))[1]
            assert np.array_equal(jac[~np.eye(n, dtype=bool)], np.zeros(n * n - n))
    assert len(J._patterns._cache._entries) == 2


def test_too_costly_pattern_is_skipped(monkeypatch):
    """Where no pattern is made (over the limit here; an op sparsity.py does not
    know): a Jacobian's NaN rows are still swept in the other mode, a Hessian is
    returned as the sweeps give it."""
    monkeypatch.setattr(tensor_jacobians, "PATTERN_LIMIT", 0)
    with np.errstate(all="ignore"):
        jac = xc.compile_jacobian("sqrt(x)", shapes={"x": ("n",)}, mode="forward")(np.array([0.0, 1.0]))[1]
        H = xc.compile_hessian("sum(x**1.5)", shapes={"x": ("n",)})
        one = H(np.array([0.0, 1.0]))[2]   # H[0, 1] NaN (column 1), H[1, 0] 0: symmetrized to 0
        two = H(np.array([0.0, 0.0]))[2]   # NaN on both sides: only the pattern says 0
    np.testing.assert_array_equal(jac, [[np.inf, 0.0], [0.0, 0.5]])
    np.testing.assert_array_equal(one, [[np.inf, 0.0], [0.0, 0.75]])
    assert np.isnan(two[0, 1]) and np.isnan(two[1, 0])


def test_pattern_not_made_where_it_costs_more_than_the_sweeps():
    """Two forward sweeps over 4000 elements: the walk (~1 µs an element) would cost
    some 100 times the sweeps; 4000 reverse sweeps: well under them."""
    shapes = {"a": (2,), "t": (2000, 2)}
    for mode, made in (("forward", False), ("reverse", True)):
        J = xc.compile_jacobian("exp(a * t) * sqrt(t)", shapes=shapes, wrt=["a"], mode=mode)
        assert (J._patterns._make(shapes, mode) is not None) is made


# -- sparsity.py: named dimensions and the ops added -----------------------------------

def _numeric_nonzeros(expr, shapes, dims, wrt):
    """The nonzeros of the Jacobian at a random point (generic: no accidental zeros)."""
    rng = np.random.default_rng(1)
    concrete = {k: tuple(dims.get(d, d) for d in s) for k, s in shapes.items()}
    args = {k: rng.uniform(0.5, 1.5, s) for k, s in concrete.items()}
    J = xc.compile_jacobian(expr, shapes=shapes, wrt=wrt, mode="reverse")
    return J(**args)[1] != 0


@pytest.mark.parametrize("expr, shapes, wrt", [
    ("softmax(x) * 2", {"x": ("n", "m")}, ["x"]),
    ("softmax(x, axis=0)", {"x": ("n", "m")}, ["x"]),
    ("logsumexp(x, axis=1) + norm(y)", {"x": ("n", "m"), "y": ("n",)}, ["x", "y"]),
    ("outer(y, x[0]) + 1", {"x": ("n", "m"), "y": ("n",)}, ["x", "y"]),
    ("x[1:] - x[:-1]", {"x": ("n", "m")}, ["x"]),
])
def test_structure_with_dims(expr, shapes, wrt):
    dims = {"n": 3, "m": 4}
    got = sparsity.jacobian_structure(to_trace(expr, shapes=shapes), wrt, dims).to_dense()
    np.testing.assert_array_equal(got, _numeric_nonzeros(expr, shapes, dims, wrt))


def test_max_min_structure():
    """max/min: the column each reduces (a superset: at a generic point the derivative
    picks one element of it)."""
    expr, shapes = "max(x, axis=0) * min(x, axis=0)", {"x": ("n", "m")}
    got = sparsity.jacobian_structure(to_trace(expr, shapes=shapes), ["x"], {"n": 3, "m": 4}).to_dense()
    assert (got >= _numeric_nonzeros(expr, shapes, {"n": 3, "m": 4}, ["x"])).all()
    np.testing.assert_array_equal(got, np.tile(np.eye(4, dtype=bool), 3))


def test_hessian_structure_new_ops():
    """max/min are piecewise linear (no pairs); logsumexp pairs within a row; outer
    pairs across its arguments."""
    t = to_trace("sum(max(x, axis=1)) + logsumexp(x[0]) + sum(outer(y, z))",
                 shapes={"x": ("n", "m"), "y": ("n",), "z": (2,)})
    hess = sparsity.hessian_structure(t, ["x", "y", "z"], {"n": 2, "m": 2}).to_dense()
    want = np.zeros((8, 8), dtype=bool)
    want[:2, :2] = True                 # x[0, :] with itself (logsumexp)
    want[4:6, 6:8] = want[6:8, 4:6] = True   # y with z
    np.testing.assert_array_equal(hess, want)


def test_named_dimensions_need_dims():
    t = to_trace("sqrt(x)", shapes={"x": ("n",)})
    with pytest.raises(ValueError, match="concrete shapes"):
        sparsity.jacobian_structure(t)
    assert sparsity.jacobian_structure(t, None, {"n": 2}).to_dense().tolist() == [[True, False], [False, True]]


def test_sparse_with_new_ops():
    """sparse=True now takes softmax, logsumexp, norm, max, outer: the values are the
    dense ones."""
    pytest.importorskip("scipy")
    x = np.random.default_rng(2).uniform(0.5, 1.5, 6)
    for expr in ("softmax(x[:3]) * x[3:]", "concatenate(reshape(outer(x[:2], x[4:]), shape=(4,)), x[:1])"):
        sparse = xc.compile_jacobian(expr, shapes={"x": (6,)}, sparse=True)(x)[1].toarray()
        np.testing.assert_array_equal(sparse, xc.compile_jacobian(expr, shapes={"x": (6,)})(x)[1])
    expr = "logsumexp(x[:2]) + norm(x[2:4]) + max(x) * 2"
    sparse = xc.compile_hessian(expr, shapes={"x": (6,)}, sparse=True)
    dense = xc.compile_hessian(expr, shapes={"x": (6,)})
    np.testing.assert_allclose(sparse(x)[2].toarray(), dense(x)[2], rtol=0, atol=1e-15)
    assert sparse.nnz == 8   # the two 2 × 2 blocks; max adds none
