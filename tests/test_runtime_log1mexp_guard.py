"""runtime.log1mexp and runtime.expm1 with their tiny-argument guards skipped where a
block's bounds prove no point needs them: each point's bits are its own whatever the
other points of its block, the tiny values are still kept off NumPy's log1p and expm1
loops, and the far branch's tiny -exp(x) keep their value."""

import mpmath
import numpy as np
import pytest

from exprcompiler import runtime, ufunc_loops

LN2 = 0.6931471805599453
TINY = 2.0 ** -54

# every kind of point: both branches, the branch boundary, exp(x) tiny (x < -37.4),
# tiny |x| (expm1's guard), signed zeros, x > 0 (NaN), the specials
POINTS = np.array([
    -3.0, -0.5, -1e-3, -LN2, np.nextafter(-LN2, 0.0), np.nextafter(-LN2, -1.0), -36.9, -37.0,
    -37.5, -38.0, -300.0, -745.0, -746.0, -1e-20, -TINY, -2.0 ** -60, -1e-300, -5e-324,
    0.0, -0.0, 1e-300, 0.5, 2.0, np.nan, -np.inf, np.inf,
])

# blocks the points are put in: alone, all far, all near, mostly far, mostly near,
# with a NaN, with a tiny point, with exp(x) tiny
COMPANIONS = {
    "far": np.linspace(-5.0, -1.0, 50),
    "near": np.linspace(-0.6, -0.01, 50),
    "mostly far": np.r_[np.linspace(-5.0, -1.0, 40), np.linspace(-0.6, -0.1, 5)],
    "mostly near": np.r_[np.linspace(-5.0, -1.0, 5), np.linspace(-0.6, -0.1, 40)],
    "nan": np.r_[np.linspace(-5.0, -0.1, 20), np.nan],
    "tiny": np.r_[np.linspace(-5.0, -0.1, 20), -1e-300],
    "exp tiny": np.r_[np.linspace(-5.0, -0.1, 20), -500.0],
}


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


@pytest.fixture(params=[True, False], ids=["simd", "scalar"])
def loops(request, monkeypatch):
    """Both machines' paths: NumPy's SIMD loops, with their guard, and the scalar ones."""
    for name in ("log1p", "expm1"):
        monkeypatch.setitem(ufunc_loops.SIMD, name, request.param)
    return request.param


@pytest.mark.parametrize("f", [runtime.log1mexp, runtime.expm1, lambda x: runtime.expm1_pair(x)[0]],
                         ids=["log1mexp", "expm1", "expm1_pair"])
def test_each_point_its_own_bits_in_any_block(loops, f):
    with np.errstate(all="ignore"):
        alone = np.array([f(np.array([p]))[0] for p in POINTS])
        for name, others in COMPANIONS.items():
            block = np.r_[others, POINTS, others[::-1]]
            got = f(block)[len(others):len(others) + len(POINTS)]
            assert (bits(got) == bits(alone)).all(), name
        one_sided = f(POINTS[POINTS <= -1.0])   # a block all far, and one all near
        assert (bits(one_sided) == bits(alone[POINTS <= -1.0])).all()
        near = (POINTS > -LN2) & (POINTS <= 0)
        assert (bits(f(POINTS[near])) == bits(alone[near])).all()


def test_log1mexp_values_and_edges(loops):
    x = np.array([-3.0, -1.0, -0.5, -1e-3, -1e-300, -38.0, -300.0, -745.0, 0.0, -0.0, 1.0, -np.inf, np.nan])
    with np.errstate(all="ignore"):
        r = runtime.log1mexp(np.r_[x, np.linspace(-5.0, -0.1, 30)])[:len(x)]
    # log1p(-e) is -e itself where e = exp(x) is below 2^-54: the guard's x-itself value
    assert (bits(r[5:8]) == bits(-np.exp(x[5:8]))).all()
    assert r[4] == np.log(1e-300)
    assert np.isneginf(r[8]) and np.isneginf(r[9])
    assert np.isnan(r[10]) and np.isnan(r[12])
    assert r[11] == 0.0
    mid = np.array([-3.0, -1.0, -0.5, -1e-3])
    exact = np.log(-np.expm1(mid))   # accurate on these points (no cancellation: expm1)
    np.testing.assert_allclose(r[:4], exact, rtol=4e-16)
    assert runtime.log1mexp(np.empty(0)).shape == (0,)


def test_tiny_arguments_never_reach_the_simd_loops(monkeypatch):
    """The guard still keeps 0 < |argument| < 2^-54 off np.log1p and np.expm1 (their
    AVX-512 loops' slow path), also where a block's bounds spare its reductions."""
    monkeypatch.setitem(ufunc_loops.SIMD, "log1p", True)
    monkeypatch.setitem(ufunc_loops.SIMD, "expm1", True)
    seen = []
    for name in ("log1p", "expm1"):
        real = getattr(np, name)

        def spy(a, *args, _real=real, **kw):
            a = np.asarray(a)
            seen.append(int(np.count_nonzero((np.abs(a) < TINY) & (a != 0))))
            return _real(a, *args, **kw)
        monkeypatch.setattr(np, name, spy)
    blocks = [np.r_[np.linspace(-5.0, -0.1, 40), -1e-300, -2.0 ** -60],   # tiny x: expm1's guard
              np.r_[np.linspace(-5.0, -1.0, 40), -40.0, -600.0],          # tiny exp(x): log1p's guard
              np.r_[np.linspace(-0.6, -0.01, 40), -1e-200]]               # all near, one tiny
    with np.errstate(all="ignore"):
        for x in blocks:
            runtime.log1mexp(x)
            runtime.expm1(x)
            runtime.expm1(-x)
            runtime.expm1_pair(x)
    assert seen and not any(seen)


def _pair_blocks():
    yield POINTS
    yield POINTS[POINTS <= 0]   # the shared path (x <= 0 at every point; no NaN)
    for others in COMPANIONS.values():
        yield np.r_[others, POINTS[POINTS <= 0], others[::-1]]
        yield others
    rng = np.random.default_rng(3)
    yield rng.uniform(-3.0, -0.5, 5000)   # mostly far
    yield rng.uniform(-1.0, 0.0, 5000)    # mostly near
    yield -(10.0 ** rng.uniform(-320, 3, 5000))
    yield rng.uniform(-3.0, -0.5, 3 * 65536)   # run by blocks (runtime_blocks._blocked_rows)
    yield rng.uniform(-3.0, -0.5, (40, 30))
    yield np.float32(rng.uniform(-3.0, 0.0, 500))


@pytest.mark.parametrize("case", range(len(list(_pair_blocks()))))
def test_log1mexp_pair_is_log1mexp_and_expm1_of_minus_x(loops, case):
    """The pair's two results are within 3 ulps of log1mexp(x) and 2 of expm1(0.0 - x)
    (the derivative's expm1 as generated code computes it), the same at the specials,
    whatever the block; their bits where NumPy's loops are not SIMD."""
    x = list(_pair_blocks())[case]
    with np.errstate(all="ignore"):
        value, slope = runtime.log1mexp_pair(x)
        want_value, want_slope = runtime.log1mexp(x), runtime.expm1(np.subtract(0.0, x))
    assert value.dtype == slope.dtype == x.dtype and value.shape == slope.shape == x.shape
    eps = np.finfo(x.dtype).eps
    for got, want, rtol in ((value, want_value, 3 * eps), (slope, want_slope, 2 * eps)):
        finite = np.isfinite(want) & (want != 0)
        np.testing.assert_array_equal(got[~finite], want[~finite])   # NaN, ±inf, ±0 (signs too)
        assert (np.signbit(got[~finite]) == np.signbit(want[~finite])).all() or np.isnan(want).any()
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=0)
    if not loops:   # log1mexp's branches: the two calls' bits
        assert (bits(value) == bits(want_value)).all() and (bits(slope) == bits(want_slope)).all()


def test_log1mexp_pair_derivative_against_finite_differences():
    x = np.r_[np.linspace(-5.0, -0.8, 20), np.linspace(-0.6, -0.05, 20)]
    value, slope = runtime.log1mexp_pair(x)
    h = 1e-6
    numeric = (np.log(-np.expm1(x + h)) - np.log(-np.expm1(x - h))) / (2 * h)
    np.testing.assert_allclose(-1.0 / slope, numeric, rtol=1e-7)
    with mpmath.workdps(50):
        exact = np.array([float(mpmath.log(-mpmath.expm1(mpmath.mpf(float(v))))) for v in x])
    assert np.max(np.abs(value - exact) / np.spacing(np.abs(exact))) <= 2.0   # ulps


def test_log1mexp_pair_edges(loops):
    with np.errstate(all="ignore"):
        for x in (np.array(-0.3), np.array(-2.0), np.array(0.0), np.array(-0.0), np.array(1.0), np.empty(0)):
            value, slope = runtime.log1mexp_pair(x)
            np.testing.assert_allclose(value, runtime.log1mexp(x), rtol=3 * np.finfo(float).eps, atol=0)
            np.testing.assert_allclose(slope, runtime.expm1(0.0 - x), rtol=np.finfo(float).eps, atol=0)
            if not loops:
                assert (bits(value) == bits(runtime.log1mexp(x))).all()
                assert (bits(slope) == bits(runtime.expm1(0.0 - x))).all()
        value, slope = runtime.log1mexp_pair(np.array([0.0, -0.0]))
    assert np.isneginf(value).all() and (bits(slope) == bits(0.0)).all()   # expm1(+0): -1/slope is -inf
