"""What the lsq call layer's speed work must not change: the NumPy backend's matrix
products spelled `a.dot(b)` (up to two dimensions, contractions of a known length of two
or more) give the bits `a @ b` gives, and
call_args.quiet's per-thread Contexts follow each error state the caller sets, and the C
tensor call (c_tensor.run_bound) returns each output in its place, scalars and arrays mixed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.call_args import quiet

LSQ = "0.5 * sum((X @ w - y)**2)"


def _body(g) -> str:
    """The generated function's statements (the header comment quotes the expression)."""
    return g.source.split("\ndef ", 1)[1]


def test_lsq_products_are_dots_with_the_bits_of_matmul():
    g = compile_grad(LSQ, wrt=["w"], shapes={"X": ("n", 4), "w": (4,), "y": ("n",)})
    assert "X.dot(w)" in _body(g)   # (r @ X contracts over n, whose length may be 1: see below)
    rng = np.random.default_rng(3)
    X, w, y = rng.normal(size=(9, 4)), rng.normal(size=4), rng.normal(size=9)
    value, (grad,) = g(X=X, w=w, y=y)
    r = X @ w - y
    assert np.array_equal(grad, r @ X)          # the same BLAS gemv, the same bits
    assert value == 0.5 * float(r @ r)


def test_a_contraction_of_one_term_keeps_the_sign_of_zero_of_matmul():
    """dot of one term is the product (0·-1 = -0.0), @ adds it to +0.0 as the interpreter
    and C do: a length of 1, or one known only at the call, is spelled @."""
    from exprcompiler import compile_expr
    from exprcompiler.trace import interpret
    for shapes in ({"x": (1,), "y": (1,)}, {"x": ("n",), "y": ("n",)}):
        f = compile_expr("x @ y + x", shapes=shapes)
        assert ".dot(" not in _body(f)
        x, y = np.array([0.0]), np.array([-1.0])
        got, want = f(x=x, y=y), interpret(f.trace, {"x": x, "y": y})[0]
        assert np.array_equal(np.signbit(got), np.signbit(want)) and not np.signbit(got).any()


@pytest.mark.parametrize("shapes", [{"A": (3, 4), "B": (4, 2)}, {"A": (4,), "B": (4, 2)}])
def test_matrix_products_match_matmul_and_finite_differences(shapes):
    g = compile_grad("sum((A @ B)**2)", shapes=shapes)
    assert " @ " not in _body(g)   # the products and their transposed partners: dots
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=shapes["A"]), rng.normal(size=shapes["B"])
    value, (gA, gB) = g(A=A, B=B)
    assert value == pytest.approx(np.sum((A @ B) ** 2), rel=1e-14)
    np.testing.assert_array_equal(gA, (2 * (A @ B)) @ B.T)
    d = rng.normal(size=A.shape)
    h = 1e-6
    fd = (np.sum(((A + h * d) @ B) ** 2) - np.sum(((A - h * d) @ B) ** 2)) / (2 * h)
    assert np.sum(gA * d) == pytest.approx(fd, rel=1e-7)


def test_quiet_follows_each_error_state_of_the_caller():
    seen = []
    f = quiet(lambda: seen.append(np.geterr()["over"]) or np.exp(np.full(3, 800.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for state in ("warn", "raise", "warn", "ignore", "raise"):
            with np.errstate(over=state):
                assert f()[0] == np.inf
                assert np.geterr()["over"] == state
    assert seen == ["ignore"] * 5


def test_c_tensor_outputs_in_any_order_of_scalars_and_arrays():
    """backends/c_tensor.run_bound passes the scalar outputs' pointers (in the work
    block) first and reorders them where a scalar follows an array: each output of a
    mixed-order function equals the NumPy backend's, through the call plan and fn, at
    two sizes and back (the thread's kept blocks)."""
    from exprcompiler import compile_expr
    program = "X @ w; sum(X @ w); 2 * y; sum(y * y)"
    shapes = {"X": ("n", 3), "w": (3,), "y": ("n",)}
    f_np, f_c = (compile_expr(program, shapes=shapes, backend=b) for b in ("numpy", "c"))
    rng = np.random.default_rng(5)
    for n in (4, 9, 4):
        X, w, y = rng.normal(size=(n, 3)), rng.normal(size=3), rng.normal(size=n)
        want = f_np(X, w, y)
        for got in (f_c(X, w, y), f_c(X=X, w=w, y=y), f_c(X, w, y), f_c.function(X, w, y)):
            assert [type(r) for r in got] == [np.ndarray, float, np.ndarray, float]
            for g, v in zip(got, want):
                np.testing.assert_allclose(g, v, rtol=1e-13)
