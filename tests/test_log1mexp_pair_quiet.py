"""runtime.log1mexp_pair where NumPy's expm1 and log1p loops are SIMD: its branch-free
-log1p(1/expm1(-x)) raises nothing, with no np.errstate entered, from x = -708 up to minus
the least normal float, and beyond that range is silenced and its points redone."""

import math
import warnings

import numpy as np
import pytest

from exprcompiler import runtime, ufunc_loops

RNG = np.random.default_rng(41)


@pytest.fixture
def simd(monkeypatch):
    for name in ("log1p", "expm1"):
        monkeypatch.setitem(ufunc_loops.SIMD, name, True)


@pytest.mark.parametrize("hi", [-1e-17, -1e-300, -3e-308])
def test_no_errstate_up_to_minus_the_least_normal(simd, monkeypatch, hi):
    """A block of both sides from -708 to just below minus the least normal float raises
    nothing, with no np.errstate entered (log1p(-1), where exp(x) rounds to 1, is the
    branches' only)."""
    x = np.r_[RNG.uniform(-707.0, -0.01, 2000), hi]
    entered = []
    real = np.errstate
    monkeypatch.setattr(np, "errstate", lambda **kw: entered.append(kw) or real(**kw))
    with real(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value, _ = runtime.log1mexp_pair(x)
    assert not entered
    assert value[-1] == pytest.approx(math.log(-hi), rel=1e-15)


def test_errstate_below_the_quiet_range(simd):
    """Beyond it the form is silenced, and its points redone: -inf at 0, log(t) where 1/t
    overflows, -exp(x) where t does."""
    x = np.r_[RNG.uniform(-5.0, -0.1, 100), -1e-310, -0.0, -746.0]
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value, _ = runtime.log1mexp_pair(x)
    assert value[-3] == np.log(1e-310) and np.isneginf(value[-2])
    assert value[-1] == 0.0 and np.signbit(value[-1])
