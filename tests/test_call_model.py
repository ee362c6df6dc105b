"""The call layer (issue "one compiled-function model"): what every compiled object
does the same way — one point given as numbers, at() and scipy() for dimensions that
only the variables have."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import ShapeError, compile_expr, compile_grad, compile_hessian, compile_hvp, ops
from exprcompiler.backends import numpy_backend

BACKENDS = ["numpy", "c"]
CHAIN = "sum((x - 2)**2) + sum(x[1:] * x[:-1])"


def _chain_grad(x):
    g = 2 * (x - 2)
    g[1:] += x[:-1]
    g[:-1] += x[1:]
    return g


@pytest.mark.parametrize("backend", BACKENDS)
def test_at_reads_a_dimension_only_the_variables_have_off_the_vector(backend):
    g = compile_grad(CHAIN, shapes={"x": ("n",)}, backend=backend)
    for n in (1, 2, 5, 40):
        x = np.linspace(-1, 1, n)
        value, grad = g.at(x)
        assert value == pytest.approx(np.sum((x - 2) ** 2) + np.sum(x[1:] * x[:-1]))
        np.testing.assert_allclose(grad, _chain_grad(x), rtol=1e-14)
    h = compile_hvp(CHAIN, shapes={"x": ("n",)}, backend=backend)
    _, _, hv = h.at(np.ones(4), np.array([1.0, 0, 0, 0]))
    np.testing.assert_allclose(hv, [2.0, 1, 0, 0])
    A = compile_grad("sum(A**2) + sum(A @ A)", shapes={"A": ("n", "n")}, backend=backend)
    assert A.at(np.ones(9))[1].shape == (9,)
    with pytest.raises(ShapeError, match=r"8 numbers does not fit A for any size of 'n' \(n = 3 gives 9\)"):
        A.at(np.ones(8))


def test_two_dimensions_only_the_variables_have_are_refused_with_the_fix():
    g = compile_grad("sum(A**2)", shapes={"A": ("n", "m")})
    with pytest.raises(ShapeError, match="dimensions 'm', 'n' cannot be read off one vector of 6 numbers"):
        g.at(np.ones(6))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scipy_minimizes_over_a_vector_whose_size_only_x0_tells(backend):
    from scipy.optimize import minimize
    g = compile_grad(CHAIN, shapes={"x": ("n",)}, backend=backend)
    fun, hessp = g.scipy()
    r = minimize(fun, np.zeros(6), jac=True, hessp=hessp, method="trust-ncg")
    np.testing.assert_allclose(_chain_grad(r.x), 0, atol=1e-8)
    assert fun.unpack(r.x)["x"].shape == (6,)
    H = compile_hessian(CHAIN, shapes={"x": ("n",)}, backend=backend)
    _, _, hess = H.at(r.x)
    assert hess.shape == (6, 6) and np.allclose(hess, hess.T)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_compiled_object_is_one_kind_the_driver_takes(backend):
    """minimize(compile_hessian(..., shapes=...), method="newton") raised
    "cannot compile a TensorHessian": the driver knew only one of the classes."""
    from exprcompiler import compile_jacobian
    from exprcompiler.compiled import CompiledFunction
    from exprcompiler.driver import minimize
    shapes = {"x": (4,)}
    made = [compile_grad(CHAIN, shapes=shapes, backend=backend),
            compile_grad(CHAIN, shapes=shapes, mode="forward", backend=backend),
            compile_hvp(CHAIN, shapes=shapes, backend=backend),
            compile_hessian(CHAIN, shapes=shapes, backend=backend),
            compile_jacobian("x * 2", shapes=shapes, backend=backend),
            compile_jacobian("x*y; sin(x)", backend=backend)]
    made[4](x=np.ones(4))  # a tensor Jacobian in auto mode picks its mode at each call
    for f in made:
        assert isinstance(f, CompiledFunction) and f.source and f.primal and f.backend == backend
        assert f.last_mode in ("forward", "reverse", "forward over reverse")
    r = minimize(made[3], {"x": np.zeros(4)}, method="newton")
    np.testing.assert_allclose(_chain_grad(r.x), 0, atol=1e-9)
    assert made[5].values(x=1.0, y=2.0) == (2.0, pytest.approx(np.sin(1.0)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_compiled_object_takes_its_inputs_positionally_or_by_name(backend):
    from exprcompiler import compile_jacobian
    X = np.arange(6.0).reshape(3, 2)
    w = np.array([0.5, -1.0])
    shapes = {"X": ("n", 2), "w": (2,)}
    for f in (compile_hessian("sum((X @ w)**2)", wrt=["w"], shapes=shapes, backend=backend),
              compile_jacobian("X @ w", wrt=["w"], shapes=shapes, backend=backend),
              compile_grad("sum((X @ w)**2)", wrt=["w"], shapes=shapes, mode="forward", backend=backend),
              compile_grad("sum((X @ w)**2)", wrt=["w"], shapes=shapes, backend=backend)):
        by_position, by_name = f(X, w), f(X=X, w=w)
        for a, b in zip(np.asarray(by_position[1], dtype=object).ravel(),
                        np.asarray(by_name[1], dtype=object).ravel()):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(TypeError, match="given twice"):
            f(X, X=X, w=w)
        with pytest.raises(TypeError, match="missing value for (input )?'w'"):
            f(X)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_signature_binds_a_call_once(backend):
    """g.signature: the names, seeds and declared shapes; a call's shapes are bound
    once per shape tuple, in one cache that the C tensor kernel's own wrapper shares
    (its dims argument is kept with the binding), and a refusal names input and sizes."""
    g = compile_hvp("sum(x*x*y)", wrt="x", backend=backend, shapes={"x": ("n",), "y": ("n",)})
    s = g.signature
    assert (s.inputs, s.seeds, s.wrt) == (("x", "y", "x_dot"), ("x_dot",), ("x",))
    assert s.declared == {"x": ("n",), "y": ("n",), "x_dot": ("n",)}
    assert repr(s) == "(x: (n,), y: (n,), x_dot: (n,)) -> (f: (), x.bar: (n,), x.bar.dot: (n,))"
    x = np.arange(4.0)
    for _ in range(3):
        g(x, x, x)
    bound = s.bind([x, x, x])
    assert bound.dims == {"n": 4} and bound.shapes == [(), (4,), (4,)]
    assert len(s._bound._entries) == 1
    assert ("c" in bound.memo) == (backend == "c")
    with pytest.raises(ShapeError, match="'y'.*n.*4.*3|n.*'y'"):
        g(x, np.ones(3), x)
    assert "elementwise" in repr(compile_grad("x*y", backend=backend).signature)


EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-310, 710.0, -710.0, 1e308, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("name", sorted(numpy_backend.MATH))
def test_one_point_through_math_gives_the_array_calls_ieee_results(name):
    """A NumPy kernel called with plain floats runs Python's math; where math raises
    (log(0), exp(1000), asin(2), pow(-8, 0.5)) the point is evaluated again with NumPy,
    so every edge value — inf, NaN, signed zero — is what the array call gives, and
    finite values agree to a few ulps."""
    op = ops.OPS[name]
    f = compile_expr(f"{name}(x)" if op.arity == 1 else f"{name}(x, y)" if name != "pow" else "x ** y")
    pairs = [(a,) for a in EDGES] if op.arity == 1 else [(a, b) for a in EDGES for b in EDGES[::3]]
    for args in pairs:
        want = f(*(np.array([a]) for a in args))[0]
        got = f(*args)
        assert type(got) is float
        if np.isfinite(want) and want != 0:
            assert abs(got - want) <= 4 * np.spacing(abs(want)), (name, args, got, want)
        else:
            assert np.array_equal(np.array(got), want, equal_nan=True), (name, args, got, want)
            assert np.isnan(want) or np.signbit(got) == np.signbit(want), (name, args, got, want)
