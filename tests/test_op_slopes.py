"""Op slopes that went wrong at the edges of their domain, on every backend (NumPy, C and
the tape VM), float64 and float32, stable=True and False.

log1mexp(x) = log(1 - e^x): its slope -1/expm1(0.0 - x) was -0.0 below -709.78 (expm1
overflows; the slope is -e^x, a subnormal float) and its derivative 0·inf = NaN; the
slope is now the op log1mexp_slope (ops_special), -e^x there, whose derivative
s·(1 - s) is finite everywhere, and each backend computes it from the value's own steps
(NumPy: one runtime.log1mexp_slopes call; C: xc_log1mexp_slope beside xc_log1mexp)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, runtime, ufunc_loops
from conftest import backends_here

BACKENDS = backends_here("c", "vm")
LOG1MEXP = [("log(1 - exp(x))", True), ("log1mexp(x)", False)]
_RNG = np.random.default_rng(2026)


pytestmark = pytest.mark.usefixtures("private_cache")


def _exact_slope(x: float, dps: int = 40):
    """-e^x/(1 - e^x) = -1/expm1(-x), and its derivative -e^x/(1 - e^x)², as mpfs."""
    with mpmath.workdps(dps):
        t = mpmath.expm1(-mpmath.mpf(x))
        s = -1 / t
        return s, s * (1 - s)


def _ulps(got, want) -> np.ndarray:
    want = np.asarray(want, dtype=float)
    return np.abs(np.asarray(got, dtype=float) - want) / np.maximum(np.spacing(np.abs(want)), 5e-324)


def _far() -> np.ndarray:
    """Points where expm1(-x) overflows and e^x is subnormal or 0."""
    return np.concatenate([[-709.79, -710.0, -720.5, -744.4, -745.0, -745.2, -800.0, -1e150, -1e300],
                           -_RNG.uniform(709.79, 745.0, 200)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("text, stable", LOG1MEXP)
def test_log1mexp_slope_and_hessian_where_expm1_overflows(backend, text, stable):
    """Below -709.78 the slope is -e^x (a subnormal float: the exact one rounds to it) and
    the Hessian -e^x/(1 - e^x)², the same number: once -0.0 and NaN. Within a subnormal
    ulp of the exact numbers (C's e^x is c_exp's, NumPy's np.exp's)."""
    x = _far()
    want = np.array([float(_exact_slope(float(v))[0]) for v in x])
    _, (slope,) = compile_grad(text, backend=backend, stable=stable)(x)
    _, slope_h, hess = compile_hessian(text, backend=backend, stable=stable)(x)
    hess = np.asarray(hess).reshape(-1)
    assert (np.abs(want) < np.finfo(float).tiny).all() and (want < 0).sum() > 150
    for got in (slope, np.asarray(slope_h).reshape(-1), hess):
        assert np.isfinite(got).all() and (np.abs(got - want) <= 5e-324).all()
        assert np.signbit(got).all()   # -0.0 where e^x is 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("text, stable", LOG1MEXP)
def test_log1mexp_hessian_against_mpmath(backend, text, stable):
    """Within 1e-12 of the exact second derivative wherever that is a normal float, the
    slope within 2 ulps (NumPy's -1/t: t's ulp and the division's; C's -e/|m|)."""
    x = np.concatenate([-10.0 ** _RNG.uniform(-300, 0.5, 300), -_RNG.uniform(0.5, 709.7, 300),
                        -_RNG.uniform(700.0, 709.78, 50), [-1e-300, -1e-9, -0.6931471805599453, -37.0, -708.4]])
    exact = [_exact_slope(float(v)) for v in x]
    want_s = np.array([float(s) for s, _ in exact])
    want_h = np.array([float(h) for _, h in exact])
    with np.errstate(all="ignore"):
        _, slope, hess = compile_hessian(text, backend=backend, stable=stable)(x)
    slope, hess = np.asarray(slope).reshape(-1), np.asarray(hess).reshape(-1)
    assert _ulps(slope, want_s).max() <= 2.0
    normal = np.isfinite(want_h) & (np.abs(want_h) >= np.finfo(float).tiny)
    assert normal.sum() > 400
    np.testing.assert_allclose(hess[normal], want_h[normal], rtol=1e-12, atol=0)
    overflows = ~np.isfinite(want_h)   # (-1/x² near 0: -inf, the exact one's rounding)
    assert (hess[overflows] == -np.inf).all() and np.isfinite(hess[~overflows]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_log1mexp_slope_at_its_edges(backend):
    """-inf at ±0 (the limit from below), -0.0 at -inf, NaN at NaN; above 0 (the value is
    NaN) -1/expm1(-x), as before, on every backend alike (within 2 ulps: C takes it as
    -e^x/(1 - e^x), both rounded, from the value's own steps)."""
    x = np.array([0.0, -0.0, -np.inf, np.nan, 1.0, 30.0, np.inf])
    with np.errstate(all="ignore"):
        value, slope, hess = compile_hessian("log1mexp(x)", backend=backend)(x)
        above = -1.0 / np.expm1(-x[4:])
    slope, hess = np.asarray(slope).reshape(-1), np.asarray(hess).reshape(-1)
    assert slope[0] == slope[1] == -np.inf and hess[0] == hess[1] == -np.inf
    assert slope[2] == 0.0 and np.signbit(slope[2]) and hess[2] == 0.0
    assert np.isnan(slope[3]) and np.isnan(hess[3])
    np.testing.assert_allclose(slope[4:], above, rtol=4.5e-16)


@pytest.mark.parametrize("backend", ["numpy", "c"] if "c" in BACKENDS else ["numpy"])
def test_log1mexp_slope_float32(backend):
    """float32: -e^x where expm1(-x) overflows float32 (x < -88.7), a subnormal float32."""
    x = np.array([-88.8, -90.0, -95.5, -103.0, -104.0, -200.0, -3.0, -0.25], dtype=np.float32)
    _, (slope,) = compile_grad("log1mexp(x)", backend=backend, dtype="float32")(x)
    assert slope.dtype == np.float32
    assert (np.abs(slope[:6] - -np.exp(x[:6])) <= np.float32(1.5e-45)).all()   # (C: c_exp's e^x, an ulp apart)
    assert np.signbit(slope[:6]).all()
    want = np.array([float(_exact_slope(float(v))[0]) for v in x[6:]], dtype=np.float32)
    np.testing.assert_allclose(slope[6:], want, rtol=2.5e-7)


@pytest.mark.parametrize("simd", [True, False], ids=["simd", "scalar"])
def test_numpy_takes_the_slope_from_the_values_steps(monkeypatch, simd):
    """One runtime.log1mexp_slopes call for the value and the slope (no expm1, no division
    of the gradient's own), in gradients and Hessians; the slope row is log1mexp_rows'
    -(1.0 / t) bit for bit where t is finite, on both of NumPy's loop kinds, and on blocks
    of every kind (each point's bits its own)."""
    for name in ("log1p", "expm1"):
        monkeypatch.setitem(ufunc_loops.SIMD, name, simd)
    for text, stable in LOG1MEXP:
        g = compile_grad(text, stable=stable)
        h = compile_hessian(text, stable=stable)
        for src in (g.source, h.source):
            body = src.split("def ")[1]
            assert body.count("log1mexp_slopes(") == 1 and "expm1" not in body and "/" not in body
    x = np.concatenate([_far(), [0.0, -0.0, -np.inf, np.nan, 0.5, -1e-300], -_RNG.exponential(3.0, 3000)])
    with np.errstate(all="ignore"):
        value, slope = runtime.log1mexp_slopes(x)
        rows = runtime.log1mexp_rows(x)
        alone = runtime.log1mexp_slope(x)
    bits = lambda a: np.asarray(a, dtype=np.float64).view(np.int64)   # noqa: E731
    assert (bits(value) == bits(rows[0])).all()
    finite = rows[1] != np.inf
    assert (bits(slope[finite]) == bits(-rows[2][finite])).all()
    assert (bits(slope[~finite]) == bits(-np.exp(x[~finite]))).all()
    np.testing.assert_allclose(alone, slope, rtol=5e-16)   # (t's expm1 forms: an ulp apart)
    with np.errstate(all="ignore"):   # (x > 0 and NaN: the scalar loops' expm1 apart, with NumPy's warnings)
        for k in list(range(0, x.size, 97)) + list(range(200, 215)):   # a point at a time, a block of one
            assert (bits(runtime.log1mexp_slopes(x[k:k + 1])[1]) == bits(slope[k:k + 1])).all()
        big = np.resize(x, 100_000)   # runtime_blocks' blocks
        assert (bits(runtime.log1mexp_slopes(big)[1]) == bits(np.resize(slope, big.size))).all()


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler on this machine")
def test_c_kernel_and_vm_compute_the_slope_beside_the_value():
    g_c = compile_grad("log(1 - exp(x))", backend="c", stable=True)
    kernel = g_c.source.split("/* one point */")[1] if "/* one point */" in g_c.source else g_c.source
    assert "xc_log1mexp_slope(" in g_c.source and "xc_expm1(" not in kernel
    g_vm = compile_grad("log(1 - exp(x))", backend="vm", stable=True)
    x = np.concatenate([_far(), [0.0, -0.0, -np.inf, np.nan, 0.5, -1e-300, -0.6931471805599453],
                        -_RNG.exponential(3.0, 2000)])
    with np.errstate(all="ignore"):
        a, b = g_c(x), g_vm(x)
    def same(u, w):   # bit for bit, any NaN alike
        u, w = np.asarray(u, dtype=np.float64), np.asarray(w, dtype=np.float64)
        return ((u.view(np.int64) == w.view(np.int64)) | (np.isnan(u) & np.isnan(w))).all()
    assert same(a[0], b[0]) and same(a[1][0], b[1][0])
    for k in (0, 1, 2, 9, 12, 215):   # the one-point entry: the batch's bits
        assert same(g_c(float(x[k]))[1][0], a[1][0][k])

