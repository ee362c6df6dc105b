"""SymPy matrix expressions (MatrixSymbol, MatMul, MatAdd, Transpose, HadamardProduct,
Trace...) -> tensor traces: values against NumPy evaluating the same formula, derivatives
against central differences and the dot-product test, the least-squares gradient against
Xᵀ(Xw − y), the shapes in the trace, and errors for what does not convert."""

import inspect
import re
import sys

import numpy as np
import pytest
import sympy as sp

from exprcompiler import compile_expr, compile_grad, compile_vjp, to_trace, verify
from exprcompiler.errors import ConversionError
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.passes import grad_reverse

n, p = sp.symbols("n p")
x = sp.Symbol("x")
X = sp.MatrixSymbol("X", n, 3)
w = sp.MatrixSymbol("w", 3, 1)
y = sp.MatrixSymbol("y", n, 1)
A = sp.MatrixSymbol("A", n, 3)
B = sp.MatrixSymbol("B", n, 3)
C = sp.MatrixSymbol("C", 3, 2)
S = sp.MatrixSymbol("S", n, n)
T = sp.MatrixSymbol("T", n, n)
v = sp.MatrixSymbol("v", n, 1)


def least_squares(X, w, y):
    r = X * w - y
    return r.T * r / 2


# -- least squares ------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 4, 50])
def test_least_squares_gradient_is_xt_residual(rows):
    g = compile_grad(least_squares(X, w, y), wrt=["w"])
    rng = np.random.default_rng(rows)
    Xv, wv, yv = rng.normal(size=(rows, 3)), rng.normal(size=(3, 1)), rng.normal(size=(rows, 1))
    value, (grad,) = g(X=Xv, w=wv, y=yv)     # n is bound by the arrays
    r = Xv @ wv - yv
    assert np.ndim(value) == 0 and value == pytest.approx(0.5 * (r.T @ r).item(), rel=1e-13)
    assert grad.shape == (3, 1)
    np.testing.assert_allclose(grad, Xv.T @ r, rtol=1e-12, atol=1e-14)


def test_least_squares_with_two_named_dimensions():
    Xp, wp, yp = sp.MatrixSymbol("X", n, p), sp.MatrixSymbol("w", p, 1), sp.MatrixSymbol("y", n, 1)
    primal = verify(to_trace(least_squares(Xp, wp, yp)))
    assert dict((name, primal.instrs[var].shape) for name, var in primal.inputs) == \
        {"X": ("n", "p"), "w": ("p", 1), "y": ("n", 1)}
    rng = np.random.default_rng(7)
    Xv, wv, yv = rng.normal(size=(9, 5)), rng.normal(size=(5, 1)), rng.normal(size=(9, 1))
    _, (grad,) = compile_grad(primal, wrt=["w"])(X=Xv, w=wv, y=yv)
    np.testing.assert_allclose(grad, Xv.T @ (Xv @ wv - yv), rtol=1e-12)


def test_least_squares_trace_computes_the_residual_once_and_no_p_by_p_matrix():
    # SymPy writes (Xw - y)ᵀ as wᵀXᵀ - yᵀ; the converter builds it as (Xw - y)ᵀ, so
    # X @ w is computed once, and the gradient has only matrix-vector products.
    Xp, wp, yp = sp.MatrixSymbol("X", n, p), sp.MatrixSymbol("w", p, 1), sp.MatrixSymbol("y", n, 1)
    primal = to_trace(least_squares(Xp, wp, yp))
    assert [ins.op for ins in primal.instrs if ins.op not in ("input", "const")] == \
        ["matmul", "sub", "transpose", "matmul", "div", "index"]
    grad = verify(grad_reverse(primal, ["w"]))
    shapes = {ins.shape for ins in grad.instrs}
    assert ("p", "p") not in shapes and ("n", "n") not in shapes
    for ins in grad.instrs:          # every product has a column or a row: no matrix-matrix one
        if ins.op == "matmul":
            assert any(1 in grad.instrs[a].shape for a in ins.args), ins


def test_matrix_chains_are_multiplied_in_the_cheap_order():
    # Xᵀ X w is Xᵀ (X w): never the (p, p) matrix Xᵀ X.
    Xp, wp = sp.MatrixSymbol("X", n, p), sp.MatrixSymbol("w", p, 1)
    trace = verify(to_trace(Xp.T * Xp * wp))
    assert [ins.shape for ins in trace.instrs if ins.op == "matmul"] == [("n", 1), ("p", 1)]
    wide = sp.MatrixSymbol("u", 1, n)          # u X Xᵀ: (u X) Xᵀ
    trace = verify(to_trace(wide * Xp * Xp.T))
    assert [ins.shape for ins in trace.instrs if ins.op == "matmul"] == [(1, "p"), (1, "n")]


# -- every node against NumPy -----------------------------------------------------------

# (SymPy expression, the same formula in NumPy over the inputs by name)
CASES = [
    (A + B, lambda A, B: A + B),
    (A - 2 * B + A / 3, lambda A, B: A - 2 * B + A / 3),
    (x * A / 3 - sp.Rational(5, 2) * B, lambda x, A, B: x * A / 3 - 2.5 * B),
    (-A, lambda A: -A),
    (A.T * B, lambda A, B: A.T @ B),
    (A * C, lambda A, C: A @ C),
    ((A + B).T * (A - B) * C, lambda A, B, C: (A + B).T @ (A - B) @ C),
    (sp.hadamard_product(A, B) + A, lambda A, B: A * B + A),
    (sp.hadamard_product(A, B, A.T.T), lambda A, B: A * B * A),
    (sp.HadamardPower(A, 3), lambda A: A ** 3),
    (sp.HadamardPower(A, x), lambda A, x: A ** x),            # (inputs > 0 for powers)
    (sp.Trace(S), lambda S: np.trace(S)),
    (3 * sp.Trace(S) + x, lambda S, x: 3 * np.trace(S) + x),
    (sp.Trace(S * T), lambda S, T: np.trace(S @ T)),
    (sp.Trace(A.T * B), lambda A, B: np.trace(A.T @ B)),
    (sp.Trace(A * B.T), lambda A, B: np.trace(A @ B.T)),
    (sp.Trace(A * C * C.T * B.T), lambda A, B, C: np.trace(A @ C @ C.T @ B.T)),
    (sp.Trace(x * S * T), lambda x, S, T: x * np.trace(S @ T)),
    (sp.Trace(S + T.T), lambda S, T: np.trace(S + T.T)),
    (sp.Trace(S ** 3), lambda S: np.trace(S @ S @ S)),
    (S ** 3, lambda S: S @ S @ S),
    (S ** 4 - T, lambda S, T: S @ S @ S @ S - T),
    (A[1, 2] * x + sp.Trace(S), lambda A, x, S: A[1, 2] * x + np.trace(S)),
    (sp.DiagonalOf(S), lambda S: np.diagonal(S)[:, None]),
    (sp.DiagMatrix(v), lambda v: np.diag(v[:, 0])),
    (A.applyfunc(sp.sin), lambda A: np.sin(A)),
    (sp.exp(x) * A.applyfunc(sp.tanh), lambda x, A: np.exp(x) * np.tanh(A)),
    (v.T * S * v, lambda v, S: (v.T @ S @ v)[0, 0]),          # 1×1: a scalar
    (v * v.T, lambda v: v @ v.T),                             # a column stays a column
]
DIMS = {"n": 4}


def _inputs(primal, rng, positive=False):
    """Random values for the inputs, n = DIMS["n"]; all > 0.5 if `positive`."""
    point = {name: rng.normal(size=tuple(DIMS.get(d, d) for d in primal.instrs[var].shape))
             for name, var in primal.inputs}
    if positive:
        point = {k: np.abs(a) + 0.5 for k, a in point.items()}
    return point


@pytest.mark.parametrize("expr, numpy_formula", CASES, ids=[str(c[0]) for c in CASES])
def test_value_matches_numpy_and_derivatives_match_differences(expr, numpy_formula):
    rng = np.random.default_rng(abs(hash(str(expr))) % 2 ** 32)
    primal = verify(from_sympy(expr))
    positive = any(isinstance(node, sp.HadamardPower) for node in sp.preorder_traversal(expr))
    point = _inputs(primal, rng, positive)
    value = compile_expr(primal)(**point)
    want = numpy_formula(**{k: point[k] for k in inspect.signature(numpy_formula).parameters})
    assert np.shape(value) == np.shape(want)
    np.testing.assert_allclose(value, want, rtol=1e-13, atol=1e-13)
    # The reverse mode against central differences, in one random direction (⟨u, J d⟩ = ⟨Jᵀu, d⟩).
    V = compile_vjp(primal)
    (yname,) = primal.output_names
    u = rng.normal(size=np.shape(value))
    _, adjoints = V(**point, **{f"{yname}_bar": u})
    d = {k: rng.normal(size=np.shape(a)) for k, a in point.items()}
    f = compile_expr(primal)
    h = 1e-6
    fd = (np.asarray(f(**{k: point[k] + h * d[k] for k in point})) -
          np.asarray(f(**{k: point[k] - h * d[k] for k in point}))) / (2 * h)
    lhs = float(np.sum(u * fd))
    rhs = sum(float(np.sum(a * d[k])) for k, a in zip(V.wrt, adjoints))
    assert rhs == pytest.approx(lhs, rel=1e-6, abs=1e-7)
    for k, a in zip(V.wrt, adjoints):
        assert np.shape(a) == np.shape(point[k]), k


def test_frobenius_loss_gradient_with_respect_to_a_matrix():
    # ½‖WX − Y‖²_F written as a trace: its gradient is (WX − Y)Xᵀ.
    W, Xm, Y = sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("X", 3, n), sp.MatrixSymbol("Y", 2, n)
    E = W * Xm - Y
    primal = verify(to_trace(sp.Trace(E.T * E) / 2))
    assert "diagonal" not in primal.op_counts()           # tr(EᵀE) is sum(E * E)
    rng = np.random.default_rng(3)
    Wv, Xv, Yv = rng.normal(size=(2, 3)), rng.normal(size=(3, 6)), rng.normal(size=(2, 6))
    value, (grad,) = compile_grad(primal, wrt=["W"])(W=Wv, X=Xv, Y=Yv)
    Ev = Wv @ Xv - Yv
    assert value == pytest.approx(0.5 * np.sum(Ev ** 2), rel=1e-13)
    np.testing.assert_allclose(grad, Ev @ Xv.T, rtol=1e-12)


def test_trace_of_a_plain_matrix_uses_its_diagonal():
    trace = verify(from_sympy(sp.Trace(S)))
    assert [ins.op for ins in trace.instrs if ins.op not in ("input",)] == ["diagonal", "sum"]
    grad = verify(grad_reverse(trace, ["S"]))
    Sv = np.arange(9.0).reshape(3, 3)
    _, (gS,) = compile_grad(trace)(S=Sv)
    np.testing.assert_array_equal(gS, np.eye(3))
    assert "diag" in grad.op_counts()


def test_a_column_matrix_symbol_stays_a_column():
    trace = from_sympy(X * w)
    assert trace.instrs[trace.outputs[0][1]].shape == ("n", 1)
    assert trace.instrs[dict(trace.inputs)["w"]].shape == (3, 1)


def test_routing_through_to_trace_and_compile_grad():
    # A matrix expression is one function (SymPy calls it is_Matrix too, like an explicit
    # Matrix, whose entries are several outputs).
    assert to_trace(X * w).output_names == ("y",)
    assert to_trace(X * w - y).output_names == ("f",)   # (y is an input)
    assert len(to_trace(sp.Matrix([x, x ** 2])).outputs) == 2
    g = compile_grad(sp.Trace(S * S) + x ** 2, wrt=["S", "x"])
    Sv = np.array([[1.0, 2.0], [3.0, 4.0]])
    value, (gS, gx) = g(S=Sv, x=3.0)
    assert value == pytest.approx(np.trace(Sv @ Sv) + 9.0)
    np.testing.assert_allclose(gS, 2 * Sv.T, rtol=1e-15)
    assert gx == 6.0


def test_deep_matrix_expression_converts_without_recursion():
    # SymPy itself recurses to build and to take the shape of a nested matrix
    # expression, so depth is limited by SymPy; the converter adds no frames per level.
    e = A
    for _ in range(150):
        e = sp.MatAdd(sp.HadamardProduct(e, B, evaluate=False), A, evaluate=False)
    depth = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        trace = from_sympy(e)
    finally:
        sys.setrecursionlimit(limit)
    assert trace.op_counts()["mul"] == 150 and trace.op_counts()["add"] == 150


# -- what does not convert ----------------------------------------------------------------

@pytest.mark.parametrize("expr, message", [
    (S.I, "unsupported SymPy matrix node 'Inverse' (in S**(-1))"),
    (sp.MatPow(S, -2), "matrix power with exponent -2: only positive integer powers convert"),
    (S + sp.Identity(n), "unsupported SymPy matrix node 'Identity'"),
    (sp.Determinant(S), "unsupported SymPy node 'Determinant'"),
    (sp.KroneckerProduct(A, B), "unsupported SymPy matrix node 'KroneckerProduct'"),
    (A[1:, :], "unsupported SymPy matrix node 'MatrixSlice'"),
    (S[n - 1, 0], "matrix element with non-constant indices: S[n - 1, 0]"),
    (A.applyfunc(lambda t: t ** 2 + 1), "applyfunc converts a single function such as sin"),
    (sp.MatrixSymbol("Z", n + 1, 2), "MatrixSymbol 'Z': dimension n + 1 must be a positive integer or a symbol"),
    (sp.Matrix([[x, 1], [2, x]]), "explicit SymPy matrices are not supported"),
])
def test_unsupported_nodes_are_named(expr, message):
    with pytest.raises(ConversionError, match=re.escape(message)):
        from_sympy(expr)


def test_an_unsupported_node_fails_through_compile_grad_too():
    with pytest.raises(ConversionError, match="'Inverse'"):
        compile_grad(sp.Trace(S.I))
