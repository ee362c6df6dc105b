"""The functions of issue 14 ("Large expressions"): erf, gamma, lgamma, digamma,
polygamma, arctan2, hypot, floor, sinc, ... beyond what the op-table-driven suites
(test_ops, test_edges, test_c_backend) check for every op: the NumPy special
functions against mpmath over wide ranges, the C helpers against them, Hessians, the
tensor C generator, and both front ends (aliases, "did you mean", Piecewise, sinc)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from exprcompiler import compile_expr, compile_grad, compile_hessian, special
from exprcompiler.errors import ConversionError, ParseError
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.parse.parser import parse
from exprcompiler.trace import interpret
from conftest import needs_cc

INF, NAN = math.inf, math.nan


pytestmark = pytest.mark.usefixtures("private_cache")


def wide_points(seed: int, negative: bool = True) -> np.ndarray:
    """Positive x from 1e-300 to 1e300, moderate x, x near 1 and 2 (lgamma's zeros) and
    near digamma's root; with `negative`, non-integers down to -60 and points 1e-3..1e-12
    from the poles 0, -1, -7."""
    rng = np.random.default_rng(seed)
    parts = [10.0 ** rng.uniform(-300, 300, 30), rng.uniform(0, 30, 60), 1 + rng.uniform(-1e-3, 1e-3, 10),
             2 + rng.uniform(-1e-3, 1e-3, 10), 1.4616321449683622 + rng.uniform(-0.3, 0.3, 10)]
    if negative:
        near = np.array([p + s * 10.0 ** -k for p in (0.0, -1.0, -7.0) for s in (1, -1) for k in (3, 8, 12)])
        parts += [rng.uniform(-60, 0, 60), near]
    x = np.concatenate(parts)
    return x[x != np.floor(x)]


def relative_errors(got, want, scale) -> np.ndarray:
    """|got - want| / max(|want|, scale): relative, except where the function is small
    against `scale`, the size of the terms that cancel near its zeros."""
    with np.errstate(invalid="ignore"):
        return np.where(got == want, 0.0, np.abs(got - want) / np.maximum(np.abs(want), scale))


# -- the NumPy special functions against mpmath --------------------------------------------------
MPMATH = {
    "gamma": (special.gamma, mpmath.gamma, 0.0),
    "lgamma": (special.lgamma, lambda x: mpmath.log(abs(mpmath.gamma(x))), 1.0),
    "digamma": (special.digamma, mpmath.digamma, 1.0),
}


@pytest.mark.parametrize("name", sorted(MPMATH))
def test_special_functions_match_mpmath(name):
    f, reference, scale = MPMATH[name]
    x = wide_points(len(name))
    if name == "gamma":
        x = x[(x > -170) & (x < 171)]   # beyond, over- or underflow (checked against C below)
    with mpmath.workdps(40):
        want = np.array([float(reference(mpmath.mpf(float(v)))) for v in x])
    err = relative_errors(f(x), want, scale)
    assert err.max() < 2e-13, (name, x[err.argmax()], err.max())


@pytest.mark.parametrize("n", [1, 2, 3, 6, 30])
def test_polygamma_matches_mpmath(n):
    x = wide_points(n)
    x = x[np.abs(x) < 1e6]           # (mpmath is slow at huge arguments of high orders)
    with mpmath.workdps(40):
        want = np.array([float(mpmath.polygamma(n, mpmath.mpf(float(v)))) for v in x])
    # even orders vanish between the poles on the negative axis, where the terms are n!/dist^(n+1)
    err = relative_errors(special.polygamma(float(n), x), want, np.where(x < 0, math.factorial(n), 0.0))
    assert err.max() < 1e-13, (n, x[err.argmax()], err.max())


def test_polygamma_orders_outside_0_to_30_are_nan():
    got = special.polygamma(np.array([-1.0, 0.5, 31.0, NAN, 0.0, 30.0]), 2.5)
    assert np.isnan(got[:4]).all() and np.isfinite(got[4:]).all()


def test_special_values():
    assert special.gamma(np.array([0.0, -0.0, -1.0, -INF, INF, NAN, 171.7, 1.0, 5.0])).tolist() == pytest.approx(
        [INF, -INF, NAN, NAN, INF, NAN, INF, 1.0, 24.0], nan_ok=True)
    assert np.signbit(special.gamma(-0.0))
    assert special.lgamma(np.array([0.0, -0.0, -3.0, -INF, INF, 1.0, 2.0])).tolist() == [INF] * 5 + [0.0, 0.0]
    assert special.digamma(np.array([0.0, -0.0, -2.0, -INF, INF])).tolist() == pytest.approx(
        [-INF, INF, NAN, NAN, INF], nan_ok=True)
    # odd orders: +inf at every pole; even: NaN at negative integers, the one-sided limit at ±0
    assert special.polygamma(1.0, np.array([0.0, -0.0, -3.0])).tolist() == [INF, INF, INF]
    assert special.polygamma(2.0, np.array([0.0, -0.0, -3.0])).tolist() == pytest.approx([-INF, INF, NAN], nan_ok=True)


def test_erf_is_the_c_librarys():
    x = np.random.default_rng(0).uniform(-7, 7, 300)
    assert special.erf(x).tolist() == [math.erf(v) for v in x]
    assert special.erfc(x).tolist() == [math.erfc(v) for v in x]
    assert special.erf(0.5) == math.erf(0.5) and special.erf(np.float64(2.0)).shape == ()


# -- the C backend against the NumPy one -------------------------------------------------------
def agree(a, b, rtol=1e-13, scale=0.0) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(all="ignore"):
        close = np.abs(a - b) <= rtol * np.maximum(np.maximum(np.abs(a), np.abs(b)), scale)
    return close | (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


@needs_cc
@pytest.mark.parametrize("expr, scale", [
    ("gamma(x)", 0.0), ("lgamma(x)", 1.0), ("digamma(x)", 1.0), ("polygamma(1, x)", 0.0),
    ("polygamma(2, x)", 2.0), ("polygamma(5, x)", 120.0), ("erf(x)", 0.0), ("erfc(x)", 0.0),
])
def test_c_agrees_with_numpy_on_wide_points(expr, scale):
    """digamma and polygamma are the same algorithm on both sides; gamma, lgamma, erf
    and erfc are libm's in C. `scale`: near a zero on the negative axis, agreement is
    relative to the terms that cancel (glibc's lgamma is exact there, ours 1e-15)."""
    x = np.concatenate([wide_points(7), [0.0, -0.0, 5e-324, -5e-324, INF, -INF, NAN, -1.0, -2.0, 1e308,
                                        -1e308, 171.5, 171.7, -171.5, -185.5, 0.5, 1.0, 2.0]])
    if expr == "gamma(x)":
        x = x[(x > -170) | (x == np.floor(x))]  # glibc's subnormal results below -170 differ in the last bits
    c, py = compile_grad(expr, backend="c"), compile_grad(expr)
    (vc, (gc,)), (vp, (gp,)) = c(x), py(x)
    ok = agree(vc, vp, scale=scale) & agree(gc, gp, scale=scale)
    assert ok.all(), list(zip(x[~ok][:5], vc[~ok][:5], vp[~ok][:5], gc[~ok][:5], gp[~ok][:5]))


@needs_cc
def test_tensor_c_generator_spells_the_new_functions():
    program = ("sum(erf(x) + erfc(x) + gamma(x) + lgamma(x) + digamma(x) + polygamma(2, x) + cbrt(x)"
               " + log2(x) + log10(x) + asinh(x) + acosh(x + 1) + atanh(x / 4) + floor(3 * x) + ceil(x)"
               " + frac(2 * x) + sinc(x) + arctan2(x, 0.5) + hypot(x, 2) + pow(x, 1.5))")
    shapes = {"x": (6,)}
    x = np.linspace(0.3, 3.1, 6)
    c, py = compile_grad(program, shapes=shapes, backend="c"), compile_grad(program, shapes=shapes)
    assert "dims" in c.source   # the loop-nest generator, not the per-point one
    (vc, (gc,)), (vp, (gp,)) = c(x), py(x)
    assert agree(vc, vp, rtol=1e-12).all() and agree(gc, gp, rtol=1e-12).all()


# -- second derivatives -------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_cc)])
def test_hessians_of_gamma_lgamma_digamma(backend):
    x = 2.75
    with mpmath.workdps(30):
        want = {"lgamma(x)": mpmath.polygamma(1, x), "digamma(x)": mpmath.polygamma(2, x),
                "gamma(x)": mpmath.diff(mpmath.gamma, x, 2), "polygamma(2, x)": mpmath.polygamma(4, x),
                "erf(x)": mpmath.diff(mpmath.erf, x, 2), "sinc(x)": mpmath.diff(lambda t: mpmath.sinc(mpmath.pi * t), x, 2)}
    for expr, h in want.items():
        _, _, hess = compile_hessian(expr, backend=backend)(x)
        assert float(hess[0, 0]) == pytest.approx(float(h), rel=1e-12), expr


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_cc)])
def test_sinc_derivatives_at_zero(backend):
    """0 is where sinc's rule switches to its Maclaurin polynomial: sinc'(0) = 0 and
    sinc''(0) = -π²/3, as the limits."""
    value, grad, hess = compile_hessian("sinc(x)", backend=backend)(0.0)
    assert (value, grad[0], hess[0, 0]) == (1.0, 0.0, pytest.approx(-math.pi ** 2 / 3, rel=1e-15))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_cc)])
def test_steps_have_zero_derivative_and_frac_one(backend):
    x = np.array([-2.0, -1.5, -0.0, 0.0, 0.25, 1.0, 3.0])
    _, grads = compile_grad("floor(x) + ceil(y) + frac(z)", backend=backend)(x, x, x)
    assert [g.tolist() for g in grads] == [[0.0] * 7, [0.0] * 7, [1.0] * 7]


# -- the string language ------------------------------------------------------------------------
@pytest.mark.parametrize("alias, op", [
    ("ln", "log"), ("asin", "arcsin"), ("acos", "arccos"), ("atan", "arctan"), ("asinh", "arcsinh"),
    ("acosh", "arccosh"), ("atanh", "arctanh"), ("ceiling", "ceil"), ("loggamma", "lgamma"),
])
def test_aliases(alias, op):
    assert [ins.op for ins in parse(f"{alias}(x)").instrs] == ["input", op]


def test_two_argument_aliases():
    assert [ins.op for ins in parse("atan2(y, x)").instrs][-1] == "arctan2"
    assert str(parse("pow(x, y)")) == str(parse("x**y"))
    assert compile_expr("pow(x, y)")(2.0, 10.0) == 1024.0


@pytest.mark.parametrize("typo, suggestion", [
    ("arctn", "arctan"), ("atn", "atan"), ("atann2", "atan2"), ("lgama", "lgamma"), ("digama", "digamma"),
    ("ceilng", "ceiling"), ("erfcc", "erfc"),
])
def test_did_you_mean_knows_the_aliases(typo, suggestion):
    with pytest.raises(ParseError) as err:
        parse(f"{typo}(x)")
    assert f"(did you mean '{suggestion}'?)" in err.value.message


# -- SymPy -----------------------------------------------------------------------------------------
x, y = sp.symbols("x y", real=True)


def ops_of(trace) -> list[str]:
    return [ins.op for ins in trace.instrs if ins.op not in ("input", "const")]


def test_piecewise_is_nested_where_and_nan_outside_every_condition():
    pw = sp.Piecewise((x ** 2, x < 0), (sp.sin(x), x < 2))
    trace = from_sympy(pw)
    assert ops_of(trace).count("where") == 2
    got = [float(interpret(trace, {"x": v})[0]) for v in (-1.5, 1.0, 3.0)]
    assert got[:2] == [2.25, math.sin(1.0)] and math.isnan(got[2])
    assert pw.subs(x, 3) is sp.nan     # SymPy's value there too


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_cc)])
def test_piecewise_gradient_follows_the_branch_taken(backend):
    pw = sp.Piecewise((x ** 2 * y, sp.And(x < 0, y > 0)), (sp.sin(x), sp.Or(x > 2, sp.Not(y < 1))), (3 * y, True))
    g = compile_grad(pw, backend=backend)
    xs, ys = np.array([-1.0, 3.0, 0.5, 0.5]), np.array([2.0, 0.0, 1.5, 0.0])
    value, (dx, dy) = g(xs, ys)
    np.testing.assert_allclose(value, [2.0, math.sin(3.0), math.sin(0.5), 0.0])
    np.testing.assert_allclose(dx, [-4.0, math.cos(3.0), math.cos(0.5), 0.0])
    np.testing.assert_allclose(dy, [1.0, 0.0, 0.0, 3.0])


def test_n_ary_min_max_fold_into_minimum_maximum():
    z = sp.Symbol("z", real=True)
    trace = from_sympy(sp.Max(x, y, z, 1) - sp.Min(x, y, z))
    assert sorted(ops_of(trace)) == ["maximum"] * 3 + ["minimum"] * 2 + ["sub"]
    assert float(interpret(trace, {"x": 0.5, "y": -2.0, "z": 0.25})[0]) == 3.0


def test_sympy_sinc_is_unnormalized():
    trace = from_sympy(sp.sinc(x))
    assert ops_of(trace) == ["div", "sinc"]
    assert float(interpret(trace, {"x": 2.0})[0]) == pytest.approx(math.sin(2.0) / 2.0, rel=1e-15)


def test_polygamma_of_order_zero_is_digamma():
    assert ops_of(from_sympy(sp.digamma(x))) == ["digamma"]
    assert ops_of(from_sympy(sp.polygamma(2, x))) == ["polygamma"]


@pytest.mark.parametrize("expr, message", [
    (x < y, "relationals and booleans are not supported: x < y (as a number, write Piecewise("),
    (sp.Piecewise((x, sp.Xor(x > 0, y > 0)), (y, True)), "unsupported SymPy condition 'Xor'"),
])
def test_conditions_outside_piecewise_are_refused(expr, message):
    with pytest.raises(ConversionError) as err:
        from_sympy(expr)
    assert str(err.value).startswith(message)


def test_the_written_out_constants_are_mpmaths():
    """special.py writes its series coefficients out (importing mpmath to compute them
    cost every import of exprcompiler 40 ms); here they are computed again."""
    import mpmath

    from exprcompiler import special as S
    with mpmath.workdps(40):
        lgamma_at_2 = [float(1 - mpmath.euler)] + [float((-1) ** k * (mpmath.zeta(k) - 1) / k)
                                                   for k in range(2, 29)]
        x0 = mpmath.findroot(mpmath.digamma, 1.46)
        root = (float(x0), float(x0 - float(x0)))
        at_root = [float(mpmath.polygamma(k, x0) / mpmath.factorial(k)) for k in range(1, 25)]
    assert list(S.LGAMMA_AT_2) == lgamma_at_2
    assert S.DIGAMMA_ROOT == root
    assert list(S.DIGAMMA_AT_ROOT) == at_root
