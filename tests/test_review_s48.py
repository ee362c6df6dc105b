"""Review of the night session of 2026-12-06: findings and their fixes.

1. `axis=None` given to an op whose axis defaults to a number (softmax, log_softmax,
   stack, concatenate) was dropped as if absent, so softmax(A, axis=None) on a matrix
   was softmax along the last axis, where SciPy's means all elements. It now means all
   axes: one axis for a vector, a ShapeError that says so for a matrix.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from exprcompiler import compile_expr, compile_grad
from exprcompiler.errors import ShapeError


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_axis_none_on_a_vector_is_its_one_axis(op):
    x = np.array([1.0, -2.0, 0.5, 3.0])
    got = compile_expr(f"{op}(x, axis=None)", shapes={"x": (4,)})(x)
    want = getattr(scipy.special, op)(x, axis=None)
    assert np.allclose(got, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("expr", ["softmax(A, axis=None)", "log_softmax(A, axis=None)",
                                  "concatenate(A, A, axis=None)", "stack(A, A, axis=None)",
                                  "sum(softmax(A, axis=None) * A)"])
def test_axis_none_on_a_matrix_is_refused_not_the_last_axis(expr):
    with pytest.raises(ShapeError, match=r"axis=None means all axes"):
        compile_expr(expr, shapes={"A": (2, 3)})
    with pytest.raises(ShapeError, match=r"axis=None means all axes"):
        compile_grad(f"sum({expr})", shapes={"A": (2, 3)})


def test_axis_none_still_means_the_default_where_the_default_is_none():
    A = np.arange(6.0).reshape(2, 3)
    assert compile_expr("sum(A, axis=None)", shapes={"A": (2, 3)})(A) == 15.0
    assert compile_expr("sum(sum(A, keepdims=None))", shapes={"A": (2, 3)})(A) == 15.0
    got = compile_expr("softmax(A)", shapes={"A": (2, 3)})(A)
    assert np.allclose(got, scipy.special.softmax(A, axis=-1), rtol=1e-15)


def test_the_sparsity_of_a_gradient_through_log_softmax_holds_its_jacobian():
    """log_softmax's adjoint is one internal op (log_softmax_vjp); a pattern of a
    gradient trace that holds it covers every nonzero of that gradient's Jacobian."""
    from exprcompiler import passes, sparsity, to_trace
    shapes = {"Z": (2, 3), "y": (2, 3)}
    grad = passes.grad_reverse(to_trace("-sum(y*log_softmax(Z, axis=1))", shapes=shapes))
    assert any(ins.op == "log_softmax_vjp" for ins in grad.instrs)
    pattern = sparsity.jacobian_pattern(grad).toarray().astype(bool)[1:]   # (row 0: the value)
    assert grad.input_names == ("Z", "y") and pattern.shape == (12, 12)
    g = compile_grad("-sum(y*log_softmax(Z, axis=1))", shapes=shapes)
    rng = np.random.default_rng(5)
    Z, y = rng.normal(size=(2, 3)), rng.uniform(size=(2, 3))
    x0 = np.concatenate([Z.ravel(), y.ravel()])

    def grads(x):
        out = dict(zip(g.wrt, g(Z=x[:6].reshape(2, 3), y=x[6:].reshape(2, 3))[1]))
        return np.concatenate([np.ravel(out["Z"]), np.ravel(out["y"])])
    h = 1e-6
    J = np.stack([(grads(x0 + h * e) - grads(x0 - h * e)) / (2 * h) for e in np.eye(12)], axis=1)
    assert np.count_nonzero(np.abs(J) > 1e-8) > 20
    assert not np.any((np.abs(J) > 1e-8) & ~pattern)
    assert pattern.sum() < pattern.size   # (the rows' slices, not everything)
