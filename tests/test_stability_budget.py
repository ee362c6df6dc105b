"""Issue 18's speed budget on accurate ranges: the cheaper forms the NumPy runtime takes
there, checked at their thresholds (both sides, ±0, subnormals, inf, NaN) against
mpmath, on both backends, and for the property the blocked runner relies on: a point's
bits are its own, whatever the other points of its block.

- runtime.log1m_of_diff(x, w), w = 1 - x (log(1 - x) rewritten): log(w) on a block
  whose w are all outside (15/16, 17/16), within 8.3 ulps of log1p(-x) there;
- runtime.expm1_pair / neg_expm1_pair: exp(x) first, then the least x; exp(x) - 1 on
  a block all at or above log 2;
- runtime.sqrt1pm1 and runtime.log1mexp_slopes: the first pass before the reduction.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, runtime
from exprcompiler.runtime_log1p import _W_HIGH, _W_LOW

LN2 = math.log(2.0)
TINY, HUGE = 2.2250738585072014e-308, 1.7976931348623157e308
EDGES = [0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, TINY, -TINY, math.inf, -math.inf, math.nan]


def _near(t: float, k: int = 3) -> list[float]:
    """t and the k floats on each side of it."""
    out, up, down = [t], t, t
    for _ in range(k):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    return out


def _ulps(got: float, exact) -> float:
    """|got - exact| in ulps of the exact value (0 where both are the same special)."""
    if math.isnan(got) or not mpmath.isfinite(exact):
        same = (math.isnan(got) and mpmath.isnan(exact)) or (not math.isnan(got) and got == exact)
        return 0.0 if same else math.inf
    if abs(exact) > HUGE:   # beyond the largest float: inf of its sign
        return 0.0 if got == math.copysign(math.inf, exact) else math.inf
    e = float(exact)
    if e == 0.0:
        return 0.0 if got == 0.0 else math.inf
    return float(abs(mpmath.mpf(got) - exact)) / math.ulp(e)


def _exact(f, x: float):
    """f at x, 60 digits (NaN outside its domain)."""
    if math.isnan(x):
        return mpmath.nan
    with mpmath.workdps(60):
        try:
            v = f(mpmath.mpf(x))
        except (ValueError, ZeroDivisionError):
            return mpmath.nan
        return mpmath.nan if isinstance(v, mpmath.mpc) else v


def _log1p(t):
    return mpmath.nan if t < -1 else (-mpmath.inf if t == -1 else mpmath.log1p(t))


# x where 1 + x is each side of the window's ends, and far from it (w's bounds)
_LOG1P_X = sorted({v for t in (_W_HIGH - 1.0, _W_LOW - 1.0) for v in _near(t)}
                  | {0.1, 10.0, 1e300, -0.5, -0.999, -1.0, -2.0, 2.0 ** -53, 0.0625})


def _blocks_around(x: float, fill: float) -> np.ndarray:
    """x inside a block of 64 points of `fill` (so that the block takes `fill`'s form)."""
    b = np.full(64, fill)
    b[17] = x
    return b


@pytest.mark.parametrize("x", [-v for v in _LOG1P_X] + EDGES)
def test_log1m_of_diff_at_the_window(x):
    """log1m_of_diff(x, 1 - x) (log(1 - x) rewritten) alone and in blocks all above the
    window, all below it, near 1: the same bits for a point in each (its usual block now
    takes np.log(w) with no steps between), within 8.3 ulps of log1p(-x) outside the
    window, about one inside."""
    exact = _exact(lambda t: _log1p(-t), x)
    got = []
    with np.errstate(all="ignore"):
        for fill in (None, -5.0, 0.5, 1e-3):
            xs = np.array([x]) if fill is None else _blocks_around(x, fill)
            w = np.subtract(1.0, xs)
            r = runtime.log1m_of_diff(xs, w)
            got.append(float(r[0] if fill is None else r[17]))
            if np.all(w >= _W_HIGH) or np.all(w <= _W_LOW):   # the block's form: np.log(w), bit for bit
                assert np.array_equal(r, np.log(w), equal_nan=True), (x, fill)
    assert all(np.array_equal(got[0], v, equal_nan=True) for v in got), (x, got)
    bound = 8.3 if not _W_LOW < 1.0 - x < _W_HIGH else 2.0
    assert _ulps(got[0], exact) <= bound, (x, got[0], exact)


_EXPM1_X = sorted({v for t in (LN2, -LN2) for v in _near(t)} | {1.0, 10.0, 709.0, 709.79, 710.0, -40.0, -800.0,
                                                               1e-300, -1e-300, 2.0 ** -54, 0.5})


@pytest.mark.parametrize("negated", [False, True])
@pytest.mark.parametrize("x", _EXPM1_X + EDGES)
def test_expm1_pairs_at_log_2(x, negated):
    """expm1_pair / neg_expm1_pair at their threshold, alone and in blocks of either side:
    the slope np.exp's bits, the value within an ulp and a half of expm1 (-expm1), and a
    point's value the same in every block."""
    pair = runtime.neg_expm1_pair if negated else runtime.expm1_pair
    exact = _exact(lambda t: (-1 if negated else 1) * mpmath.expm1(t), x)
    values = []
    with np.errstate(all="ignore"):
        for fill in (None, 5.0, 0.1, -3.0):
            xs = np.array([x]) if fill is None else _blocks_around(x, fill)
            v, s = pair(xs)
            assert np.array_equal(s, np.exp(xs), equal_nan=True)
            values.append(float(v[0] if fill is None else v[17]))
    assert all(np.array_equal(values[0], v, equal_nan=True) for v in values), (x, values)
    assert _ulps(values[0], exact) <= 1.5, (x, values[0], exact)
    if x == 0.0:   # the signed zero: expm1's, and 0.0 - expm1(x)'s (+0.0 at both)
        assert math.copysign(1.0, values[0]) == (1.0 if negated else math.copysign(1.0, x))


@pytest.mark.parametrize("negated", [False, True])
def test_expm1_pairs_a_point_is_its_own_near_the_threshold(negated):
    """Points each side of log 2 (where exp(x) - 1 and np.expm1 differ in the last bits
    at some): a block of them alone, and each in blocks of the far side and the near
    side, give the same bits (the cheap form only where the point itself is at or
    above log 2)."""
    pair = runtime.neg_expm1_pair if negated else runtime.expm1_pair
    rng = np.random.default_rng(7)
    for lo, hi in ((0.4, LN2), (LN2, 1.0), (-1.0, -LN2), (-LN2, -0.4)):
        xs = rng.uniform(lo, hi, 512)
        alone = pair(xs)[0]
        for fill in (5.0, 0.1, -3.0):
            mixed = np.concatenate([np.full(1000, fill), xs])
            assert np.array_equal(pair(mixed)[0][1000:], alone), (lo, hi, fill)
        one = np.array([pair(np.array([t]))[0][0] for t in xs[:64]])
        assert np.array_equal(one, alone[:64]), (lo, hi)


def _sqrt1pm1(t):
    """sqrt(1 + t) - 1 without its cancellation (inf at inf, NaN below -1)."""
    if t == mpmath.inf:
        return mpmath.inf
    return t / (mpmath.sqrt(1 + t) + 1) if t >= -1 else mpmath.nan


@pytest.mark.parametrize("x", sorted(set(_near(0.25)) | {0.5, 3.0, 1e300, -0.5, -1.0, 1e-300}) + EDGES)
def test_sqrt1pm1_at_its_threshold(x):
    exact = _exact(_sqrt1pm1, x)
    values = []
    with np.errstate(all="ignore"):
        for fill in (None, 1.0, 0.01):
            xs = np.array([x]) if fill is None else _blocks_around(x, fill)
            r = runtime.sqrt1pm1(xs)
            values.append(float(r[0] if fill is None else r[17]))
    assert all(np.array_equal(values[0], v, equal_nan=True) for v in values), (x, values)
    assert _ulps(values[0], exact) <= 6.0, (x, values[0], exact)


@pytest.mark.parametrize("x", sorted(set(_near(-LN2)) | {-0.5, -3.0, -37.0, -700.0, -709.0, -710.0, -745.0,
                                                         -800.0, -1e-300, 1.0}) + EDGES)
def test_log1mexp_slopes_in_blocks(x):
    """log1mexp_slopes (value and slope of log(1 - exp(x))): a point's bits the same alone
    and in blocks of either branch, within a few ulps of mpmath."""
    with np.errstate(all="ignore"):
        rows = []
        for fill in (None, -0.1, -2.0, -720.0):
            xs = np.array([x]) if fill is None else _blocks_around(x, fill)
            v, s = runtime.log1mexp_slopes(xs)
            k = 0 if fill is None else 17
            rows.append((float(v[k]), float(s[k])))
    assert all(np.array_equal(rows[0], r, equal_nan=True) for r in rows), (x, rows)
    if x < 0:
        value = _exact(lambda t: mpmath.log1p(-mpmath.exp(t)) if t < -1 else mpmath.log(-mpmath.expm1(t)), x)
        slope = _exact(lambda t: -1 / mpmath.expm1(-t), x)
        assert _ulps(rows[0][0], value) <= 3.0 and _ulps(rows[0][1], slope) <= 3.0, (x, rows[0])


_COMPILED = {}


def _grad(expr: str, backend: str):
    key = (expr, backend)
    if key not in _COMPILED:
        kw = {"threads": 1} if backend == "c" else {}
        _COMPILED[key] = compile_grad(expr, backend=backend, stable=True, **kw)
    return _COMPILED[key]


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("expr, exact, points", [
    ("log(1 + x)", lambda t: (_log1p(t), 1 / (1 + t)), [v for v in _LOG1P_X if v > -1]),
    ("log(1 - x)", lambda t: (_log1p(-t), -1 / (1 - t)), [-v for v in _LOG1P_X if v > -1]),
    ("exp(x) - 1", lambda t: (mpmath.expm1(t), mpmath.exp(t)), _EXPM1_X),
    ("1 - exp(x)", lambda t: (-mpmath.expm1(t), -mpmath.exp(t)), _EXPM1_X),
    ("sqrt(1 + x) - 1", lambda t: (_sqrt1pm1(t), 1 / (2 * mpmath.sqrt(1 + t))), _near(0.25) + [0.5, 3.0]),
])
def test_rewritten_forms_on_both_backends(backend, expr, exact, points):
    """The rewritten formulas at those thresholds, in a batch of 10⁵ points of the accurate
    range (so the NumPy backend runs them by blocks, and takes the cheap forms there) and
    alone: value and gradient within 1e-13 relative (the catalogue's goal) where the
    exact result is a normal float, and each point's bits the same in both calls."""
    g = _grad(expr, backend)
    fill = 5.0
    big = np.full(10 ** 5, fill)
    at = np.arange(len(points)) * 997 + 11
    big[at] = points
    with np.errstate(all="ignore"):
        v, (d,) = g(big)
        for k, t in zip(at, points):
            v1, (d1,) = g(np.array([t]))
            assert np.array_equal(v1[0], v[k], equal_nan=True) and np.array_equal(d1[0], d[k], equal_nan=True)
            ev, ed = _exact(lambda u: exact(u)[0], t), _exact(lambda u: exact(u)[1], t)
            for got, e in ((float(v[k]), ev), (float(d[k]), ed)):
                if mpmath.isfinite(e) and e != 0 and abs(e) >= TINY and abs(e) <= 1.7e308:
                    assert abs(mpmath.mpf(got) - e) <= 1e-13 * abs(e), (expr, backend, t, got, e)
