"""The op table's own derivatives of logsumexp and softmax are the stable ones
(tensor_rules: logsumexp' = softmax, softmax's J·seed with the seed's value at the
maximum taken out), so stable=False gets them and no stability rule has to fire:
checked against mpmath, finite differences, SymPy and the exact Hessian."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy

from exprcompiler import check_grad, compile_grad, compile_hessian, compile_jvp

W = np.array([0.3, -1.0, 2.0, 0.5])
POINTS = ([800.0, 799.0, -5.0, 790.0],      # exp overflows: exp(x)/sum(exp(x)) is NaN here
          [1e4, 9999.0, 9998.5, 9990.0],    # exp(x - logsumexp(x)): 1e-12 off (an ulp of 1e4)
          [600.0, 0.1, 597.5, 2.0],
          [50.0, 1.0, -3.0, 0.5],           # one dominant element: s·(g - sum(s·g)) cancels
          [-1000.0, -1001.0, -1200.0, -999.5],
          [0.1, -0.2, 0.3, 0.0])


def _exact(x):
    """softmax(x), and the gradient of sum(W·softmax(x)), at 60 digits."""
    with mpmath.workdps(60):
        e = [mpmath.exp(mpmath.mpf(float(t))) for t in x]
        s = [t / sum(e) for t in e]
        value = sum(mpmath.mpf(float(w)) * sk for w, sk in zip(W, s))
        grad = [sk * (mpmath.mpf(float(w)) - value) for sk, w in zip(s, W)]
        return np.array([float(t) for t in s]), np.array([float(t) for t in grad])


def _worst(got, want):
    """Relative error where the exact value is a normal float; elsewhere (underflow) the
    absolute error, which must then be below the smallest normal too."""
    normal = np.abs(want) >= 2.2250738585072014e-308
    rel = np.abs(got - want)[normal] / np.abs(want[normal])
    return max(float(np.max(rel)), float(np.max(np.abs(got - want)[~normal], initial=0.0)) / 2.2e-308)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_derivatives_within_1e13_without_the_stability_pass(backend):
    lse = compile_grad("logsumexp(x)", shapes={"x": (4,)}, backend=backend)
    sm = compile_grad("sum(w*softmax(x))", shapes={"x": (4,), "w": (4,)}, wrt=["x"], backend=backend)
    jvp = compile_jvp("softmax(x)", shapes={"x": (4,)}, backend=backend)
    assert lse.rewrites == () and sm.rewrites == ()
    for x in map(np.array, POINTS):
        s, grad = _exact(x)
        assert _worst(lse(x)[1][0], s) <= 1e-13
        assert _worst(sm(x=x, w=W)[1][0], grad) <= 1e-13
        # forward mode: J·W is the same vector (J is symmetric)
        assert _worst(np.asarray(jvp(x, W)[1]), grad) <= 1e-13


def test_finite_differences_over_one_and_several_axes():
    X = np.array([[0.3, -1.2, 2.0], [1.5, 0.2, -0.7]])
    W2 = X[::-1] * 3
    for expr in ("logsumexp(X, axis=1)[0] + 2*logsumexp(X, axis=1)[1]", "logsumexp(X)",
                 "sum(W*softmax(X, axis=0))", "sum(W*softmax(X))", "logsumexp(X, axis=0, keepdims=True)[0, 2]"):
        shapes = {"X": (2, 3), "W": (2, 3)} if "W" in expr else {"X": (2, 3)}
        point = {"X": X, "W": W2} if "W" in expr else {"X": X}
        assert check_grad(expr, point, wrt=["X"], shapes=shapes) < 1e-8, expr


def test_gradient_matches_sympy():
    a, b, c = sympy.symbols("a b c")
    f = sympy.log(sympy.exp(a) + sympy.exp(b) + sympy.exp(c))
    at = {a: 0.7, b: -1.3, c: 2.1}
    g = compile_grad("logsumexp(x) + sum(w*softmax(x))", shapes={"x": (3,), "w": (3,)}, wrt=["x"])
    w = np.array([0.5, -2.0, 1.0])
    soft = [sympy.exp(t) / sympy.exp(f) for t in (a, b, c)]
    total = f + sum(wk * sk for wk, sk in zip(w, soft))
    want = [float(sympy.diff(total, t).evalf(30, subs=at)) for t in (a, b, c)]
    np.testing.assert_allclose(g(x=np.array([0.7, -1.3, 2.1]), w=w)[1][0], want, rtol=1e-14)


def test_hessian_of_logsumexp_is_diag_s_minus_s_st():
    x = np.array([800.0, 799.0, -5.0, 790.0])
    h = compile_hessian("logsumexp(x)", shapes={"x": (4,)})(x)[2]
    s = _exact(x)[0]
    np.testing.assert_allclose(h, np.diag(s) - np.outer(s, s), rtol=1e-13, atol=1e-300)
