"""The C backend's arcsinh (c_special.xc_asinh): log(u) for u = |x| + hypot(1, x) rounded,
plus what u lost, with the one division shared with the slope's 1/hypot(1, x), so that
no division waits before the log. Its values and slopes against mpmath over wide ranges
and at the IEEE edges, in float64 and float32, and the VM's bits against the kernel's."""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends import c_build

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

RNG = np.random.default_rng(28)
BIG = 2.0 ** 28   # from here on, log(2|x|) = log(|x|) + ln 2
EDGES = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-310, 2.0 ** -26, 1e-8, 0.5, 1.0, -1.0, 10.0,
                  np.nextafter(BIG, 0.0), BIG, np.nextafter(BIG, np.inf), 1e154, 1.5e154, 1e300, -1e300,
                  np.inf, -np.inf, np.nan])


def _code(source: str) -> str:
    return re.sub(r"/\*.*?\*/", "", source, flags=re.S)


def _helper(source: str, name: str) -> str:
    return re.search(rf"static inline (?:XC_ALWAYS )?(?:double|float) {name}\(.*?\n}}", _code(source), re.S).group(0)


def _bands(n: int) -> np.ndarray:
    """Both signs of magnitudes from 1e-300 to 1e300, dense where the value is near its
    argument (below 1) and around 2^28."""
    x = np.concatenate([10.0 ** RNG.uniform(-300, 300, n), 10.0 ** RNG.uniform(-9, 0, n), RNG.uniform(0, 3, n),
                        RNG.uniform(3, 1e4, n), BIG * RNG.uniform(0.25, 4, n)])
    return np.concatenate([x, -x])


def _worst_ulps(got, xs, exact) -> float:
    """The largest |got - exact| in units of the last place of the exact value (points
    where that is 0 or below the normal range left out)."""
    worst = 0.0
    with mpmath.workdps(40):
        for x, y in zip(xs.tolist(), np.asarray(got, dtype=np.float64).tolist()):
            r = exact(mpmath.mpf(x))
            if r != 0 and abs(r) >= np.finfo(np.float64).tiny:
                worst = max(worst, float(abs(y - r)) / math.ulp(float(r)))
    return worst


def test_asinh_divides_once_and_shares_the_slopes_reciprocal():
    g = compile_grad("arcsinh(x)", backend="c")
    asinh, hypot = _helper(g.source, "xc_asinh"), _helper(g.source, "xc_hypot1_shared")
    assert asinh.count("/") == 1 and "1.0 / xc_select(big, a, h)" in asinh
    # the slope's denominator is the same selection of the same square root, so gcc's
    # common subexpressions give the kernel one division for value and slope
    assert "xc_select(a > 268435456.0, a, sqrt(1.0 + s))" in hypot and "h = sqrt(1.0 + s)" in asinh
    assert "big = a > 268435456.0" in asinh


def test_asinh_and_its_slope_against_mpmath():
    xs = _bands(400)
    with np.errstate(all="ignore"):
        v, (d,) = compile_grad("arcsinh(x)", backend="c")(xs)
    assert _worst_ulps(v, xs, mpmath.asinh) <= 1.9
    assert _worst_ulps(d, xs, lambda x: 1 / mpmath.sqrt(1 + x * x)) <= 2.0


def test_asinh_in_float32_against_mpmath():
    xs = np.concatenate([10.0 ** RNG.uniform(-40, 38, 1500), RNG.uniform(0, 3, 1500)]).astype(np.float32)
    xs = np.concatenate([xs, -xs])
    got = np.asarray(compile_expr("arcsinh(x)", backend="c", dtype="float32")(xs), dtype=np.float64)
    worst, eps = 0.0, float(np.finfo(np.float32).eps)
    with mpmath.workdps(30):
        for x, y in zip(xs.tolist(), got.tolist()):
            r = mpmath.asinh(mpmath.mpf(x))
            if abs(r) >= np.finfo(np.float32).tiny:
                worst = max(worst, float(abs((y - r) / r)) / eps)
    assert worst <= 2.5   # (the division-first form: 2.96)


def test_asinh_at_the_edges():
    f = compile_expr("arcsinh(x)", backend="c")
    with np.errstate(all="ignore"):
        got, numpy = f(EDGES), np.arcsinh(EDGES)
    assert np.array_equal(np.isnan(got), np.isnan(numpy))
    ok = ~np.isnan(numpy)
    assert np.array_equal(np.signbit(got[ok]), np.signbit(numpy[ok]))   # -0.0 at -0.0
    np.testing.assert_allclose(got[ok], numpy[ok], rtol=2.3e-16, atol=0)
    assert got[2] == 5e-324 and got[4] == 1e-310 and got[-3] == np.inf and got[-2] == -np.inf
    _, (d,) = compile_grad("arcsinh(x)", backend="c")(EDGES)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(d, 1 / np.hypot(1.0, EDGES), rtol=4.5e-16, atol=0)


def test_the_vm_gives_the_kernels_bits():
    xs = np.concatenate([_bands(64), EDGES, EDGES[::-1]])
    with np.errstate(all="ignore"):
        c = compile_grad("arcsinh(x) + log(x + sqrt(x**2 + 1))", backend="c", stable=True)(xs)
        vm = compile_grad("arcsinh(x) + log(x + sqrt(x**2 + 1))", backend="vm", stable=True)(xs)
    np.testing.assert_array_equal(c[0], vm[0])
    np.testing.assert_array_equal(c[1][0], vm[1][0])
