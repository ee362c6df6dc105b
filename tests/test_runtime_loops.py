"""The choice between NumPy's log1p, expm1 and tanh and the runtime's helpers
(ufunc_loops.SIMD, read by the runtime's helpers and backends/numpy_shares.py): the
table follows what NumPy says it dispatches; where np.tanh's loop is SIMD, tanh(x) and
its derivative are np.tanh and sech2_of_tanh (1 - t² where that is accurate, (1/cosh x)²
elsewhere), checked against mpmath, the naive form's bits and each point alone. Both
choices are run on any machine (the table is set by the tests)."""

import sys

import mpmath
import numpy as np
import numpy.lib
import pytest

from exprcompiler import compile_grad, runtime, ufunc_loops

EDGES = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, 0.3, -2.0, 2.0634370688955608, -2.0634370688955608,
                  2.07, 19.0, -354.0, 360.0, -710.0, 711.0, 1e308, np.inf, -np.inf, np.nan])


def _loops(monkeypatch, simd: bool):
    for name in ufunc_loops.LOOPS:
        monkeypatch.setitem(ufunc_loops.SIMD, name, simd)


def _sech2_exact(x: float) -> float:
    with mpmath.workdps(40):
        return float(mpmath.sech(mpmath.mpf(x)) ** 2)


def test_the_table_follows_what_numpy_dispatches(monkeypatch):
    """SIMD where NumPy's float64 loop is not its baseline; all False where NumPy cannot
    say (no numpy.lib.introspect before NumPy 2.0)."""
    introspect = pytest.importorskip("numpy.lib.introspect")
    info = introspect.opt_func_info()
    assert ufunc_loops.SIMD == {name: not info[name]["dd"]["current"].startswith("baseline")
                                for name in ufunc_loops.LOOPS}
    fake = {"log1p": {"dd": {"current": "baseline(X86_V2)"}, "ff": {"current": "X86_V4"}},
            "tanh": {"dd": {"current": "X86_V3"}}}   # (an AVX2 machine; expm1 not listed)
    monkeypatch.setattr(introspect, "opt_func_info", lambda: fake)
    assert ufunc_loops._simd() == {"log1p": False, "expm1": False, "tanh": True}
    monkeypatch.setitem(sys.modules, "numpy.lib.introspect", None)   # NumPy 1.x: import fails
    monkeypatch.delattr(numpy.lib, "introspect", raising=False)
    assert ufunc_loops._simd() == dict.fromkeys(ufunc_loops.LOOPS, False)


def test_sech2_of_tanh_against_mpmath_and_each_point_alone():
    """1 - t² where it is at least 1/16 (the naive derivative's bits, within 3.5e-15 of
    the exact value), (1/cosh x)² elsewhere (within about two ulps while it is normal),
    ±0 -> 1, ±inf -> 0, NaN -> NaN; blocks mostly near, mostly far and mixed, and each
    point's value the one it gets alone."""
    rng = np.random.default_rng(7)
    near, far = rng.uniform(-2.06, 2.06, 600), rng.uniform(2.07, 300.0, 600) * rng.choice([-1, 1], 600)
    for x in (np.concatenate([near, far[:50], EDGES]), np.concatenate([far, near[:50], EDGES]), EDGES):
        with np.errstate(all="ignore"):
            t = np.tanh(x)
            got = runtime.sech2_of_tanh(x, t)
            alone = np.array([runtime.sech2_of_tanh(x[i:i + 1], t[i:i + 1])[0] for i in range(x.size)])
        assert np.array_equal(got, alone, equal_nan=True)
        with np.errstate(all="ignore"):
            naive = 1.0 - np.square(t)
            inner = naive >= 1 / 16   # (|x| <= 2.0634, about)
            assert np.array_equal(got[inner], naive[inner])
        want = np.array([_sech2_exact(v) if np.isfinite(v) else (0.0 if np.isinf(v) else np.nan) for v in x])
        assert np.array_equal(got[~np.isfinite(x)], want[~np.isfinite(x)], equal_nan=True)
        normal = np.isfinite(x) & (want >= np.finfo(float).tiny)
        err = np.abs(got[normal] - want[normal]) / want[normal]
        assert err.max() <= 3.5e-15
        assert np.all(err[~inner[normal]] <= 4.5e-16)
    assert runtime.sech2_of_tanh(-0.0, np.tanh(-0.0)) == 1.0
    for v in (3.0, -0.5, 400.0):   # one point: a NumPy float back, either form
        got = runtime.sech2_of_tanh(v, np.tanh(v))
        assert type(got) is np.float64 and abs(got - _sech2_exact(v)) <= 4.5e-16 * _sech2_exact(v)
    x32 = rng.uniform(-30, 30, 1000).astype(np.float32)
    got32 = runtime.sech2_of_tanh(x32, np.tanh(x32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, [_sech2_exact(v) for v in x32.astype(float)], rtol=3e-6, atol=1e-37)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_tanh_and_its_derivative_where_np_tanh_is_simd(mode, monkeypatch):
    """np.tanh for the value (its bits) and sech2_of_tanh(x, value) for the derivative:
    runtime.sech2's bits (the op table's), the naive form's 1 - t² on [-2, 2], within a
    few ulps of sech²(x) against mpmath; 1 - tanh(x)**2, whose derivative takes tanh
    after the sech2, computes the tanh once, before it."""
    _loops(monkeypatch, True)
    g = compile_grad("tanh(x)", stable=True, mode=mode)
    lines = [ln.strip() for ln in g.source.split("def ")[1].splitlines()[1:3]]
    assert lines[0] == "v1 = np.tanh(x)" and lines[1].endswith("= sech2_of_tanh(x, v1)"), g.source
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(-2, 2, 40000), rng.uniform(-40, 40, 3000), np.tile(EDGES, 3)])
    with np.errstate(all="ignore"):
        value, (d,) = g(x)
        assert np.array_equal(value, np.tanh(x), equal_nan=True)
        assert np.array_equal(d, runtime.sech2(x), equal_nan=True)
        small = np.abs(x) <= 2
        assert np.array_equal(d[small], 1.0 - np.square(np.tanh(x[small])))
    some = rng.choice(x.size - EDGES.size * 3, 300)
    want = np.array([_sech2_exact(v) for v in x[some]])
    assert np.all(np.abs(d[some] - want) <= 3.5e-15 * want)

    h = compile_grad("1 - tanh(x)**2", stable=True, mode=mode)
    body = [ln.strip() for ln in h.source.split("def ")[1].splitlines()[1:4]]
    assert body[:2] == ["w1 = np.tanh(x)", "v1 = sech2_of_tanh(x, w1)"] and body[2].endswith("(v1 * w1)"), h.source
    assert h.source.split("def ")[1].count("tanh(") == 2   # np.tanh once, and sech2_of_tanh
    xs = np.concatenate([rng.uniform(-30, 30, 200), [0.0, 1.0, -3.0, 25.0]])
    value, (d,) = h(xs)
    with mpmath.workdps(40):
        want_d = [float(-2 * mpmath.sech(mpmath.mpf(v)) ** 2 * mpmath.tanh(mpmath.mpf(v))) for v in xs]
    assert np.array_equal(value, runtime.sech2(xs))
    np.testing.assert_allclose(d, want_d, rtol=4e-15, atol=0)


def test_tanh_float32_where_np_tanh_is_simd(monkeypatch):
    _loops(monkeypatch, True)
    x32 = np.random.default_rng(9).uniform(-5, 5, 1000).astype(np.float32)
    value, (d,) = compile_grad("tanh(x)", stable=True, dtype="float32")(x32)
    assert value.dtype == d.dtype == np.float32
    assert np.array_equal(value, np.tanh(x32))
    np.testing.assert_allclose(d, [_sech2_exact(v) for v in x32.astype(float)], rtol=3e-6)


@pytest.mark.parametrize("simd", [True, False])
def test_softplus_of_exp_either_way(simd, monkeypatch):
    """softplus(x) = log1p(exp(x)): np.log1p of E or the corrected log, within two ulps of
    np.logaddexp(0, x) and of each other, x itself where exp(x) overflows."""
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(10)
    x = np.concatenate([rng.uniform(-40, 40, 20000), [-800.0, -0.0, 0.0, 36.0, 37.0, 709.0, 710.0, 1e300, np.inf]])
    with np.errstate(all="ignore"):
        got = runtime.softplus(x)
        want = np.logaddexp(0.0, x)
    np.testing.assert_allclose(got, want, rtol=4.5e-16, atol=0)
    assert got[-1] == np.inf and got[-2] == 1e300
    assert np.isnan(runtime.softplus(np.array([np.nan])))[0]


@pytest.mark.parametrize("name", ["log1p", "expm1"])
def test_tiny_points_skip_numpys_simd_loop(name, monkeypatch):
    """Where np.log1p and np.expm1 are SIMD, points with |x| < 2^-54 (whose value is x)
    never reach them (their AVX-512 loops are up to 15 times slower on such vectors): the
    same bits as NumPy's, signed zeros included, with out= or without, in blocks all,
    mostly, partly and not tiny, of one sign and of both (each way of putting them back)."""
    from exprcompiler import runtime_log1p as RE
    _loops(monkeypatch, True)
    ref = getattr(np, name)
    seen = []

    def spy(v, out=None):
        v = np.asarray(v)
        seen.append(np.abs(v[(v != 0) & ~np.isnan(v)]).min(initial=np.inf))
        return ref(v, out=out)

    rng = np.random.default_rng(13)
    tiny = 2.0 ** rng.uniform(-1074, -55, 4000) * rng.choice([-1, 1], 4000)
    some = rng.uniform(-0.5, 0.5, 4000)
    specials = np.array([0.0, -0.0, 5e-324, -5e-324, 2.0 ** -54, -(2.0 ** -54), 2.0 ** -55, np.nan, np.inf, -np.inf,
                         -1.0, -2.0, 1e300])
    mixed = np.concatenate([tiny, some[:1000]])
    for x in (tiny, mixed, np.abs(mixed), np.concatenate([some, tiny[:200]]), some, np.abs(some), -np.abs(some),
              np.concatenate([some, specials]), np.concatenate([tiny, specials]), specials):
        seen.clear()
        with np.errstate(all="ignore"):
            want = ref(x)
            for out in (None, np.empty_like(x)):
                got = RE._tiny_safe(spy, x, out)
                assert out is None or got is out
                assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
            assert np.array_equal(getattr(RE, "_" + name)(x), want, equal_nan=True)
        assert min(seen, default=np.inf) >= 2.0 ** -54
