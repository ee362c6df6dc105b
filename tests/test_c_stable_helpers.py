"""The C backend's own log1p and the division-free stable forms (c_special's xc_log1p,
xc_log1p_unit, xc_sqrt1pm1): libmvec's log instead of its slower log1p, and no
division beyond the gradient's. Their values against mpmath over wide ranges and at
the IEEE edges (signed zeros, -1, infinities, NaN), in float64 and float32."""

import math
import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends import c_build

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)


def _code(source: str) -> str:
    return re.sub(r"/\*.*?\*/", "", source, flags=re.S)


def _helper(source: str, name: str) -> str:
    return re.search(rf"static inline (?:XC_ALWAYS )?(?:double|float) {name}\(.*?\n}}", _code(source), re.S).group(0)


def _worst_ulps(f, xs, ref, dtype) -> float:
    """The largest error of f at xs against mpmath's `ref`, in the dtype's epsilons
    (points whose exact value is 0, infinite or below the normal range skipped)."""
    with np.errstate(all="ignore"):
        got = np.asarray(f(xs.astype(dtype)), dtype=np.float64)
    info, worst = np.finfo(dtype), 0.0
    with mpmath.workdps(60):
        for x, y in zip(xs.astype(dtype).tolist(), got.tolist()):
            try:
                r = ref(mpmath.mpf(x))
            except ZeroDivisionError:   # a pole (the gradient of sqrt(1 + x) at -1)
                continue
            if r == 0 or not mpmath.isfinite(r) or abs(r) < info.tiny:
                continue
            worst = max(worst, float(abs((y - r) / r)) / float(info.eps))
    return worst


_RNG = np.random.default_rng(7)
_WIDE = np.concatenate([10.0 ** _RNG.uniform(-300, 300, 300), -_RNG.uniform(0, 1, 200),
                        -1 + 10.0 ** _RNG.uniform(-15, 0, 100), _RNG.choice([-1, 1], 200) * 10.0 ** _RNG.uniform(-20, 1, 200),
                        [2.0 ** -53, -2.0 ** -54, 2.0 ** -52, 2.0 ** 53, 2.0 ** 53 + 2, 1e300, -0.5, 3.0]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log1p_from_log_against_mpmath(dtype):
    g = compile_grad("log1p(x)", backend="c", dtype=dtype)
    assert re.search(r"\blog1p\(", _code(g.source)) is None and "xc_log1p(x)" in g.source
    xs = _WIDE if dtype == "float64" else _WIDE[np.abs(_WIDE) < 1e30]
    f = compile_expr("log1p(x)", backend="c", dtype=dtype)
    assert _worst_ulps(f, xs, mpmath.log1p, dtype) <= 3.0
    with np.errstate(all="ignore"):
        v, (d,) = g(xs.astype(dtype))
        np.testing.assert_allclose(d, 1 / (1 + xs.astype(dtype)), rtol=2 * np.finfo(dtype).eps)


def test_log1p_at_the_edges():
    f = compile_expr("log1p(x)", backend="c")
    x = np.array([-0.0, 0.0, -1.0, np.inf, -np.inf, np.nan, -1.5, 1e-310, -1e-310, -1 + 2.0 ** -53])
    with np.errstate(all="ignore"):
        v = f(x)
        want = np.log1p(x)
    np.testing.assert_array_equal(v[:9], want[:9])
    assert math.copysign(1, v[0]) == -1 and math.copysign(1, v[1]) == 1   # log1p(-0.0) is -0.0
    assert v[9] == pytest.approx(float(mpmath.log1p(mpmath.mpf(x[9]))), rel=4e-16)
    assert compile_expr("log1p(x)", backend="c")(-0.0) == 0.0   # the one-point code: same helper


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softplus_without_libm_log1p_against_mpmath(dtype):
    g = compile_grad("log(1 + exp(x))", backend="c", stable=True, dtype=dtype)
    code = _code(g.source)
    assert re.search(r"\blog1p\(", code) is None and "/" not in _helper(g.source, "xc_softplus")
    xs = np.concatenate([_RNG.uniform(-700 if dtype == "float64" else -80, 40, 300), _RNG.uniform(-5, 5, 300),
                         _RNG.choice([-1, 1], 200) * 10.0 ** _RNG.uniform(-20, 1.5, 200)])
    f = compile_expr("log(1 + exp(x))", backend="c", stable=True, dtype=dtype)
    assert _worst_ulps(f, xs, lambda x: mpmath.log1p(mpmath.exp(x)), dtype) <= 4.0
    with np.errstate(all="ignore"):
        _, (d,) = g(xs.astype(dtype))
    assert _worst_ulps(lambda x: d, xs, lambda x: 1 / (1 + mpmath.exp(-x)), dtype) <= 4.0


def test_logaddexp_without_libm_log1p_against_mpmath():
    f = compile_expr("log(exp(a) + exp(b))", backend="c", stable=True)
    assert re.search(r"\blog1p\(", _code(f.source)) is None
    a, b = _RNG.uniform(-50, 50, 400), _RNG.uniform(-50, 50, 400)
    got = f(a, b)
    with mpmath.workdps(60):
        for x, y, v in zip(a.tolist(), b.tolist(), got.tolist()):
            r = mpmath.log(mpmath.exp(mpmath.mpf(x)) + mpmath.exp(mpmath.mpf(y)))
            assert abs((v - r) / r) <= 4 * 2.2e-16 or abs(v - r) <= 2.2e-16, (x, y, v)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sqrt1pm1_without_division_against_mpmath(dtype):
    g = compile_grad("sqrt(1 + x) - 1", backend="c", stable=True, dtype=dtype)
    assert "/" not in _helper(g.source, "xc_sqrt1pm1")
    xs = _WIDE if dtype == "float64" else _WIDE[np.abs(_WIDE) < 1e30]
    f = compile_expr("sqrt(1 + x) - 1", backend="c", stable=True, dtype=dtype)
    assert _worst_ulps(f, xs, lambda x: x / (mpmath.sqrt(1 + x) + 1), dtype) <= 3.0
    xs = xs[xs > -0.5]   # nearer -1 the rule's 0.5 / (value + 1) cancels, in either form
    with np.errstate(all="ignore"):
        _, (d,) = g(xs.astype(dtype))
    assert _worst_ulps(lambda x: d, xs, lambda x: 1 / (2 * mpmath.sqrt(1 + x)), dtype) <= 3.0


def test_sqrt1pm1_at_the_edges():
    f = compile_expr("sqrt(1 + x) - 1", backend="c", stable=True)
    x = np.array([-0.0, 0.0, -1.0, np.inf, -np.inf, np.nan, -1.5, 1e-310, 3.0, 1e300])
    with np.errstate(all="ignore"):
        v = f(x)
    assert math.copysign(1, v[0]) == -1 and math.copysign(1, v[1]) == 1
    assert v[2] == -1.0 and v[3] == np.inf and np.isnan(v[4:7]).all()
    assert v[7] == 5e-311 and v[8] == 1.0 and v[9] == pytest.approx(1e150, rel=2.3e-16)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_from_expm1_and_sech2_against_mpmath(dtype):
    g = compile_grad("tanh(x)", backend="c", stable=True, dtype=dtype)   # value tanh, gradient sech2
    assert re.search(r"\btanh\(", _code(g.source)) is None and "xc_sech2(x)" in g.source
    # the two helpers' divisor is the same expression, so a kernel with both divides once
    divisor = re.compile(r"= 1\.0f? / \(2\.0f? \+ m\)")
    assert divisor.search(_helper(g.source, "xc_tanh")) and divisor.search(_helper(g.source, "xc_sech2"))
    xs = np.concatenate([_RNG.uniform(-20, 20, 400), _RNG.choice([-1, 1], 400) * 10.0 ** _RNG.uniform(-30, 1.3, 400)])
    with np.errstate(all="ignore"):
        v, (d,) = g(xs.astype(dtype))
    assert _worst_ulps(lambda x: v, xs, mpmath.tanh, dtype) <= 2.5
    assert _worst_ulps(lambda x: d, xs, lambda x: 1 / mpmath.cosh(x) ** 2, dtype) <= 4.0


def test_tanh_at_the_edges():
    f = compile_expr("tanh(x)", backend="c")
    x = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-300, 20.0, -400.0])
    v = f(x)
    np.testing.assert_array_equal(v, np.tanh(x))
    assert math.copysign(1, v[0]) == -1 and math.copysign(1, v[1]) == 1
    s = compile_grad("tanh(x)", backend="c", stable=True)(np.array([0.0, 400.0, -np.inf, 20.0]))[1][0]
    assert s[0] == 1.0 and s[1] == pytest.approx(4 * math.exp(-800.0), rel=1e-15) and s[2] == 0.0
    assert s[3] == pytest.approx(float(1 / mpmath.cosh(20) ** 2), rel=4.5e-16)
