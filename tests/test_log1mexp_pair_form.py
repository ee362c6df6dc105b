"""runtime.log1mexp_pair, the value and the derivative's expm1(0.0 - x) of log(1 - exp(x))
in NumPy gradients, where NumPy's expm1 and log1p loops are SIMD with no branch: t =
expm1(-x) and log(1 - e^x) = -log1p(1/t) (elsewhere log1mexp's branches). Checked against
mpmath in ulps on both paths, at the edges (NaN, ±inf, ±0, x > 0, subnormal results, 1/t
overflowing), in float32, with out= and 0-d arrays; each point's bits its own in any
block, and a block of points on both sides of -log 2 redoes none."""

import math
import warnings

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, runtime, runtime_blocks, ufunc_loops

LN2 = math.log(2.0)
RNG = np.random.default_rng(18)


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


def exact_value(x: float) -> float:
    with mpmath.workdps(60):
        x = mpmath.mpf(float(x))
        return float(mpmath.log1p(-mpmath.exp(x)) if x < -1 else mpmath.log(-mpmath.expm1(x)))


def exact_t(x: float) -> float:
    with mpmath.workdps(60):
        return float(mpmath.expm1(-mpmath.mpf(float(x))))


def ulps(got, want) -> float:
    """The largest difference, in ulps of `want` in its own precision."""
    want = np.asarray(want)
    spacing = np.spacing(np.abs(want)).astype(np.float64)
    diff = np.abs(np.asarray(got, dtype=np.float64) - want.astype(np.float64))
    return float(np.max(diff / spacing)) if want.size else 0.0


@pytest.fixture(params=[True, False], ids=["simd", "scalar"])
def simd(request, monkeypatch):
    """Both machines' paths: np.expm1 and np.log1p SIMD (with their guards), or not."""
    for name in ("log1p", "expm1"):
        monkeypatch.setitem(ufunc_loops.SIMD, name, request.param)
    return request.param


def _spread():
    """Points over every band of x < 0 whose value and t are normal floats."""
    return np.concatenate([RNG.uniform(-708.0, -37.0, 150), RNG.uniform(-40.0, -3.0, 200),
                           RNG.uniform(-3.0, -0.5, 300), RNG.uniform(-1.0, -0.25, 200),
                           RNG.uniform(-0.75, -0.65, 200), -10.0 ** RNG.uniform(-300, -0.5, 200),
                           [-LN2, np.nextafter(-LN2, 0.0), np.nextafter(-LN2, -1.0), -37.0, -708.0]])


def test_value_and_slope_against_mpmath(simd):
    x = _spread()
    value, t = runtime.log1mexp_pair(x)
    assert ulps(value, [exact_value(v) for v in x]) <= (2.0 if simd else 3.0)
    assert ulps(t, [exact_t(v) for v in x]) <= 1.0
    # the derivative the generated code forms, -1/t
    slope = [float(-1 / mpmath.expm1(-mpmath.mpf(float(v)))) for v in x]
    assert ulps(-1.0 / t, slope) <= 2.0


def test_the_value_is_minus_log1p_of_one_over_t_with_no_branch(monkeypatch):
    """On NumPy's SIMD loops the value is -log1p(1/t) itself at every point of a block of
    both sides of -log 2 (the two branches of log1mexp give other bits at some), and no
    point is redone (no gather, no scatter)."""
    monkeypatch.setitem(ufunc_loops.SIMD, "log1p", True)
    monkeypatch.setitem(ufunc_loops.SIMD, "expm1", True)
    redone = []
    monkeypatch.setattr(runtime_blocks, "_scatter", lambda *a: redone.append(a))
    monkeypatch.setattr(np, "flatnonzero", lambda *a: redone.append(a))
    x = RNG.uniform(-3.0, -0.5, 20_000)
    value, t = runtime.log1mexp_pair(x)
    assert not redone
    assert (bits(value) == bits(-np.log1p(1.0 / t))).all()
    assert (bits(t) == bits(np.expm1(0.0 - x))).all()


def test_each_point_its_own_bits_in_any_block(simd):
    points = np.array([-3.0, -0.5, -LN2, np.nextafter(-LN2, 0.0), -36.9, -37.5, -300.0, -709.0, -710.0,
                       -745.0, -1e-20, -2.0 ** -60, -1e-300, -1e-310, -5e-324, 0.0, -0.0, 1e-300, 0.5,
                       40.0, np.nan, -np.inf, np.inf])
    companions = [np.linspace(-5.0, -1.0, 50), np.linspace(-0.6, -0.01, 50), np.linspace(-3.0, -0.5, 50),
                  np.r_[np.linspace(-5.0, -0.1, 20), np.nan], np.r_[np.linspace(-5.0, -0.1, 20), -800.0]]
    with np.errstate(all="ignore"):
        alone = [np.array(runtime.log1mexp_pair(np.array([p]))).ravel() for p in points]
        for others in companions:
            block = np.r_[others, points, others[::-1]]
            value, t = runtime.log1mexp_pair(block)
            got = np.stack([value, t])[:, len(others):len(others) + len(points)].T
            assert (bits(got) == bits(np.array(alone))).all()
        big = np.tile(np.r_[points, RNG.uniform(-3.0, -0.5, 200)], 700)   # run by blocks
        value, t = runtime.log1mexp_pair(big)
    at = np.arange(0, big.size, len(points) + 200)
    for k in range(len(points)):
        assert (bits(value[at + k]) == bits(alone[k][0])).all() and (bits(t[at + k]) == bits(alone[k][1])).all()


def test_edges(simd):
    x = np.array([-np.inf, -800.0, -745.5, -745.0, -709.9, -709.0, -1e-300, -1e-310, -5e-324, -0.0, 0.0,
                  5e-324, 1e-300, 1.0, 40.0, np.inf, np.nan])
    with np.errstate(all="ignore"):
        value, t = runtime.log1mexp_pair(x)
        want = runtime.log1mexp(x)
    assert math.copysign(1.0, value[0]) == -1.0 and value[0] == 0.0   # log1p(-0.0): -0.0
    assert np.array_equal(value[:3], [0.0, 0.0, 0.0]) and (np.signbit(value[:3])).all()
    # e^x subnormal: -exp(x) where t overflows, -1/t below it: within a subnormal's spacing
    assert abs(value[3] - -np.exp(-745.0)) <= 5e-324 and value[4] == -np.exp(-709.9)
    assert abs(value[5] - exact_value(-709.0)) <= 5e-324
    # 1/t overflows below about 5.6e-309: log(t) = log(-x)
    assert value[6] == np.log(1e-300) and value[7] == np.log(1e-310) and value[8] == np.log(5e-324)
    assert np.isneginf(value[9:11]).all()
    assert np.isnan(value[11:]).all()
    np.testing.assert_array_equal(value, want)   # NaN at NaN and above 0, as log1mexp's
    assert (bits(t[9:11]) == bits(0.0)).all() and np.isinf(t[:5]).all() and t[13] == np.expm1(-1.0)


def test_float32_out_zero_d_and_empty(simd):
    x32 = np.r_[RNG.uniform(-80.0, -1e-6, 500), -1e-40, -90.0, 0.0].astype(np.float32)
    with np.errstate(all="ignore"):
        value, t = runtime.log1mexp_pair(x32)
    assert value.dtype == t.dtype == np.float32
    want = np.array([exact_value(v) for v in x32[:-3]], dtype=np.float32)
    assert ulps(value[:-3], want) <= 3.0
    assert np.isneginf(value[-1]) and value[-3] == np.float32(np.log(np.float32(1e-40)))
    assert value[-2] < 0 and abs(value[-2] - -np.exp(-90.0)) <= 2e-45   # subnormal in float32
    x = RNG.uniform(-3.0, -0.1, 300)
    outs = (np.empty(600)[::2], np.empty(300))   # one of them strided
    got = runtime.log1mexp_pair(x, out=outs)
    assert got[0] is outs[0] and got[1] is outs[1]
    value, t = runtime.log1mexp_pair(x)
    assert (bits(outs[0]) == bits(value)).all() and (bits(outs[1]) == bits(t)).all()
    for v in (-0.3, -2.0, 0.0, 1.0):
        with np.errstate(all="ignore"):
            a, b = runtime.log1mexp_pair(np.array(v))
            c, d = runtime.log1mexp_pair(np.array([v]))
        assert a.shape == b.shape == () and bits(a) == bits(c[0]) and bits(b) == bits(d[0])
    value, t = runtime.log1mexp_pair(np.empty((0, 3)))
    assert value.shape == t.shape == (0, 3)


def test_quiet_blocks_raise_nothing_and_the_others_warn_nothing(simd):
    with np.errstate(all="raise"):
        runtime.log1mexp_pair(RNG.uniform(-707.9, -1e-15, 3000))
        runtime.log1mexp_pair(RNG.uniform(-86.9, -1e-6, 3000).astype(np.float32))
    if not simd:   # (log1mexp's branches, and expm1(0.0 - x) apart with its warnings at NaN)
        return
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        # silenced where some point can raise: 1/0, log of a negative, overflow, underflow
        runtime.log1mexp_pair(np.array([0.0, -0.0, 1.0, np.inf, -np.inf, -800.0, -1e-320, np.nan, -0.5]))


@pytest.mark.parametrize("text", ["log(1 - exp(x))", "log1p(-exp(x))", "log(-expm1(x))"])
def test_generated_gradients_against_mpmath_the_naive_form_and_c(text):
    """The stable NumPy rewrite: value and gradient within 2 ulps of the exact ones on
    random points where the naive form is accurate (no worse than it beyond that: the
    naive log1p(-exp(x)) is within 1 ulp at some draws of 500 points, the branch-free
    -log1p(1/t) within 2 at every x), and within a few ulps of the C backend's. (Its
    own points: drawn from the module's generator they depended on the tests run
    before, and one draw in four had a point of 2 ulps where the naive form's worst
    was 1.)"""
    rng = np.random.default_rng(161)
    x = np.r_[rng.uniform(-3.0, -0.5, 400), rng.uniform(-0.8, -0.6, 100)]
    value, (grad,) = compile_grad(text, stable=True)(x)
    naive_value, (naive_grad,) = compile_grad(text)(x)
    want_value = [exact_value(v) for v in x]
    want_grad = [float(-1 / mpmath.expm1(-mpmath.mpf(float(v)))) for v in x]
    assert ulps(value, want_value) <= max(2.0, ulps(naive_value, want_value))
    assert ulps(grad, want_grad) <= max(2.0, ulps(naive_grad, want_grad))
    c_value, (c_grad,) = compile_grad(text, stable=True, backend="c", threads=1)(x)
    assert ulps(value, c_value) <= 4.0 and ulps(grad, c_grad) <= 4.0
