"""The NumPy backend computes log1mexp(x) and the expm1(0.0 - x) of its derivative with
one runtime.log1mexp_pair(x) call (numpy_shares._log1mexp_pairs): the same bits as the
two calls it replaces, on every kind of block, and on both the user's log1mexp and the
stable rewrite of log(1 - exp(x))."""

import numpy as np
import pytest

from exprcompiler import compile_grad
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
def test_the_pair_gives_the_two_calls_bits(monkeypatch, text, kw):
    g = compile_grad(text, **kw)
    assert "log1mexp_pair(" in g.source and "expm1(0.0 -" not in g.source
    x = _points()
    args = [x] if len(g.inputs) == 1 else [x, x[::-1].copy()]
    with np.errstate(all="ignore"):
        paired = g(*args)
    monkeypatch.setattr(numpy_shares, "_log1mexp_pairs", lambda instrs, shared: {})
    h = compile_grad(text, **kw)
    assert "log1mexp_pair(" not in h.source
    with np.errstate(all="ignore"):
        apart = h(*args)
    np.testing.assert_array_equal(_bits(paired[0]), _bits(apart[0]))
    for a, b in zip(paired[1], apart[1]):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_one_point_calls_agree_with_the_paired_batch():
    """A call with numbers takes the one-point variant (no pair): within an ulp of the
    paired batch's values on both of log1mexp's branches."""
    g = compile_grad("log1mexp(x)")
    xs = np.array([-1e-10, -0.3, -np.log(2), -0.7, -3.0, -40.0])
    value, (grad,) = g(xs)
    for k, x in enumerate(xs):
        v, (d,) = g(float(x))
        assert v == pytest.approx(value[k], rel=3e-16) and d == pytest.approx(grad[k], rel=3e-16)
