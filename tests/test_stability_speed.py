"""The stable forms' cheaper paths where the naive form is accurate (runtime_elementwise):
sqrt1pm1 takes sqrt(1 + x) - 1 from x = 1/4, the quotient below; checked against
mpmath, the naive form's bits, each point alone in mixed blocks, the specials, float32,
and the gradient of the rewritten sqrt(1 + x) - 1. (tanh's derivative, 1 - t² where
that is accurate: tests/test_runtime_loops.py.)"""

import mpmath
import numpy as np

from exprcompiler import compile_grad, runtime

SPECIALS = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, 0.25, np.nextafter(0.25, 0.0), -1.0, -2.0, 1e308,
                     np.inf, -np.inf, np.nan])


def _exact(x: float) -> float:
    with mpmath.workdps(40):   # (the quotient: the difference cancels in mpmath too)
        x = mpmath.mpf(x)
        return float(x / (mpmath.sqrt(1 + x) + 1))


def test_sqrt1pm1_naive_from_a_quarter_quotient_below():
    rng = np.random.default_rng(12)
    below = np.concatenate([rng.uniform(-1, 0.25, 500), 10.0 ** rng.uniform(-300, -1, 200)])
    above = np.concatenate([rng.uniform(0.25, 3, 500), 10.0 ** rng.uniform(0, 300, 200)])
    for x in (np.concatenate([below, above[:30], SPECIALS]), np.concatenate([above, below[:30], SPECIALS]),
              above, below, SPECIALS):
        with np.errstate(all="ignore"):
            got = runtime.sqrt1pm1(x)
            alone = np.array([runtime.sqrt1pm1(v) for v in x])
            naive = np.sqrt(1.0 + x) - 1.0
            quotient = x / (np.sqrt(1.0 + x) + 1.0)
        assert np.array_equal(got, alone, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(alone))
        up = x >= 0.25
        assert np.array_equal(got[up], naive[up])
        low = np.isfinite(x) & ~up
        assert np.array_equal(got[low], quotient[low], equal_nan=True)
        finite = np.isfinite(x) & (x >= -1)
        want = np.array([_exact(v) for v in x[finite]])
        nonzero = np.abs(want) >= np.finfo(float).tiny   # (a subnormal result has fewer digits)
        err = np.abs(got[finite][nonzero] - want[nonzero]) / np.abs(want[nonzero])
        assert err.max() <= 1.3e-15
        assert np.all(err[~up[finite][nonzero]] <= 3.5e-16)
    with np.errstate(all="ignore"):
        edge = runtime.sqrt1pm1(SPECIALS)
    assert np.array_equal(edge[-6:], [-1.0, np.nan, 1e154, np.inf, np.nan, np.nan], equal_nan=True)
    assert np.array_equal(np.signbit(edge[:2]), [False, True])
    x32 = rng.uniform(-0.9, 3, 1000).astype(np.float32)
    got32 = runtime.sqrt1pm1(x32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, [_exact(v) for v in x32.astype(float)], rtol=1e-6)


def test_sqrt1pm1_gradient_against_mpmath():
    """The rewritten sqrt(1 + x) - 1 and its derivative 1/(2 sqrt(1 + x)), on both sides
    of 1/4, both modes."""
    x = np.concatenate([np.linspace(-0.9, 3, 401), [1e-300, 0.25, 1e6]])
    with mpmath.workdps(40):
        want_d = [float(1 / (2 * mpmath.sqrt(1 + mpmath.mpf(v)))) for v in x]
    for mode in ("reverse", "forward"):
        value, (d,) = compile_grad("sqrt(1 + x) - 1", stable=True, mode=mode)(x)
        assert np.array_equal(value, runtime.sqrt1pm1(x))
        np.testing.assert_allclose(d, want_d, rtol=1e-15)
