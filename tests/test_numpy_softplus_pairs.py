"""The NumPy backend's code for softplus(u) and softplus(-u) of one u (the binary
cross-entropy's log(sigmoid(z)) and log(1 - sigmoid(z)), rewritten) and for
sigmoid(-u) with its derivative (1 - sigmoid(x) rewritten): one exp, one log1p, the
rows of one call (runtime_exps.softplus_pair_e, neg_softplus_pair_e), and no array -u
(backends/numpy_share_exps._both_signs and _share_exps' choice of the exp's argument)."""

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler import runtime as R
from exprcompiler.runtime_blocks import _BLOCK

from test_numpy_render import EDGES, _loops
from test_numpy_render_pairs import _cases, _points, _same_bits as _same_bits_all


def _same_bits(a, b):
    """The same bits but for a NaN's sign, which no operation here defines."""
    a, b = np.asarray(a), np.asarray(b)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    _same_bits_all(np.where(np.isnan(a), 0.0, a).astype(a.dtype), np.where(np.isnan(b), 0.0, b).astype(b.dtype))


BCE = "-(0.3*log(sigmoid(z)) + 0.7*log(1 - sigmoid(z)))"


@pytest.mark.parametrize("simd", [True, False])
def test_softplus_pairs_give_softplus_e_bits(simd, monkeypatch):
    """softplus_pair_e's rows are softplus_e(x, e)'s and softplus_e(-x, e)'s bits, and
    neg_softplus_pair_e's their negations (signed zeros too; a NaN's sign aside), at
    the edges, in blocks, for one point and for float32."""
    _loops(monkeypatch, simd)
    x = _points(np.random.default_rng(7))
    x[:32] = np.concatenate([EDGES, [746.0, -746.0, 800.0, -800.0, 1e-300, -1e-300, 36.0, -37.0]] * 2)
    for a in _cases(x):
        e = R.exp_neg_abs(a)
        plus, minus = R.softplus_pair_e(a, e)
        _same_bits(plus, R.softplus_e(a, e))
        _same_bits(minus, R.softplus_e(-a, e))
        neg_plus, neg_minus = R.neg_softplus_pair_e(a, e)
        _same_bits(neg_plus, -R.softplus_e(a, e))
        _same_bits(neg_minus, -R.softplus_e(-a, e))


def test_sigmoid_pair_at_u_differs_only_where_exp_overflowed():
    """sigmoid_pair_of_exp_at(u, exp(u)): sigmoid_pair_of_exp's bits, but sigmoid(-u) is
    exp(-u) where exp(u) is inf (sigmoid(-u)'s own call's value there: subnormal or 0)."""
    x = _points(np.random.default_rng(11))
    x[:10] = [709.0, 709.8, 720.0, 745.0, 746.0, 800.0, np.inf, -np.inf, np.nan, 88.8]
    for a in _cases(x):
        E = R.exp_quiet(a)
        s, w = R.sigmoid_pair_of_exp_at(a, E)
        s0, w0 = R.sigmoid_pair_of_exp(E)
        _same_bits(s, s0)
        big = np.isposinf(E)
        _same_bits(np.where(big, 0.0, w).astype(w.dtype), w0)
        _same_bits(w[big], R.sigmoid(-a[big]))
        assert a.size == 1 or (w[big] > 0).any()   # (subnormal numbers, where sigmoid_pair_of_exp gives 0)


def _source(text):
    g = compile_grad(text, stable=True)
    return g, str(g.source).split("def f_grad")[1]


def test_cross_entropy_code_takes_one_exp_and_one_log1p():
    g, body = _source(BCE)
    assert "p1 = neg_softplus_sigmoid_rows(z)" in body and "exp_neg_abs" not in body   # e inside the one call
    assert "softplus(" not in body and "exp_quiet" not in body and "_pair" not in body
    assert "= -z" not in body and body.count(" = -") == 1   # the value's last negation only


def _bce_reference(z):
    """Value and derivative at z, 40 digits (0.3·softplus(-z) + 0.7·softplus(z))."""
    with mpmath.workdps(40):
        z = mpmath.mpf(z)
        value = 0.3 * mpmath.log1p(mpmath.exp(-z)) + 0.7 * mpmath.log1p(mpmath.exp(z))
        grad = 0.7 / (1 + mpmath.exp(-z)) - 0.3 / (1 + mpmath.exp(z))
        return float(value), float(grad)


def test_cross_entropy_values_and_gradient_against_mpmath():
    """Where the naive form is accurate and where it is not (|z| from 30), in blocks too."""
    z = np.concatenate([np.linspace(-5, -2, 7), np.linspace(0, 5, 7), [-800.0, -100.0, -31.0, 31.0, 100.0, 800.0]])
    big = np.resize(z, 2 * _BLOCK + 5)
    g = compile_grad(BCE, stable=True)
    for points in (z, big):
        v, (d,) = g(points)
        for k in range(len(z)):
            rv, rd = _bce_reference(points[k])
            assert abs(v[k] - rv) <= 1e-15 * abs(rv)
            assert abs(d[k] - rd) <= 1e-15 * abs(rd)
    v, (d,) = g(z)
    naive_v, (naive_d,) = compile_grad(BCE, stable=False)(z[:14])
    np.testing.assert_allclose(v[:14], naive_v, rtol=1e-14)
    np.testing.assert_allclose(d[:14], naive_d, rtol=1e-13)


def test_softplus_read_elsewhere_keeps_the_plain_pair():
    """A softplus that its derivative reads too (a product's rule) is a row of
    softplus_pair_e, not negated; values and gradient against the forward mode."""
    text = "log(sigmoid(z)) * log(1 - sigmoid(z))"
    g, body = _source(text)
    assert "p1 = softplus_sigmoid_rows(z)" in body and "neg_softplus" not in body
    z = np.array([-40.0, -3.0, -0.5, 0.0, 0.25, 2.0, 35.0])
    v, (d,) = g(z)
    fv, (fd,) = compile_grad(text, stable=True, mode="forward")(z)
    np.testing.assert_array_equal(v, fv)
    np.testing.assert_allclose(d, fd, rtol=1e-15)
    with mpmath.workdps(40):
        for k, zk in enumerate(z):
            f = lambda t: mpmath.log(1 / (1 + mpmath.exp(-t))) * mpmath.log(1 - 1 / (1 + mpmath.exp(-t)))  # noqa: E731
            assert abs(v[k] - float(f(zk))) <= 1e-15 * abs(float(f(zk))) + 1e-300
            assert abs(d[k] - float(mpmath.diff(f, zk))) <= 1e-14 * abs(float(mpmath.diff(f, zk)))


def test_softplus_of_both_signs_summed():
    g, body = _source("softplus(z) + softplus(-z)")
    assert "p1 = softplus_sigmoid_rows(z)" in body and "= -z" not in body
    z = np.array([-800.0, -20.0, -1.0, -0.0, 0.0, 1.0, 20.0, 800.0, np.inf, -np.inf, np.nan])
    v, (d,) = g(z)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(v, np.logaddexp(0, z) + np.logaddexp(0, -z))
    np.testing.assert_allclose(d[:8], np.tanh(z[:8] / 2), rtol=2e-16, atol=0)
    assert np.isnan(d[-1]) and np.isnan(v[-1]) and list(d[-3:-1]) == [1.0, -1.0]


def test_one_minus_sigmoid_takes_the_exp_of_x_itself():
    """sigmoid(-x) and its derivative's sigmoid(x) from exp(x): no line -x; the value
    within an ulp of 1/(1 + exp(x)) and the gradient of -sigmoid(x)·sigmoid(-x) to 2e-16,
    over the range where the naive form fails ([1, 700]) and beyond."""
    g, body = _source("1 - sigmoid(x)")
    assert "p1 = sigmoid_neg_rows(x)" in body and "= -x" not in body
    x = np.concatenate([np.linspace(-700, 700, 2801), [-800.0, 800.0, 0.0, -0.0],
                        [-744.0, -720.0, -710.0, 710.0, 720.0, 744.0]])   # exp(x) subnormal or inf
    v, (d,) = g(x)
    with mpmath.workdps(40):
        for k, xk in enumerate(x):
            ex = mpmath.exp(mpmath.mpf(xk))
            rv, rd = float(1 / (1 + ex)), float(-ex / (1 + ex) ** 2)   # sigmoid(-x), its derivative
            for got, want, ulps in ((v[k], rv, 2.3e-16), (d[k], rd, 4.5e-16)):
                if abs(want) < np.finfo(float).tiny:   # a subnormal number (or 0): within 4 of its steps
                    assert abs(got - want) <= 2.0 ** -1074 * 4, xk
                else:
                    assert abs(got - want) <= ulps * abs(want), xk
    assert list(v[2801:2803]) == [1.0, 0.0] and list(d[2801:2803]) == [0.0, 0.0]   # x = -800, 800
