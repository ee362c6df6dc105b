"""runtime.logaddexp_rows, logaddexp's value and its two partials in one call: the naive
form's bits where a and b are both in its range (whatever the other points of the
array), the stable form's partials elsewhere, each within a few ulps of mpmath, and
np.logaddexp's values at the infinities, NaNs and ties (partials 0.5 at a tie)."""

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import runtime
from exprcompiler.runtime_blocks import _BLOCK

RNG = np.random.default_rng(18)
LO, HI = -708.0, 709.0   # float64's naive range (runtime_exps._naive_range)
OUTSIDE = [-1000.0, -708.5, 709.5, 800.0, np.inf, -np.inf, np.nan]


def _naive(a, b):
    ea, eb = np.exp(a), np.exp(b)
    s = ea + eb
    return np.log(s), ea / s, eb / s


def _same(x, y):
    np.testing.assert_array_equal(np.asarray(x).view(np.int64), np.asarray(y).view(np.int64))


def test_points_in_range_take_the_naive_form_whatever_the_other_points():
    a = np.concatenate([RNG.uniform(-5, 5, 300), RNG.uniform(LO, HI, 300), [LO, HI, LO, HI, 0.0, -0.0, 3.0]])
    b = np.concatenate([RNG.uniform(-5, 5, 300), RNG.uniform(LO, HI, 300), [LO, HI, HI, LO, -0.0, 0.0, 3.0]])
    want = _naive(a, b)
    for g, w in zip(runtime.logaddexp_rows(a, b), want):
        _same(g, w)
    back = [np.ascontiguousarray(x[::-1]) for x in (a, b)]   # (np.exp on negative strides is libm's)
    for g, w in zip(runtime.logaddexp_rows(*back), want):
        _same(g[::-1], w)
    # among points out of range: one in three, one in a hundred, all but a few
    for step in (3, 100):
        x, y = a.copy(), b.copy()
        x[::step] = np.resize(OUTSIDE, x[::step].size)
        keep = np.ones(a.size, bool)
        keep[::step] = False
        with np.errstate(all="ignore"):
            got = runtime.logaddexp_rows(x, y)
        for g, w in zip(got, want):
            _same(g[keep], w[keep])
    for k in range(0, a.size, 37):   # each point alone, as an array and as a number
        one = runtime.logaddexp_rows(a[k:k + 1], b[k:k + 1])
        scalar = runtime.logaddexp_rows(a[k], b[k])
        for g, s, w in zip(one, scalar, want):
            assert g[0] == s == w[k]


def _exact(a: float, b: float):
    with mpmath.workdps(60):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        m = max(a, b)
        v = m + mpmath.log(mpmath.exp(a - m) + mpmath.exp(b - m))
        return v, mpmath.exp(a - v), mpmath.exp(b - v)


@pytest.mark.parametrize("lo, hi", [(-5, 5), (-700, 700), (-1000, 1000), (-720, -690), (700, 712), (-760, -700)])
def test_within_a_few_ulps_of_mpmath(lo, hi):
    a, b = RNG.uniform(lo, hi, 150), RNG.uniform(lo, hi, 150)
    a[:3], b[:3] = [-720.0, 1e-300, -1e-5], [-690.0, -708.5, -10.0]   # a subnormal exp(a) for a normal partial; near v = 0
    v, p, q = runtime.logaddexp_rows(a, b)
    for k in range(a.size):
        V, P, Q = _exact(a[k], b[k])
        # the value: an absolute error of a few ε where it is near 0 (the naive form's, as the stable form's)
        assert abs(mpmath.mpf(v[k]) - V) <= 4.5e-16 * max(abs(V), 1), (a[k], b[k], v[k], V)
        for got, want in ((p[k], P), (q[k], Q)):
            if want >= np.finfo(float).tiny:   # (below it both forms underflow)
                assert abs(mpmath.mpf(got) - want) <= 1e-15 * want, (a[k], b[k], got, want)
            else:
                assert got <= 2 * np.finfo(float).tiny


def test_infinities_nans_and_ties_as_numpy():
    values = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -800.0, 800.0, LO, HI]
    a, b = (g.ravel() for g in np.meshgrid(values, values))
    with np.errstate(all="ignore"):
        v, p, q = runtime.logaddexp_rows(a, b)
        want = np.logaddexp(a, b)
    nan = np.isnan(a) | np.isnan(b)
    assert np.isnan(v[nan]).all() and np.isnan(p[nan]).all() and np.isnan(q[nan]).all()
    special = ~nan & ~((a >= LO) & (a <= HI) & (b >= LO) & (b <= HI))
    _same(v[special], want[special])   # signed zeros too: +0.0 at (-0.0, -inf)
    tie = a == b
    assert (p[tie] == 0.5).all() and (q[tie] == 0.5).all()
    with np.errstate(all="ignore"):
        sig = 1.0 / (1.0 + np.exp(b - a))
        other = ~nan & ~tie & ~np.isfinite(a - b)
    np.testing.assert_array_equal(p[other], sig[other])   # 0 and 1 where one side is infinite
    np.testing.assert_array_equal(p[~nan] + q[~nan], 1.0)


def test_out_of_range_partials_are_the_stable_forms():
    """Where a point is out of range the partials are sigmoid_pair_e's bits, also where the
    smaller exp underflows (to 0 below -746, to a subnormal above)."""
    a = np.concatenate([RNG.uniform(-1000, 1000, 2000), [0.0, 0.0, 0.0, -1.0], RNG.uniform(-800, -709, 100)])
    b = np.concatenate([RNG.uniform(-1000, 1000, 2000), [-720.0, -746.5, -745.0, -2000.0], RNG.uniform(-800, -709, 100)])
    out = ~((a >= LO) & (a <= HI) & (b >= LO) & (b <= HI))
    v, p, q = runtime.logaddexp_rows(a, b)
    d = a - b
    s, t = runtime.sigmoid_pair_e(d, runtime.exp_neg_abs(d))
    _same(p[out], s[out])
    _same(q[out], t[out])
    assert q[2001] == 0.0 and 0.0 < q[2002] < np.finfo(float).tiny and v[2001] == 0.0
    np.testing.assert_allclose(v, np.logaddexp(a, b), rtol=4.5e-16, atol=4.5e-16)
    # where max(a, b) is near 0, the other exp is what log1p keeps and 1 + e drops
    x, y = np.array([0.0, 1e-300, -1e-300, 2.0 ** -790, 3.0]), np.array([-720.0, -708.5, -709.0, -2000.0, -720.0])
    v = runtime.logaddexp_rows(x, y)[0]
    want = runtime.logaddexp_e(x, y, runtime.exp_neg_abs(x - y))
    _same(v[:4], want[:4])
    assert v[0] == np.logaddexp(0.0, -720.0) > 0.0 and v[1] == 1e-300 + math.exp(-708.5) and v[4] == 3.0


def test_large_arrays_float32_and_broadcasting():
    n = 2 * _BLOCK + 1000   # run by blocks
    a, b = RNG.uniform(-800, 800, n), RNG.uniform(-5, 5, n)
    a[: n // 2] = RNG.uniform(-5, 5, n // 2)   # blocks all in range, and blocks of both
    whole = runtime.logaddexp_rows(a, b)
    for g, k in zip(whole, range(3)):
        assert g.shape == (n,)
        for start in (0, _BLOCK - 7, n - 500):
            _same(g[start:start + 300], runtime.logaddexp_rows(a[start:start + 300], b[start:start + 300])[k])
    a32, b32 = a[:5000].astype(np.float32), b[:5000].astype(np.float32)
    rows32 = runtime.logaddexp_rows(a32, b32)
    rows64 = runtime.logaddexp_rows(a32.astype(float), b32.astype(float))
    for g, w in zip(rows32, rows64):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=3e-7, atol=2e-7)   # (the value near 0: absolute)
    v, p, q = runtime.logaddexp_rows(a[:100], 1.5)
    np.testing.assert_allclose(v, np.logaddexp(a[:100], 1.5), rtol=4.5e-16)
    _same(q, runtime.logaddexp_rows(np.full(100, 1.5), a[:100])[1])


def test_expm1_pair_reuses_the_exp_of_a_mostly_far_block():
    x = np.concatenate([RNG.uniform(1, 8, 3000), RNG.uniform(-0.5, 0.5, 200)])
    value, slope = runtime.expm1_pair(x)
    _same(value, runtime.expm1(x))
    _same(slope, np.exp(x))
    assert math.isclose(value[-1], math.expm1(x[-1]), rel_tol=4.5e-16)


def test_a_point_near_zero_out_of_range_keeps_its_digits_beside_nans():
    """logaddexp(0, -710) = e^-710 (log1p's digit, which log(1 + e) drops): redone by the
    stable form whatever else the block holds, a NaN or an infinity included (a NaN
    made the block's test for such points fail)."""
    want = float(np.logaddexp(0.0, -710.0))
    assert want > 0
    for others in ([], [np.nan], [np.inf], [-np.inf, 3.0], [np.nan, np.inf, 1.0]):
        a = np.array([0.0, *others])
        b = np.array([-710.0, *(1.0 for _ in others)])
        for x, y, first in ((a, b, 1), (b, a, 2)):
            v, p, q = runtime.logaddexp_rows(x, y)
            assert v[0] == want and (p, q)[first - 1][0] == 1.0, (others, v[0])
