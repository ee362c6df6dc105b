"""SciPy interoperability (exprcompiler/driver/scipy_interop.py): scipy.optimize.minimize
with the generated (f, ∇f), ∇²f·p and ∇²f takes exactly the path it takes with exact
hand-written derivatives. Skipped when SciPy is not installed."""

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hvp
from exprcompiler.driver import scipy_fun, scipy_hess, scipy_hessp

optimize = pytest.importorskip("scipy.optimize")

ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"
X0 = np.array([-1.2, 1.0])


def rosen_fun(w):
    x, y = w
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x ** 2),
                                                             200 * (y - x ** 2)])


def rosen_hess(w):
    x, y = w
    return np.array([[2 - 400 * (y - x ** 2) + 800 * x ** 2, -400 * x], [-400 * x, 200.0]])


def rosen_hessp(w, p):
    return rosen_hess(w) @ p


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG"])
def test_scipy_jac_true_takes_the_same_iterations_as_the_exact_gradient(method):
    ours = optimize.minimize(scipy_fun(ROSENBROCK), X0, jac=True, method=method)
    exact = optimize.minimize(rosen_fun, X0, jac=True, method=method)
    assert ours.success and exact.success
    assert (ours.nit, ours.nfev) == (exact.nit, exact.nfev)
    np.testing.assert_allclose(ours.x, exact.x, rtol=1e-9)
    np.testing.assert_allclose(ours.x, [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-ncg", "trust-krylov"])
def test_scipy_hessp_takes_the_same_iterations_as_the_exact_hessian(method):
    ours = optimize.minimize(scipy_fun(ROSENBROCK), X0, jac=True, hessp=scipy_hessp(ROSENBROCK), method=method)
    exact = optimize.minimize(rosen_fun, X0, jac=True, hessp=rosen_hessp, method=method)
    assert ours.success and exact.success
    assert ours.nit == exact.nit
    np.testing.assert_allclose(ours.x, exact.x, rtol=1e-7)


def test_scipy_hess():
    ours = optimize.minimize(scipy_fun(ROSENBROCK), X0, jac=True, hess=scipy_hess(ROSENBROCK), method="trust-exact")
    exact = optimize.minimize(rosen_fun, X0, jac=True, hess=rosen_hess, method="trust-exact")
    assert ours.success and ours.nit == exact.nit


def test_named_start_data_and_compiled_objects():
    fun = scipy_fun(compile_grad("a*(x - b)**2 + (y - x)**2"), data={"a": 2.0, "b": 3.0})
    assert fun.wrt == ("x", "y")
    x0 = fun.pack({"y": 0.0, "x": 1.0})
    np.testing.assert_array_equal(x0, [1.0, 0.0])
    r = optimize.minimize(fun, x0, jac=True, method="BFGS")
    assert fun.unpack(r.x) == pytest.approx({"x": 3.0, "y": 3.0}, abs=1e-5)
    assert fun.calls == r.nfev
    hvp = compile_hvp(ROSENBROCK)
    hessp = scipy_hessp(hvp)
    assert hessp.objective._second is hvp  # the compiled HVP is used as it is
    np.testing.assert_allclose(hessp(X0, np.array([1.0, 2.0])), rosen_hessp(X0, np.array([1.0, 2.0])))
