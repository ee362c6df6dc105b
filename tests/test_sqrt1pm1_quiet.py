"""runtime.sqrt1pm1 on a block all at or above 1/4 (sqrt(1 + x) - 1 as it is): no point can
raise there, so no np.errstate is entered; elsewhere the errors stay silenced, and the
values are the same either way."""

import warnings

import numpy as np
import pytest

from exprcompiler import runtime

RNG = np.random.default_rng(31)


@pytest.mark.parametrize("x", [RNG.uniform(0.25, 3.0, 3000), np.array([0.25, 1e300, np.inf]),
                               RNG.uniform(0.5, 3.0, 3000).astype(np.float32), np.array(2.0)])
def test_no_errstate_on_a_block_at_or_above_a_quarter(monkeypatch, x):
    entered = []
    real = np.errstate
    monkeypatch.setattr(np, "errstate", lambda **kw: entered.append(kw) or real(**kw))
    with real(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = runtime.sqrt1pm1(x)
    assert not entered
    assert got.dtype == x.dtype and got.shape == x.shape
    with real(all="ignore"):
        assert np.array_equal(got, np.sqrt(x + x.dtype.type(1.0)) - x.dtype.type(1.0))


def test_other_blocks_stay_silenced_with_their_values():
    x = np.array([-2.0, -1.0, -0.0, 1e-20, 0.1, 0.25, 3.0, np.inf, np.nan])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = runtime.sqrt1pm1(x)
    assert np.isnan(got[0]) and got[1] == -1.0 and got[2] == 0.0 and np.signbit(got[2])
    assert got[3] == 5e-21 and got[4] == pytest.approx(np.sqrt(1.1) - 1.0, rel=1e-15)
    assert got[5] == np.sqrt(1.25) - 1.0 and got[6] == 1.0 and got[7] == np.inf and np.isnan(got[8])
