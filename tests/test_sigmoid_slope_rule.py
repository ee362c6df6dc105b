"""The rule sigmoid_pair (issue 18): sigmoid(u)·(1 - sigmoid(u)), after one_minus_sigmoid
sigmoid(u)·sigmoid(-u), becomes the op sigmoid_slope(u), whose derivative is the op
sigmoid_slope_slope(u) (ops.py). C computes both from one exp(-|u|) and one division
(c_exp.xc_sigmoid_slope: w·(1 - w), w = e/(1 + e)), on tiles of inner points by the inner
forms (c_special.INNER), in float kernels by libm's expf and expm1f; NumPy both from one
tanh(u/2) in one call (runtime.sigmoid_slopes: the bits of the former sech2(u/2)/4 lines).
Against mpmath at edge and grid points (ulps), C against NumPy and the VM, the tiled
and untiled copies, the HVP through the new op against central differences."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, passes, runtime
from exprcompiler.backends import c_build
from exprcompiler.backends.numpy_shares import shared_exps
from exprcompiler.frontend import to_trace
from exprcompiler.jacobians import compile_hvp, explain
from exprcompiler.stability import stabilized

from test_c_exp_inner import assert_tiles_agree
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

EXPR = "sigmoid(x)*(1 - sigmoid(x))"
TINY = 2.2250738585072014e-308
# +-0, +-inf, NaN, subnormals, the inner tiles' |x| <= 690, e^-|x| below 2^-53 (36.7),
# xc_exp_neg's rescue (693.1) and bound (746), subnormal results (708 to 745), 0 beyond
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, -2.2e-308, 1e-300, -1e-300,
                  1e-17, -1e-17, 1e-8, -1e-8, 690.0, -690.0, np.nextafter(690.0, 1e3), 36.7, -36.7, 693.2, -693.2,
                  709.0, -709.0, 720.0, -720.0, 745.0, -745.0, 746.0, -746.0, 800.0, -800.0, 1e308, -1e308])


def _exact(x):
    """(s, s') at 60 digits: s = e/(1 + e)², s' = sign(x)·expm1(-|x|)·e/(1 + e)³, e = exp(-|x|)."""
    with mpmath.workdps(60):
        X = mpmath.mpf(x)
        e = mpmath.exp(-abs(X))
        return e / (1 + e) ** 2, mpmath.sign(X) * mpmath.expm1(-abs(X)) * e / (1 + e) ** 3


def _ulps(got, xs, row: int) -> float:
    """The largest error in ulps of the exact value (row 0) or derivative (row 1); below the
    normal range in units of 2^-1074."""
    worst = 0.0
    for x, y in zip(np.asarray(xs).tolist(), np.asarray(got).tolist()):
        r = _exact(x)[row]
        unit = math.ulp(float(r)) if abs(r) >= TINY else 5e-324
        worst = max(worst, float(abs(mpmath.mpf(y) - r) / unit) if math.isfinite(y) else math.inf)
    return worst


# issue 18's ranges for this row: [-40, 40], |x| in [0.5, 3], tiny |x|, |x| in [20, 745]
RANGES = {"wide": (-40.0, 40.0, False), "safe": (0.5, 3.0, False), "tiny": (-300.0, -3.0, True),
          "far": (20.0, 745.0, False)}


def _points(name: str, n: int, seed: int = 0) -> np.ndarray:
    """n points of a range, of both signs (a generator of their own: the same points
    whatever the tests' order)."""
    rng = np.random.default_rng(seed)
    lo, hi, decades = RANGES[name]
    x = 10.0 ** rng.uniform(lo, hi, n) if decades else rng.uniform(lo, hi, n)
    return x if lo < 0 and not decades else x * rng.choice([-1.0, 1.0], n)


def _body(source: str, name: str) -> str:
    body = source[source.index(f"void {name}("):]
    return body[:body.index("\n}")]


def test_the_rule_builds_the_op_and_its_derivative_is_an_op():
    trace = stabilized(to_trace(EXPR), "primal", True)
    ops = [ins.op for ins in trace.instrs]
    assert ops.count("sigmoid_slope") == 1 and "sigmoid" not in ops and "sech2" not in ops
    g = compile_grad(EXPR, stable=True)
    assert [r.rule for r in g.rewrites] == ["one_minus_sigmoid", "sigmoid_pair"]
    text = explain(EXPR, stability=True)
    assert "sigmoid_slope(u)" in text and "+ v_1 = sigmoid_slope(v_0)" in text


def test_the_c_kernel_takes_value_and_derivative_from_one_exp_and_one_division():
    """The point body calls the two helpers of x (gcc merges their reduction and their
    e/(1 + e)); the inner copy their inner forms; no tanh, sech2 or libm call."""
    for make, name in ((compile_grad, "f_grad_point"), (compile_hvp, "f_hvp_point")):
        source = make(EXPR, backend="c", stable=True).source
        point, inner = _body(source, name), _body(source, name + "_inner")
        assert "xc_sigmoid_slope(x)" in point and "xc_sigmoid_slope_slope(x)" in point, point
        assert "xc_sigmoid_slope_inner(x)" in inner and "xc_sigmoid_slope_slope_inner(x)" in inner, inner
        assert "xc_tanh" not in source and "xc_sech2" not in source
    helper = source[source.index("double xc_sigmoid_slope_slope(double x)"):]
    helper = helper[:helper.index("\n}")]
    assert helper.count("/") == 1 and "e / (1.0 + e)" in helper and "xc_expm1_neg(-fabs(x))" in helper
    value = source[source.index("double xc_sigmoid_slope(double x)"):]
    assert "e / (1.0 + e)" in value[:value.index("\n}")]


def test_numpy_takes_both_from_one_call():
    """shared_exps pairs the op with its derivative (numpy_share_pairs._value_and_slope); the
    generated function makes one sigmoid_slopes call (numpy_backend's _SHARES_EXPS lists
    sigmoid_slope), in the bits of the former lines 0.5·x, tanh, sech2_of_tanh."""
    g = compile_grad(EXPR, stable=True)
    trace = stabilized(to_trace(EXPR), "primal", True)
    grad = passes.grad_reverse(trace, ["x"])
    entries = shared_exps(grad)
    assert sorted(e[2:] for e in entries.values()) == [("sigmoid_slopes", False, 0), ("sigmoid_slopes", False, 1)]
    assert "sigmoid_slopes(x)" in g.source and "np.tanh" not in g.source
    x = np.concatenate([_points("wide", 2000), EDGES])
    with np.errstate(all="ignore"):
        v, (d,) = g(x)
        h = 0.5 * x
        t = np.tanh(h)
        s = runtime.sech2_of_tanh(h, t)
    assert same_bits(v, 0.25 * s) and same_bits(d, -0.25 * (s * t))
    assert same_bits(runtime.sigmoid_slope(x), v) and same_bits(runtime.sigmoid_slope_slope(x), d)


def test_numpy_without_a_simd_tanh(monkeypatch):
    """Where np.tanh's loop is not SIMD, sigmoid_slopes takes _tanh_group's steps of one
    exp(-|x|): sech2_of_exp and tanh_of_exp, the bits of the former lines there."""
    from exprcompiler import runtime_tanh
    monkeypatch.setitem(runtime_tanh.SIMD, "tanh", False)
    x = np.concatenate([_points("wide", 3000), EDGES])
    with np.errstate(all="ignore"):
        v, d = runtime.sigmoid_slopes(x)
        h = 0.5 * x
        w = runtime.exp_neg2abs(h)
        s, t = runtime.sech2_of_exp(w), runtime.tanh_of_exp(h, w)
    assert same_bits(v, 0.25 * s) and same_bits(d, -0.25 * (s * t))
    finite = np.isfinite(x)
    assert _ulps(v[finite][:600], x[finite][:600], 0) <= 4.0 and _ulps(d[finite][:600], x[finite][:600], 1) <= 6.0


@pytest.mark.parametrize("name", sorted(RANGES))
def test_value_and_gradient_against_mpmath(name):
    """C within 3 ulps (value) and 4 (gradient) on each range (the former sech2(x/2)/4 form:
    up to 4.6 and 7.8); NumPy, its former bits, within 20 and 32 (1 - t² from t = tanh(x/2)
    where that is at least 1/16, runtime_tanh._SECH2_NEAR: t's error times up to 32; the
    worst near |x| = 4.1)."""
    xs = _points(name, 1500)
    c, numpy = (compile_grad(EXPR, backend=b, stable=True)(xs) for b in ("c", "numpy"))
    assert _ulps(c[0], xs, 0) <= 3.0 and _ulps(c[1][0], xs, 1) <= 4.0, name
    assert _ulps(numpy[0], xs, 0) <= 20.0 and _ulps(numpy[1][0], xs, 1) <= 32.0, name


def test_the_edges():
    """At +-0 1/4 and -+0.0 (the derivative -x/8), at +-inf 0 and -+0.0, NaN at NaN; from
    |x| = 708 on s = e^-|x| and s' = -sign(x)·s, subnormal, 0 beyond 745; both backends."""
    want = {repr(x): w for x, w in ((0.0, (0.25, -0.0)), (-0.0, (0.25, 0.0)), (np.inf, (0.0, -0.0)),
                                    (-np.inf, (0.0, 0.0)), (800.0, (0.0, -0.0)), (-800.0, (0.0, 0.0)),
                                    (1e308, (0.0, -0.0)), (5e-324, (0.25, -0.0)), (-5e-324, (0.25, 0.0)))}
    for backend in ("c", "numpy", "vm"):
        with np.errstate(all="ignore"):
            v, (d,) = compile_grad(EXPR, backend=backend, stable=True)(EDGES)
        for x, a, b in zip(EDGES.tolist(), v.tolist(), d.tolist()):
            if math.isnan(x):
                assert math.isnan(a) and math.isnan(b)
            elif repr(x) in want:
                assert same_bits(np.array([a, b]), np.array(want[repr(x)])), (backend, x, a, b)
        finite = np.isfinite(EDGES)
        bound = (3.0, 4.0) if backend != "numpy" else (20.0, 32.0)
        assert _ulps(v[finite], EDGES[finite], 0) <= bound[0], backend
        assert _ulps(d[finite], EDGES[finite], 1) <= bound[1], backend
    c = compile_grad(EXPR, backend="c", stable=True)(np.array([720.0, -720.0]))
    e = math.exp(-720.0)
    assert same_bits(c[0], np.array([e, e])) and same_bits(c[1][0], np.array([-e, e]))


def test_c_numpy_and_the_vm_agree():
    xs = np.concatenate([_points("wide", 2000), _points("tiny", 200), _points("far", 200), EDGES])
    with np.errstate(all="ignore"):
        (v, (d,)), (w, (e,)) = (compile_grad(EXPR, backend=b, stable=True)(xs) for b in ("c", "numpy"))
        vm = compile_grad(EXPR, backend="vm", stable=True)(xs)
    for a, b in ((v, w), (d, e)):
        assert same_bits(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=8e-15, atol=1e-300, equal_nan=True)
    assert same_bits(vm[0], v) and same_bits(vm[1][0], d)


def test_the_tiles_and_one_point_at_a_time_give_the_same_bits():
    """Tiles that pass the test (|x| <= 690) and tiles with an edge point, on two threads,
    in the VM, one point at a time (the kernel calls no libm function)."""
    g = compile_grad(EXPR, backend="c", stable=True)
    vm = compile_grad(EXPR, backend="vm", stable=True)
    n = 64 * 20 + 3
    rng = np.random.default_rng(1)
    xs = [rng.permutation(np.concatenate([_points("wide", n), _points("tiny", 200), _points("far", 300)]))[:n]]
    assert_tiles_agree(g, vm, xs, [np.array([np.nan, np.inf, -700.0, 750.0, -np.inf])], 5,
                       singles=[0, 5, 69, 64 * 7 + 5, n - 1])


def test_the_value_alone():
    """compile_expr: the C value helper alone (its bits as beside the derivative), NumPy's
    runtime.sigmoid_slope (sigmoid_slopes' first row)."""
    xs = np.concatenate([_points("wide", 500), EDGES])
    with np.errstate(all="ignore"):
        for backend in ("c", "numpy"):
            f = compile_expr(EXPR, backend=backend, stable=True)
            assert "sigmoid_slope" in f.source
            assert same_bits(f(xs), compile_grad(EXPR, backend=backend, stable=True)(xs)[0]), backend


def test_float_kernels():
    """A float kernel (expf, expm1f): within a few float ulps of the exact value and slope."""
    g = compile_grad(EXPR, backend="c", stable=True, dtype="float32")
    assert "xc_sigmoid_slope_slope" in g.source
    xs = np.concatenate([np.random.default_rng(2).uniform(-20.0, 20.0, 2000),
                         [0.0, -0.0, 1e-3, -1e-3, 80.0, -80.0, 110.0, -110.0]])
    xs = xs.astype(np.float32)
    v, (d,) = g(xs)
    assert v.dtype == d.dtype == np.float32
    for row, got in ((0, v), (1, d)):
        exact = np.array([float(_exact(float(x))[row]) for x in xs])
        ok = np.abs(exact) >= np.finfo(np.float32).tiny
        unit = np.spacing(np.abs(exact[ok]).astype(np.float32)).astype(float)
        err = np.abs(got[ok].astype(float) - exact[ok]) / unit
        assert err.max() <= 6.0, (row, err.max())


@pytest.mark.parametrize("backend", ["c", "numpy", "vm"])
def test_hvp_through_the_new_op(backend):
    """The second derivative s·(1 - 6s) (sigmoid_slope_slope's derivative) against central
    differences of the gradient, and the HVP's gradient row the gradient's bits."""
    h = compile_hvp(EXPR, backend=backend, stable=True)
    g = compile_grad(EXPR, backend=backend, stable=True)
    xs = np.concatenate([np.random.default_rng(3).uniform(-12.0, 12.0, 400), [0.0, 1e-5, -2.5, 30.0]])
    v, (grad,), (hv,) = h(xs, np.full_like(xs, 2.0))
    _, (d,) = g(xs)
    assert same_bits(grad, d) and same_bits(v, g(xs)[0])
    step = 1e-6 * np.maximum(1.0, np.abs(xs))
    diff = (g(xs + step)[1][0] - g(xs - step)[1][0]) / (2 * step)
    np.testing.assert_allclose(hv, 2.0 * diff, rtol=1e-6, atol=1e-9)
    exact = np.array([float(_exact(float(x))[0] * (1 - 6 * _exact(float(x))[0])) for x in xs])
    np.testing.assert_allclose(hv, 2.0 * exact, rtol=1e-12, atol=1e-300)
