"""`Compiled.at`: one point with the variables packed in a vector, on both backends and
for every kind, giving the numbers of the ordinary call; data inputs by name; clear
errors for wrong lengths, missing or unknown names."""

import numpy as np
import pytest

from exprcompiler import (compile_expr, compile_grad, compile_hessian, compile_hvp, compile_jacobian,
                          compile_jvp, compile_vjp)
from conftest import backends_here

BACKENDS = backends_here("c")
GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
X = np.array([1.5, 0.5])


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kind_at_a_point_equals_the_ordinary_call(backend):
    g = compile_grad(GRIEWANK, backend=backend)
    value, grad = g.at(X)
    v2, g2 = g(*X)
    assert value == v2 and isinstance(value, float)
    np.testing.assert_array_equal(grad, g2)

    h = compile_hvp(GRIEWANK, backend=backend)
    value, grad, hv = h.at(X, [0.3, -1.0])
    _, g3, hv3 = h(*X, 0.3, -1.0)
    np.testing.assert_array_equal(grad, g3)
    np.testing.assert_array_equal(hv, hv3)

    H = compile_hessian(GRIEWANK, backend=backend)
    _, _, hess = H.at(X)
    np.testing.assert_array_equal(hess, H(*X)[2])
    np.testing.assert_allclose(hess @ [0.3, -1.0], hv, rtol=1e-13)

    f = compile_expr(GRIEWANK, backend=backend)
    assert f.at(X) == f(*X)

    jvp = compile_jvp(GRIEWANK, backend=backend)
    assert jvp.at(X, [1.0, 0.0]) == jvp(*X, 1.0, 0.0)

    vjp = compile_vjp("x*y; sin(x) - y", backend=backend)
    vals, bar = vjp.at([1.0, 2.0], [1.0, -1.0])
    want_vals, want_bar = vjp(1.0, 2.0, 1.0, -1.0)
    np.testing.assert_array_equal(vals, want_vals)
    np.testing.assert_array_equal(bar, want_bar)

    J = compile_jacobian("x*y; sin(x) - y; x", backend=backend)
    vals, jac = J.at([1.0, 2.0])
    np.testing.assert_array_equal(jac, J(1.0, 2.0)[1])
    assert vals.shape == (3,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_variables_and_data_inputs(backend):
    n = 100
    expr = " + ".join(f"a*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(1, n))
    wrt = [f"x{i}" for i in range(1, n + 1)]
    h = compile_hvp(expr, wrt=wrt, backend=backend)
    rng = np.random.default_rng(0)
    x, v = rng.uniform(-1, 1, n), rng.normal(size=n)
    value, grad, hv = h.at(x, v, a=100.0)
    # the gradient by hand: the chained Rosenbrock function
    want = np.zeros(n)
    want[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    want[1:] += 200 * (x[1:] - x[:-1] ** 2)
    np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-12)
    e = 1e-6
    fd = (h.at(x + e * v, v, a=100.0)[1] - h.at(x - e * v, v, a=100.0)[1]) / (2 * e)
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, error, message", [
    (lambda g: g.at([1.0]), ValueError, r"x must hold the 2 variables x, y; got shape \(1,\)"),
    (lambda g: g.at(np.ones((2, 2))), ValueError, "must hold the 2 variables"),
    (lambda g: g.at(["a", "b"]), TypeError, "must be an array of numbers"),
    (lambda g: g.at([1.0, 2.0], [1.0, 1.0]), TypeError, "a grad takes no second vector"),
])
def test_bad_vectors(call, error, message):
    with pytest.raises(error, match=message):
        call(compile_grad("x * y"))


def test_data_inputs_are_named_and_checked():
    g = compile_grad("x * y + c", wrt="x, y")
    assert g.at([2.0, 3.0], c=1.0) == (7.0, pytest.approx(np.array([3.0, 2.0])))
    with pytest.raises(TypeError, match="missing c"):
        g.at([2.0, 3.0])
    with pytest.raises(TypeError, match="unexpected d"):
        g.at([2.0, 3.0], c=1.0, d=2.0)
    with pytest.raises(TypeError, match="must be one number"):
        g.at([2.0, 3.0], c=[1.0, 2.0])
    with pytest.raises(TypeError, match="missing the direction v"):
        compile_hvp("x * y").at([1.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_and_named_like_the_parameters(backend):
    """A strided x (cffi refuses it as a buffer) is copied, not misread; a data input
    may be called `x` or `seed`, as at()'s own arguments are positional only."""
    g = compile_grad("x * y + seed", wrt="x, y", backend=backend)
    wide = np.array([1.5, -7.0, 2.0, -7.0])
    for _ in range(2):  # the first call and the later ones (g.at is then the packed call)
        value, grad = g.at(wide[::2], seed=0.25)
        assert value == 3.25 and grad.tolist() == [2.0, 1.5]
    h = compile_grad("a * x", wrt="a", backend=backend)
    assert h.at(np.array([2.0]), x=3.0)[1].tolist() == [3.0]


def test_numpy_gradient_at_goes_straight_to_the_point_run():
    # after the first call g.at is packed._numpy_gradient_at's function: x's numbers to the
    # one-point run, no buffers; the same numbers as the call, NumPy's where math refuses
    import warnings
    g = compile_grad("log(x) * y + sin(y)")
    first = g.at(np.array([2.0, 3.0]))
    assert g.at.__qualname__.startswith("_numpy_gradient_at")
    for x in (np.array([2.0, 3.0]), np.array([2.0, 9.0, 3.0])[::2], np.array([0.0, 3.0]), np.array([-1.0, 0.5])):
        value, grad = g.at(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = g(np.array([x[0]]), np.array([x[1]]))
        assert isinstance(value, float) and type(grad) is np.ndarray and grad.shape == (2,)
        np.testing.assert_array_equal([value, *grad], [want[0][0], want[1][0][0], want[1][1][0]])
    assert g.at(np.array([2.0, 3.0]))[0] == first[0]
    a, b = g.at(np.array([2.0, 3.0]))[1], g.at(np.array([2.0, 3.0]))[1]
    assert a is not b and np.shares_memory(a, b) is False
    with pytest.raises(ValueError, match="must hold the 2 variables"):
        g.at(np.ones(3))
