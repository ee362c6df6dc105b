"""sigmoid's slope sigmoid(x)·sigmoid(-x) without a second division (issue 18): the stable
gradient of sigmoid(x) (v·(1 - v) rewritten by one_minus_sigmoid to v·sigmoid(-x)) and
that of 1 - sigmoid(x) (sigmoid(-x)·sigmoid(x)), which c_forms spells as the op
sigmoid_slope_shared(u) (u the argument of the factor the kernel reads elsewhere); C
computes it from sigmoid's own exp and division (c_exp.xc_sigmoid_slope_shared), on tiles
of inner points by xc_exp_neg_inner (c_special.INNER). (The op sigmoid_slope, the rule
sigmoid_pair's, with its own derivative: test_sigmoid_slope_rule.py.) Against mpmath, the
NumPy backend and the VM, the tiled and untiled copies, one point at a time, and in float
kernels."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build, c_forms
from exprcompiler.frontend import to_trace

from test_c_exp_inner import assert_tiles_agree
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(3141)
TINY = 2.2250738585072014e-308
# +-0, +-inf, NaN, subnormals, 1e308, and the thresholds: the inner tiles' |x| <= 690,
# e^-|x| below 2^-53 (36.7), xc_exp_neg's rescue (693.1) and bound (746), e^-745 subnormal
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2e-308, -1e-310, 1e308, -1e308,
                  690.0, -690.0, np.nextafter(690.0, 1e3), -np.nextafter(690.0, 1e3), 36.7, -36.7, 693.2, -693.2,
                  709.0, -709.0, 745.0, -745.0, 745.2, -745.2, 746.0, -746.0, 800.0, -800.0, 1e-300, -1e-300])


def _slope(x):
    """sigmoid(x)·sigmoid(-x) = e/(1 + e)^2, e = e^-|x|, at 60 digits."""
    with mpmath.workdps(60):
        e = mpmath.exp(-abs(mpmath.mpf(x)))
        return e / (1 + e) ** 2


def _ulps(got, xs) -> float:
    """The largest error in ulps of the exact slope (below the normal range: in ulps of
    the smallest normal, 2^-1074)."""
    worst = 0.0
    for x, y in zip(np.asarray(xs).tolist(), np.asarray(got).tolist()):
        r = _slope(x)
        unit = math.ulp(float(r)) if abs(r) >= TINY else 5e-324
        worst = max(worst, float(abs(mpmath.mpf(y) - r) / unit) if math.isfinite(y) else math.inf)
    return worst


def _points(n: int) -> np.ndarray:
    """Both signs: [-40, 40] densely, [-760, 760], every binade of |x| (subnormals too)."""
    return np.concatenate([_RNG.uniform(-40.0, 40.0, n), _RNG.uniform(-4.0, 4.0, n),
                           _RNG.uniform(-760.0, 760.0, n // 4),
                           _RNG.choice([-1.0, 1.0], n // 2) * 2.0 ** _RNG.uniform(-1074.0, 9.5, n // 2)])


def _ops(expr: str) -> list[str]:
    return [ins.op for ins in c_forms.c_forms(to_trace(expr)).instrs]


def test_the_product_of_sigmoids_of_negated_arguments_is_the_slope():
    """Either order, -x or 0.0 - x, of an input or of another value; not of other arguments."""
    for expr in ("sigmoid(x) * sigmoid(-x)", "sigmoid(-x) * sigmoid(x)", "sigmoid(x) * sigmoid(0.0 - x)",
                 "sigmoid(2*x + y) * sigmoid(-(2*x + y))"):
        ops = _ops(expr)
        assert ops.count("sigmoid_slope_shared") == 1 and "mul" not in ops[ops.index("sigmoid_slope_shared"):], expr
    for expr in ("sigmoid(x) * sigmoid(y)", "sigmoid(x) * sigmoid(x)", "sigmoid(x) * sigmoid(1 - x)",
                 "sigmoid(x) + sigmoid(-x)"):
        assert "sigmoid_slope_shared" not in _ops(expr), expr


def test_the_slope_takes_the_argument_of_the_kernels_own_sigmoid():
    """sigmoid(x)'s stable gradient (v·sigmoid(-x)) and 1 - sigmoid(x)'s (sigmoid(-x)·sigmoid(x)):
    the slope of the value's argument, so that gcc computes one exp and one division; the
    other sigmoid gone from the kernel, and the inner copy on the tiles by the inner form."""
    for expr, u in (("sigmoid(x)", "x"), ("1 - sigmoid(x)", "v1")):
        source = compile_grad(expr, backend="c", stable=True).source
        point = source[source.index("void f_grad_point("):]
        point = point[:point.index("\n}")]
        assert f"xc_sigmoid_slope_shared({u})" in point and point.count("xc_sigmoid(") == 1, point
        assert f"xc_sigmoid_slope_shared_inner({u})" in source and "xc_exp_neg_inner_at(" in source


def test_the_slope_against_mpmath():
    """Within 3.1 ulps (the product of two sigmoids, two divisions: 3.58 on such points)."""
    xs = np.concatenate([_points(6000), EDGES[np.isfinite(EDGES)]])
    for expr, sign in (("sigmoid(x)", 1.0), ("1 - sigmoid(x)", -1.0)):
        _, (grad,) = compile_grad(expr, backend="c", stable=True, threads=1)(xs)
        assert _ulps(sign * grad, xs) <= 3.1, expr


def test_the_slope_at_the_edges():
    g = compile_grad("sigmoid(x)", backend="c", stable=True)
    with np.errstate(all="ignore"):
        _, (grad,) = g(EDGES)
    want = {0.0: 0.25, -0.0: 0.25, np.inf: 0.0, -np.inf: 0.0, 5e-324: 0.25, -5e-324: 0.25, 1e308: 0.0,
            -1e308: 0.0, 800.0: 0.0, -800.0: 0.0, 746.0: 0.0, -746.0: 0.0, 1e-300: 0.25, -1e-300: 0.25}
    for x, d in zip(EDGES.tolist(), grad.tolist()):
        if math.isnan(x):
            assert math.isnan(d)
        elif x in want:
            assert same_bits(np.array(d), np.array(want[x])), (x, d)
    finite = np.isfinite(EDGES)
    assert _ulps(grad[finite], EDGES[finite]) <= 1.0


def test_c_numpy_and_the_vm_agree():
    """The NumPy backend's sigmoid(x)·sigmoid(-x) (its own pair from one exp) within two
    ulps; the VM (the op sigmoid_slope_shared by the same helper) bit for bit."""
    xs = np.concatenate([_points(3000), EDGES])
    for expr in ("sigmoid(x)", "1 - sigmoid(x)"):
        with np.errstate(all="ignore"):
            (v, (d,)), (w, (e,)) = (compile_grad(expr, backend=b, stable=True)(xs) for b in ("c", "numpy"))
            vm = compile_grad(expr, backend="vm", stable=True)(xs)
        assert same_bits(np.isnan(d), np.isnan(e))
        np.testing.assert_allclose(d, e, rtol=1e-15, atol=1e-300, equal_nan=True, err_msg=expr)
        np.testing.assert_allclose(v, w, rtol=1e-15, atol=1e-300, equal_nan=True, err_msg=expr)
        assert same_bits(vm[0], v) and same_bits(vm[1][0], d), expr


def test_a_users_product_of_sigmoids():
    """sigmoid(x)·sigmoid(-x) as written (not rewritten: stable=False): the C value is the
    slope's, within its bound; the VM's bits the same."""
    xs = np.concatenate([_points(3000), EDGES])
    with np.errstate(all="ignore"):
        f, vm = (compile_grad("sigmoid(x) * sigmoid(-x)", backend=b) for b in ("c", "vm"))
        (v, (d,)), (w, (e,)) = f(xs), vm(xs)
    assert "xc_sigmoid_slope_shared(" in f.source
    assert same_bits(v, w) and same_bits(d, e)
    finite = np.isfinite(xs)
    assert _ulps(v[finite], xs[finite]) <= 3.1 and np.isnan(v[np.isnan(xs)]).all()


@pytest.mark.parametrize("expr", ["sigmoid(x)", "1 - sigmoid(x)"])
def test_the_tiles_and_one_point_at_a_time_give_the_same_bits(expr):
    """Tiles that pass the test (|x| <= 690) and tiles with an edge point (NaN, inf, 700,
    -0.0 is inner), on two threads, in the VM, one point at a time: a point's bits do not
    depend on its tile (the kernel calls no libm function)."""
    g = compile_grad(expr, backend="c", stable=True)
    vm = compile_grad(expr, backend="vm", stable=True)
    assert "_point_inner" in g.source
    n = 64 * 20 + 3
    xs = [_RNG.uniform(-30.0, 30.0, n)]
    edges = [np.array([np.nan, np.inf, -700.0, 750.0, -np.inf])]
    edged = assert_tiles_agree(g, vm, xs, edges, 5, singles=[0, 5, 69, 64 * 7 + 5, n - 1])
    with np.errstate(all="ignore"):
        mixed = g(*edged)
        for i in (5, 64 * 2 + 5, 64 * 4 + 5, 64 * 6 + 5):
            one = g(float(edged[0][i]))
            assert same_bits(np.asarray(one[0]), mixed[0][i]) and same_bits(np.asarray(one[1][0]), mixed[1][0][i])


def test_float_kernels():
    """A float kernel (expf, fmaf): within a few float ulps of the exact slope."""
    xs = np.concatenate([_RNG.uniform(-20.0, 20.0, 2000), [0.0, -0.0, 80.0, -80.0, 110.0, -110.0]]).astype(np.float32)
    for expr, sign in (("sigmoid(x)", 1.0), ("1 - sigmoid(x)", -1.0)):
        g = compile_grad(expr, backend="c", stable=True, dtype="float32")
        assert "xc_sigmoid_slope_shared" in g.source
        _, (grad,) = g(xs)
        assert grad.dtype == np.float32
        exact = np.array([float(_slope(float(x))) for x in xs])
        ok = exact >= np.finfo(np.float32).tiny
        err = np.abs(sign * grad[ok].astype(float) - exact[ok]) / np.spacing(exact[ok].astype(np.float32)).astype(float)
        assert err.max() <= 4.0, err.max()
