"""hypot3 and logaddexp3, the three-term stable forms the stability rewrites put in for
sqrt(x² + y² + z²) and log(exp(a) + exp(b) + exp(c)): values against math.hypot and
mpmath on every backend (edge points included: infinities, NaN, signed zeros, 1e300,
1e-300, subnormals, ties), derivatives against finite differences, sympy.diff and the
other mode, the rows helpers (value and partials in one NumPy call) against the op's
own bits, and the rules building one op for three terms."""

import math

import mpmath
import numpy as np
import pytest
import sympy

from exprcompiler import compile_expr, compile_grad, compile_hvp, runtime
from exprcompiler.backends.numpy_nary import nary_rows
from exprcompiler.gradcheck import check_grad
from exprcompiler.runtime_blocks import _BLOCK
from exprcompiler.stability import stabilize
from exprcompiler.trace.ir import Builder, trace_from_builder

RNG = np.random.default_rng(43)
INF, NAN = math.inf, math.nan
BACKENDS = ("numpy", "c", "vm")
# magnitudes from subnormal to near the largest float, and the special values
EDGES = [0.0, -0.0, 5e-324, -2.5e-310, 1e-300, -1e-160, 3e-154, 1.0, -2.5, 1e154, -1.5e154, 1e300, -1.7e308,
         INF, -INF, NAN]


def _points(values, n_random=0, scale=(1e-300, 1e300)):
    """Columns x, y, z: every triple of `values`, then random signed log-uniform ones."""
    v = np.array(values)
    grid = np.array(np.meshgrid(v, v, v)).reshape(3, -1)
    if n_random:
        mag = np.exp(RNG.uniform(np.log(scale[0]), np.log(scale[1]), (3, n_random)))
        grid = np.concatenate([grid, mag * RNG.choice([-1.0, 1.0], (3, n_random))], axis=1)
    return grid


def _same(a, b):
    """Equal as floats, NaN equal to NaN (signs of zero not compared)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    assert not bad.any(), (a[bad][:5], b[bad][:5], np.flatnonzero(bad)[:5])


def _close(got, want, rtol):
    got, want = np.asarray(got, float), np.asarray(want, float)
    special = ~np.isfinite(want) | (want == 0)
    _same(got[special], want[special])
    err = np.abs(got[~special] - want[~special]) / np.abs(want[~special])
    assert err.max(initial=0.0) <= rtol, err.max()


# -- hypot3 ------------------------------------------------------------------------------

def test_hypot3_matches_math_hypot_everywhere():
    x, y, z = _points(EDGES, 3000)
    want = np.array([math.hypot(*p) for p in zip(x, y, z)])   # (correctly rounded, 3.10+)
    _close(runtime.hypot3(x, y, z), want, 3e-16)
    for backend in ("c", "vm"):
        _close(compile_expr("hypot3(x, y, z)", backend=backend)(x, y, z), want, 3e-16)


def test_hypot3_naive_bits_where_the_sum_of_squares_is_in_range():
    x, y, z = RNG.uniform(-1e100, 1e100, (3, 1000))
    _same(runtime.hypot3(x, y, z), np.sqrt(x * x + y * y + z * z))
    _same(compile_expr("hypot3(x, y, z)", backend="c")(x, y, z), np.sqrt(x * x + y * y + z * z))


def test_hypot3_infinity_beats_nan():
    assert runtime.hypot3(INF, NAN, 1.0) == INF and runtime.hypot3(NAN, 2.0, -INF) == INF
    assert math.isnan(runtime.hypot3(NAN, 1.0, 1e300))
    for backend in ("c", "vm"):
        f = compile_expr("hypot3(x, y, z)", backend=backend)
        assert f(INF, NAN, 1.0) == INF and f(NAN, 2.0, -INF) == INF and math.isnan(f(NAN, 1.0, 1e300))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypot3_gradient_is_x_over_h_and_zero_at_the_origin(backend):
    x, y, z = _points([0.0, -0.0, 5e-324, 1e-310, 1e-300, 2.0, -3.0, 1e18, 1e300, 1.7e308], 500)
    v, grads = compile_grad("hypot3(x, y, z)", backend=backend)(x, y, z)
    h = np.array([math.hypot(*p) for p in zip(x, y, z)])
    for a, g in zip((x, y, z), grads):
        want = np.where(h == 0, 0.0, a / np.where(h == 0, 1.0, h))
        np.testing.assert_allclose(g, want, rtol=4.5e-16, atol=1e-323)   # (subnormal partials: an ulp)


def test_hypot3_rows_are_the_ops_bits_in_every_block():
    # blocks (runtime_blocks._BLOCK) of the naive form only, of the scaled form, and mixed
    n = 2 * _BLOCK + 1000
    x, y, z = RNG.uniform(-10, 10, (3, n))
    x[_BLOCK + 7], y[2 * _BLOCK + 3], z[5] = 1e300, 3e-310, 0.0
    x[9:12], y[9:12], z[9:12] = 0.0, -0.0, 0.0
    rows = runtime.hypot3_rows(x, y, z)
    _same(rows[0], runtime.hypot3(x, y, z))
    one = compile_grad("hypot3(x, y, z)", backend="vm")   # the trace's formula, point by point
    v, grads = one(x, y, z)
    _same(rows[0], v)
    for got, want in zip(rows[1:], grads):
        _same(got, want)
    assert all((r[9:12] == 0).all() for r in rows)


# -- logaddexp3 --------------------------------------------------------------------------

def _lse(a, b, c):
    if any(math.isnan(t) for t in (a, b, c)):
        return NAN, (NAN,) * 3
    m = max(a, b, c)
    if m == INF or m == -INF:
        top = [t == m for t in (a, b, c)]
        return m, tuple(float(t) / sum(top) for t in top)
    with mpmath.workdps(40):   # (local: a global mp.dps changes other files' references)
        e = [mpmath.exp(mpmath.mpf(t) - m) for t in (a, b, c)]
        s = sum(e)
        return float(m + mpmath.log(s)), tuple(float(t / s) for t in e)


LSE_EDGES = [0.0, -0.0, 1e-300, -40.0, 1.0, -2.5, 700.0, -707.9, 709.9, -745.5, 1000.0, -1000.0, INF, -INF, NAN]


def test_logaddexp3_against_mpmath_everywhere():
    a, b, c = _points(LSE_EDGES)
    r = RNG.uniform(-1000, 1000, (3, 3000))
    a, b, c = np.concatenate([a, r[0]]), np.concatenate([b, r[1]]), np.concatenate([c, r[2]])
    want = [_lse(*p) for p in zip(a, b, c)]
    value = np.array([w[0] for w in want])
    partials = [np.array([w[1][k] for w in want]) for k in range(3)]
    # the value's error is absolute below 1 (a log near 1 added to m: NumPy's naive form
    # in its range, log(s), as logaddexp_rows')
    finite = np.isfinite(value)
    for backend in BACKENDS:
        v, grads = compile_grad("logaddexp3(a, b, c)", backend=backend)(a, b, c)
        _same(v[~finite], value[~finite])
        assert (np.abs(v[finite] - value[finite]) <= 4.5e-16 * np.maximum(np.abs(value[finite]), 1.0)).all()
        m = np.maximum(np.maximum(a, b), c)
        for g, p, t in zip(grads, partials, (a, b, c)):
            ok = np.isfinite(p)
            _same(g[~ok], p[~ok])
            # exp(t - m) carries the rounding of t - m, |t - m|·2^-53 of it (as sigmoid(a - b))
            with np.errstate(invalid="ignore"):
                bound = p * (1.5e-15 + 1.2e-16 * np.abs(t - m)) + 1e-300   # (subnormal partials)
            assert ((g[ok] == p[ok]) | (np.abs(g[ok] - p[ok]) <= bound[ok])).all()


def test_logaddexp3_at_ties_and_infinities():
    for backend in BACKENDS:
        g = compile_grad("logaddexp3(a, b, c)", backend=backend)
        for point, value, partials in (((INF, INF, INF), INF, (1 / 3,) * 3), ((-INF,) * 3, -INF, (1 / 3,) * 3),
                                       ((INF, 5.0, INF), INF, (0.5, 0.0, 0.5)), ((2.0, 2.0, 2.0), 2.0 + math.log(3),
                                       (1 / 3,) * 3), ((-INF, 0.0, -INF), 0.0, (0.0, 1.0, 0.0))):
            v, gs = g(*point)
            assert v == pytest.approx(value, rel=4.5e-16) and [float(t) for t in gs] == pytest.approx(partials)
        v, gs = g(NAN, 1.0, 2.0)
        assert math.isnan(v) and all(math.isnan(t) for t in gs)


def test_logaddexp3_c_keeps_log1p_digits():
    # exp(-40) twice beside exp(0): the value is 8.5e-18, which log(1 + s) rounds to 0
    for backend in ("c", "vm"):
        v = compile_expr("logaddexp3(a, b, c)", backend=backend)(0.0, -40.0, -40.0)
        assert v == pytest.approx(2 * math.exp(-40), rel=1e-15)


def test_logaddexp3_rows_bits_whatever_the_other_points():
    n = 2 * _BLOCK + 500
    a, b, c = RNG.uniform(-5, 5, (3, n))
    rows = runtime.logaddexp3_rows(a, b, c)
    a2, b2, c2 = a.copy(), b.copy(), c.copy()
    a2[::97], b2[1::89], c2[2::83] = 800.0, -INF, NAN   # other blocks' points out of range
    rows2 = runtime.logaddexp3_rows(a2, b2, c2)
    same = np.ones(n, bool)
    same[::97] = same[1::89] = same[2::83] = False
    for r, r2 in zip(rows, rows2):
        _same(r[same], r2[same])
    _same(rows[0], runtime.logaddexp3(a, b, c))
    ea, eb, ec = np.exp(a), np.exp(b), np.exp(c)
    s = ea + eb + ec
    _same(rows[0], np.log(s))
    _same(rows[1], ea * (1.0 / s))


# -- derivatives -------------------------------------------------------------------------

@pytest.mark.parametrize("expr", ["hypot3(x, y, z)", "logaddexp3(x, y, z)",
                                  "hypot3(x*y, sin(z), 2) * logaddexp3(x, -y, z**2)"])
def test_gradients_against_finite_differences_sympy_and_forward_mode(expr):
    at = {"x": 0.7, "y": -1.3, "z": 2.1}
    assert check_grad(expr, at) < 1e-8
    x, y, z = sympy.symbols("x y z", real=True)
    e = sympy.sympify(expr.replace("hypot3", "H").replace("logaddexp3", "L"),
                      locals={"H": lambda *t: sympy.sqrt(sum(u ** 2 for u in t)),
                              "L": lambda *t: sympy.log(sum(sympy.exp(u) for u in t)), "x": x, "y": y, "z": z})
    want = [float(sympy.diff(e, s).evalf(30, subs={x: 0.7, y: -1.3, z: 2.1})) for s in (x, y, z)]
    for backend in ("numpy", "c"):
        for mode in ("reverse", "forward"):
            _, grads = compile_grad(expr, mode=mode, backend=backend)(0.7, -1.3, 2.1)
            np.testing.assert_allclose([float(g) for g in grads], want, rtol=1e-14)


@pytest.mark.parametrize("expr", ["hypot3(x, y, z)", "logaddexp3(x, y, z)"])
def test_hessian_vector_products_agree_on_every_backend(expr):
    # the Hessian reads the partials' intermediate values again: NumPy then takes the
    # trace's own partials, not a rows call's
    x, y, z = RNG.uniform(-3, 3, (3, 50))
    d = RNG.uniform(-1, 1, (3, 50))
    out = [compile_hvp(expr, backend=b)(x, y, z, *d) for b in BACKENDS]
    src = compile_hvp(expr).source
    assert "_rows(" not in src
    for other in out[1:]:
        for p, q in zip(np.atleast_1d(out[0][-1]), np.atleast_1d(other[-1])):
            np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)


# -- the rules and the NumPy rows --------------------------------------------------------

def _ops_after(expr):
    f = compile_expr(expr, stable=True)
    return [ins.op for ins in f.trace.instrs if ins.op not in ("input", "const")]


def test_the_rules_build_one_op_for_three_terms():
    assert _ops_after("sqrt(x**2 + y**2 + z**2)") == ["hypot3"]
    assert _ops_after("log(exp(a) + exp(b) + exp(c))") == ["logaddexp3"]
    assert _ops_after("sqrt(x**2 + y**2)") == ["hypot"]                # two terms: as before
    assert _ops_after("log(exp(a) + exp(b))") == ["logaddexp"]
    assert _ops_after("sqrt(w**2 + x**2 + y**2 + z**2)") == ["hypot3", "hypot"]
    assert _ops_after("log(exp(a) + exp(b) + exp(c) + exp(d) + 1)") == ["logaddexp3", "logaddexp3"]
    assert _ops_after("sqrt(x**2 + y**2 + 4)") == ["hypot3"]


@pytest.mark.parametrize("expr", ["sqrt(x**2 + y**2 + z**2)", "log(exp(x) + exp(y) + exp(z))"])
def test_numpy_value_and_gradient_in_one_rows_call(expr):
    g = compile_grad(expr, stable=True)
    body = g.source.split("def ")[1]
    assert body.count("_rows(") == 1 and "where" not in body and "np." not in body
    x, y, z = RNG.uniform(-5, 5, (3, 100))
    v, grads = g(x, y, z)
    vc, gc = compile_grad(expr, stable=True, backend="c")(x, y, z)
    assert (np.abs(v - vc) <= 4.5e-16 * np.maximum(np.abs(vc), 1.0)).all()
    for p, q in zip(grads, gc):
        np.testing.assert_allclose(p, q, rtol=2e-15)


def test_rows_only_where_the_partials_are_the_op_tables():
    b = Builder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    h = b.apply("hypot3", x, y, z)
    lone = trace_from_builder(b, [("h", h)])
    assert nary_rows(lone.instrs) == {}   # no partial: nothing to share
    # a constant argument: its partial is not made, the others still are rows
    g = compile_grad("log(exp(x) + exp(y) + 1)", stable=True)
    assert "logaddexp3_rows(" in g.source
    v, (gx, gy) = g(0.5, -0.25)
    s = math.exp(0.5) + math.exp(-0.25) + 1
    assert v == pytest.approx(math.log(s), rel=1e-15)
    assert (gx, gy) == pytest.approx((math.exp(0.5) / s, math.exp(-0.25) / s), rel=1e-15)


def test_float32_keeps_the_forms_working():
    pts = (np.array([1.0, 0.0, 1e30, 1e-40], np.float32), np.array([2.0, 0.0, 1e30, 0.0], np.float32),
           np.array([2.0, 0.0, 1e30, 0.0], np.float32))
    for backend in ("numpy", "c"):
        v, grads = compile_grad("sqrt(x**2 + y**2 + z**2)", backend=backend, dtype="float32", stable=True)(*pts)
        np.testing.assert_allclose(v, [3.0, 0.0, 1.7320508e30, np.float32(1e-40)], rtol=1e-6)
        np.testing.assert_allclose(grads[0], [1 / 3, 0.0, 0.57735026, 1.0], rtol=1e-6)
        v, grads = compile_grad("log(exp(x) + exp(y) + exp(z))", backend=backend, dtype="float32",
                                stable=True)(*(np.array([0.0, 100.0, -200.0], np.float32),) * 3)
        np.testing.assert_allclose(v, np.array([0.0, 100.0, -200.0]) + math.log(3), rtol=1e-6)
        np.testing.assert_allclose(grads[1], [1 / 3] * 3, rtol=1e-6)


def test_stabilize_reports_the_three_term_forms():
    b = Builder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    s = b.sqrt(b.add(b.add(b.square(x), b.square(y)), b.square(z)))
    new, firings = stabilize(trace_from_builder(b, [("f", s)]), "primal")
    assert [f.rule for f in firings] == ["hypot"] and any(i.op == "hypot3" for i in new.instrs)
