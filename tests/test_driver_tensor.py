"""The driver on functions of tensors: minimize and the SciPy adapters over several
named tensors packed into one float64 vector (driver/objective.py)."""

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.driver import minimize, scipy_fun

LSQ = "0.5 * sum((X @ w + b - y)**2)"
SHAPES = {"X": ("n", 4), "w": (4,), "b": (), "y": ("n",)}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(50, 4)), rng.normal(size=50)


def _lstsq(X, y):
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(y))], y, rcond=None)[0]
    return coef[:4], coef[4]


@pytest.mark.parametrize("method", ["lbfgs", "newton", "newton-cg", "gd"])
def test_minimize_over_a_vector_and_a_scalar_reaches_least_squares(method):
    X, y = _data()
    options = {"lr": 0.01, "maxiter": 5000} if method == "gd" else {}
    r = minimize(LSQ, {"w": np.zeros(4), "b": 0.0}, method, data={"X": X, "y": y}, shapes=SHAPES,
                 gtol=1e-9, **options)
    w, b = _lstsq(X, y)
    assert r.converged, r.message
    assert r.x.shape == (5,)
    np.testing.assert_allclose(r.x_named["w"], w, atol=1e-8)
    assert r.x_named["b"] == pytest.approx(b, abs=1e-8)
    assert "w: array (4,)" in str(r)


def test_minimize_checks_tensor_starts():
    X, y = _data()
    with pytest.raises(ValueError, match="input .w.: dimension 0 has size 3, declared 4"):
        minimize(LSQ, {"w": np.zeros(3), "b": 0.0}, data={"X": X, "y": y}, shapes=SHAPES)


LOGISTIC = "sum(softplus(-y * (X @ W[:, 0] + X @ W[:, 1] + c)))"


def test_scipy_bfgs_over_named_tensors_takes_the_same_iterations_as_a_hand_written_gradient():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = np.where(X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=80) > 0, 1.0, -1.0)
    shapes = {"X": ("n", 3), "W": (3, 2), "c": (), "y": ("n",)}
    g = compile_grad(LOGISTIC, wrt=["W", "c"], shapes=shapes)
    fun, hessp = g.scipy(X=X, y=y)

    def hand(x):
        W, c = x[:6].reshape(3, 2), x[6]
        m = y * (X @ W[:, 0] + X @ W[:, 1] + c)
        s = -y / (1 + np.exp(m))
        gw = X.T @ s
        return np.sum(np.logaddexp(0, -m)), np.concatenate([np.c_[gw, gw].reshape(-1), [s.sum()]])

    x0 = fun.pack({"W": np.full((3, 2), 0.1), "c": 0.0})
    ours = optimize.minimize(fun, x0, jac=True, method="BFGS")
    ref = optimize.minimize(hand, x0, jac=True, method="BFGS")
    assert ours.success and ours.nit == ref.nit
    np.testing.assert_allclose(ours.x, ref.x, rtol=1e-8, atol=1e-10)
    assert fun.unpack(ours.x)["W"].shape == (3, 2)
    cg = optimize.minimize(fun, x0, jac=True, hessp=hessp, method="Newton-CG")
    assert cg.success
    np.testing.assert_allclose(fun(cg.x)[1], 0.0, atol=1e-4)
