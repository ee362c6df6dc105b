"""runtime.log1p and runtime.expm1 on blocks all on one side (runtime_log1p: the
one-reduction fast paths), with NumPy's log1p and expm1 loops taken as scalar and as
SIMD (ufunc_loops.SIMD, whatever this machine's are): each point gets the bits it gets
alone or among other points, NumPy's values within about an ulp (expm1: np.expm1's own
below log 2), and the special values that send a block back to the general path (±0,
-1, ±inf, NaN, a point just below log 2) come out exactly as NumPy's."""

import numpy as np
import pytest

from exprcompiler import runtime, ufunc_loops


@pytest.fixture(autouse=True, params=["scalar", "simd"])
def _loops(request, monkeypatch):
    for name in ufunc_loops.LOOPS:
        monkeypatch.setitem(ufunc_loops.SIMD, name, request.param == "simd")

LN2 = 0.6931471805599453
RNG = np.random.default_rng(11)
ONE_SIDED = {   # blocks that take the fast path, and the values that must not
    "log1p": ([RNG.uniform(0.1, 10, 5000), -RNG.uniform(1e-3, 0.9, 5000), 10.0 ** RNG.uniform(-300, 300, 5000)],
              [0.0, -0.0, -1.0, np.inf, np.nan, -2.0, 5e-324]),
    "expm1": ([RNG.uniform(LN2, 700, 5000), np.full(7, LN2), RNG.uniform(0.7, 1.0, 5000), RNG.uniform(0.5, LN2, 50)],
              [np.nextafter(LN2, 0.0), 0.0, -0.0, np.nan, np.inf, -np.inf, 710.0, -1.0]),
}


@pytest.mark.parametrize("name", sorted(ONE_SIDED))
def test_one_sided_blocks_give_each_point_its_own_bits(name):
    f, ref = getattr(runtime, name), getattr(np, name)
    blocks, specials = ONE_SIDED[name]
    for block in blocks:
        for extra in [None, *specials]:
            x = block.copy() if extra is None else np.concatenate([block, [extra]])
            with np.errstate(all="ignore"):
                got, want = f(x), ref(x)
                alone = np.array([f(np.array([v]))[0] for v in x[-50:]])
            assert np.array_equal(got[-50:], alone, equal_nan=True), (name, extra)
            special = ~np.isfinite(want) | (want == 0)
            assert np.array_equal(got[special], want[special], equal_nan=True), (name, extra)
            assert np.array_equal(np.signbit(got[special]), np.signbit(want[special])), (name, extra)
            finite = ~special
            assert np.all(np.abs(got[finite] - want[finite]) <= 2.5e-16 * np.abs(want[finite])), (name, extra)
            if name == "expm1":
                near = np.abs(x) < LN2
                assert np.array_equal(got[near], want[near], equal_nan=True), extra


@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran", "0-d"])
def test_redo_writes_the_masked_points_only_whatever_the_layout(layout):
    """runtime_blocks._redo: r[mask] = f(x[mask]) through r's flat view where r is
    C-contiguous, np.put elsewhere; the other points untouched."""
    from exprcompiler.runtime_blocks import _redo
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 8))
    x = rng.standard_normal((6, 8))
    if layout == "strided":
        base, x = base[:, ::2], x[:, ::2]
    elif layout == "fortran":
        base, x = np.asfortranarray(base), np.asfortranarray(x)
    elif layout == "0-d":
        base, x = np.array(1.5), np.array(-2.0)
    if layout == "strided":
        r = np.zeros((6, 8))[:, ::2]
        r[...] = base
    else:
        r = base.copy(order="K")
    assert r.flags.c_contiguous == (layout in ("contiguous", "0-d"))
    mask = x > 0 if layout != "0-d" else np.array(True)
    want = np.where(mask, np.exp(x), base)
    _redo(r, mask, np.exp, x)
    np.testing.assert_array_equal(r, want)
