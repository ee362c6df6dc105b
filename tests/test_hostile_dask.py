"""Dask arrays with chunks of no rows (what a filter or a concatenation leaves): a mean
over the rows must still be the mean of the data, not NaN from the empty chunk's own
mean (0 rows, weighted by 0)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("dask")
import dask  # noqa: E402
import dask.array as da  # noqa: E402

from exprcompiler import compile_grad  # noqa: E402
from exprcompiler.driver.minimize import minimize  # noqa: E402

SHAPES = {"X": ("n", 3), "w": (3,), "y": ("n",)}
RNG = np.random.default_rng(7)
X, Y, W = RNG.random((10, 3)), RNG.random(10), np.array([0.5, -1.0, 2.0])


def chunked(rows):
    return da.from_array(X, chunks=(rows, 3)), da.from_array(Y, chunks=(rows,))


@pytest.mark.parametrize("rows", [(0, 10), (10, 0), (0, 3, 0, 7, 0)])
@pytest.mark.parametrize("expr, wrt", [
    ("mean((X @ w - y)**2)", ["w"]),        # a mean: each chunk weighted by its rows
    ("mean((X @ w - y)**2)", ["w", "X"]),   # and a gradient with the rows axis
    ("sum((X @ w - y)**2)", ["w", "X"]),    # a sum
])
def test_chunks_of_no_rows_add_nothing(rows, expr, wrt):
    f = compile_grad(expr, wrt=wrt, shapes=SHAPES)
    value, grads = f(X, W, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (NumPy's "mean of empty slice" is the symptom)
        got_value, got_grads = dask.compute(f(*chunked(rows)[:1], W, chunked(rows)[1]), scheduler="sync")[0]
    assert got_value == pytest.approx(value, rel=1e-12)
    for got, want in zip(got_grads, grads):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rows", [(0,), (0, 0), (0, 0, 0)])
def test_data_of_no_rows_at_all_gives_what_it_gives_in_memory(rows):
    # the mean of nothing is NaN, its gradient 0 (NumPy's answer in memory), however
    # many empty chunks hold the nothing
    f = compile_grad("mean((X @ w - y)**2)", wrt=["w", "X"], shapes=SHAPES)
    empty_x, empty_y = np.empty((0, 3)), np.empty(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = f(empty_x, W, empty_y)
        got = dask.compute(f(da.from_array(empty_x, chunks=(rows, 3)), W, da.from_array(empty_y, chunks=(rows,))),
                           scheduler="sync")[0]
    assert np.isnan(got[0]) and np.isnan(want[0])
    np.testing.assert_array_equal(got[1][0], want[1][0])  # zeros, not 0/0
    assert got[1][1].shape == want[1][1].shape == (0, 3)


def test_minimize_on_data_with_an_empty_chunk():
    data_x, data_y = chunked((0, 4, 0, 6))
    with dask.config.set(scheduler="sync"):
        result = minimize("mean((X @ w + b - y)**2)", {"w": np.zeros(3), "b": 0.0},
                          data={"X": data_x, "y": data_y}, shapes=SHAPES)
    in_memory = minimize("mean((X @ w + b - y)**2)", {"w": np.zeros(3), "b": 0.0},
                         data={"X": X, "y": Y}, shapes=SHAPES)
    assert np.isfinite(result.f) and result.f == pytest.approx(in_memory.f, rel=1e-6, abs=1e-12)
    np.testing.assert_allclose(result.x, in_memory.x, rtol=1e-6)
