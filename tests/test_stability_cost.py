"""Cheaper stable forms where the naive ones are accurate (issue 18, the SAFE table of
bench/stability.py): the C backend's arcsinh, arccosh and arctanh by one libmvec log
(c_special: glibc's asinh, acosh and atanh are scalar calls) against mpmath and NumPy at
the edges, and the NumPy log1mexp that runs one branch on most points and redoes the
others (runtime_elementwise), with the values of both branches in full."""

from __future__ import annotations

import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, runtime
from exprcompiler.runtime_blocks import _LN2
from exprcompiler.runtime_log1p import _expm1, _log1p
from conftest import needs_cc

RNG = np.random.default_rng(18)
EDGES = np.array([0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 2.0, -2.0, np.inf, -np.inf,
                  np.nan, 5e-324, 2.0 ** 28, np.nextafter(2.0 ** 28, np.inf), 1.5e154, 1e308, -1e300])


pytestmark = pytest.mark.usefixtures("private_cache")


def _wide(n: int) -> np.ndarray:
    """Magnitudes from 1e-300 to 1e300, near 1 on both sides, and moderate, both signs."""
    x = np.concatenate([10.0 ** RNG.uniform(-300, 300, n), RNG.uniform(0, 3, n), 1 + 10.0 ** RNG.uniform(-16, 0, n),
                        1 - 10.0 ** RNG.uniform(-16, 0, n), 2.0 ** 28 * RNG.uniform(0.5, 2, n)])
    return np.concatenate([x, -x])


@needs_cc
@pytest.mark.parametrize("op, helper, exact", [("arcsinh", "xc_asinh", mpmath.asinh),
                                                ("arccosh", "xc_acosh", mpmath.acosh),
                                                ("arctanh", "xc_atanh", mpmath.atanh)])
def test_c_inverse_hyperbolic_by_one_log(op, helper, exact):
    f = compile_expr(f"{op}(x)", backend="c")
    assert f"{helper}(" in f.source and not re.search(rf"\ba{op[3:]}\(", f.source)   # (not libm's)
    x = _wide(150)
    with np.errstate(all="ignore"):
        got, numpy = f(x), getattr(np, op)(x)
        edge, numpy_edge = f(EDGES), getattr(np, op)(EDGES)
    assert np.array_equal(np.isnan(got), np.isnan(numpy))
    for v, g in zip(x[~np.isnan(got)], got[~np.isnan(got)]):
        with mpmath.workdps(40):
            w = exact(mpmath.mpf(float(v)))
        if mpmath.isinf(w):
            assert g == float(w)
        elif w != 0:
            assert abs(g - float(w)) <= 3 * np.spacing(abs(float(w))), (op, v, g, w)
    ok = np.isnan(numpy_edge)
    assert np.array_equal(np.isnan(edge), ok)
    assert np.array_equal(np.signbit(edge[~ok]), np.signbit(numpy_edge[~ok]))
    np.testing.assert_allclose(edge[~ok], numpy_edge[~ok], rtol=4.5e-16, atol=0)


@needs_cc
@pytest.mark.parametrize("expr", ["log(x + sqrt(x**2 + 1))", "log(x + sqrt(x**2 - 1))", "0.5*log((1 + x)/(1 - x))"])
def test_rewritten_inverse_hyperbolics_c_matches_numpy(expr):
    x = RNG.uniform(1.2, 5, 400) * RNG.choice([-1.0, 1.0], 400) if "- 1))" not in expr else RNG.uniform(1.2, 50, 400)
    x = x if "1 - x" not in expr else x / 6.0
    (vc, (gc,)), (vn, (gn,)) = (compile_grad(expr, backend=b, stable=True)(x) for b in ("c", "numpy"))
    np.testing.assert_allclose(vc, vn, rtol=1e-15, atol=0)
    np.testing.assert_allclose(gc, gn, rtol=1e-15, atol=0)


def _both_branches(x):
    with np.errstate(all="ignore"):
        return np.where(x > -_LN2, np.log(-_expm1(x)), _log1p(-np.exp(x)))


def test_log1mexp_one_branch_and_the_rest_redone():
    near = -RNG.uniform(0, 0.69, 3000)
    far = -RNG.uniform(0.7, 750, 3000)
    edges = np.array([-np.inf, -800.0, -745.5, -1e-300, -0.0, 0.0, 5e-324, 1.0, np.inf, np.nan, -_LN2,
                      np.nextafter(-_LN2, 0.0)])
    for x in (np.concatenate([near, far[:100], edges]), np.concatenate([far, near[:100], edges]), near, far,
              np.concatenate([near, far]), edges, np.tile(np.concatenate([near, far]), 40)):
        with np.errstate(all="ignore"):
            got = runtime.log1mexp(x)
            alone = np.array([runtime.log1mexp(v) for v in x[:300]])
        want = _both_branches(x)
        assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
        assert np.array_equal(got[:300], alone, equal_nan=True)
    assert runtime.log1mexp(np.float32(-1.0)).dtype == np.float32
    assert runtime.log1mexp(np.array([-3.0, -0.1], np.float32)).dtype == np.float32
