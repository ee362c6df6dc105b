"""The NumPy backend computes log1mexp(x) and its slope log1mexp_slope(x) with one
runtime.log1mexp_slopes(x) call (numpy_share_pairs._value_and_slope): within a few ulps of
the two calls it replaces (its value has no branch: -log1p(1/expm1(-x))), and their
values exactly at the specials, on every kind of block, and on both the user's log1mexp
and the stable rewrite of log(1 - exp(x))."""

import numpy as np
import pytest

from exprcompiler import compile_grad, runtime
from exprcompiler.backends import numpy_shares


def _points():
    rng = np.random.default_rng(7)
    edges = [0.0, -0.0, -1e-300, -5e-324, -np.log(2), -np.log(2) * (1 + 2 ** -52), -37.0, -37.5,
             -745.0, -800.0, -np.inf, np.nan, 1e-300, 0.5, np.inf]
    return np.concatenate([edges, -rng.exponential(3.0, 40_000), rng.uniform(-0.7, -0.6, 3000),
                           rng.uniform(-1, 1, 500)])


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("text, kw", [("log(1 - exp(x))", {"stable": True}), ("log1mexp(x)*y + log1mexp(y)", {}),
                                      ("log(-expm1(x))", {"stable": True})])
def test_the_pair_agrees_with_the_two_calls(monkeypatch, text, kw):
    g = compile_grad(text, **kw)
    assert "log1mexp_slopes(" in g.source and "expm1(0.0 -" not in g.source
    x = _points()
    args = [x] if len(g.inputs) == 1 else [x, x[::-1].copy()]
    with np.errstate(all="ignore"):
        paired = g(*args)
    monkeypatch.setattr(numpy_shares, "_value_and_slope", lambda instrs, shared, *op_names: {})
    h = compile_grad(text, **kw)
    assert "log1mexp_slopes(" not in h.source and "log1mexp_slope(" in h.source
    with np.errstate(all="ignore"):
        apart = h(*args)
    scales = [np.abs(apart[0]), *(np.abs(d) for d in apart[1])]
    if len(args) == 2:   # log1mexp(x)*y + log1mexp(y): the sizes of the terms (sums may cancel)
        x, y = args
        with np.errstate(all="ignore"):
            lx, ly = np.abs(runtime.log1mexp(x)), np.abs(runtime.log1mexp(y))
            tx, ty = (np.abs(1.0 / runtime.expm1(0.0 - v)) for v in args)
        scales = [lx * np.abs(y) + ly, np.abs(y) * tx, lx + ty]
    for a, b, scale in zip([paired[0], *paired[1]], [apart[0], *apart[1]], scales):
        special = ~np.isfinite(b)
        np.testing.assert_array_equal(a[special], b[special])   # NaN, ±inf: the same
        # 4.5 ulps: the value within 3 ulps, the expm1 within one, the products' roundings
        with np.errstate(all="ignore"):
            assert (np.abs(a[~special] - b[~special]) <= 1e-15 * scale[~special]).all()


def test_one_point_calls_agree_with_the_paired_batch():
    """A call with numbers takes the one-point variant (no pair): within an ulp of the
    paired batch's values on both of log1mexp's branches."""
    g = compile_grad("log1mexp(x)")
    xs = np.array([-1e-10, -0.3, -np.log(2), -0.7, -3.0, -40.0])
    value, (grad,) = g(xs)
    for k, x in enumerate(xs):
        v, (d,) = g(float(x))
        assert v == pytest.approx(value[k], rel=3e-16) and d == pytest.approx(grad[k], rel=3e-16)
