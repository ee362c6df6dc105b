"""Review of session 49's changes (helper RV): tests for the bugs it found, each failing
before its fix.

* log_softmax(x)[k]'s internal ops (log_softmax_at_parts, log_softmax_at,
  log_softmax_at_vjp) take their key unchecked: softmax_forms._vector_pick hands them
  0 <= k < n of a vector, but a Builder's apply does not. A negative k, a k past the
  end, or a matrix reach the C loops as dst[-1], dst[5], x[k] of a flat row (a heap
  overflow under ASan: c_tensor_softmax._pick writes str(key[0]); for z = 0..4 and
  k = -1 the C value is -4.45, NumPy's -0.45 = log_softmax(z)[4]; for k = 5 NumPy raises
  an IndexError at the call). The builder's index op refuses
  the same keys (IndexError), so these should be refused (or normalized) at build time.
  These tests never run a kernel with such a key: they check the building only, so they
  do not corrupt the test process.
* C log_softmax along the last axis of a matrix (_log_softmax_rows) writes 1.0 into
  row 0's lanes (or past the end) for a later row with a single +inf (below).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import needs_cc
from exprcompiler import compile_expr, runtime
from exprcompiler.trace.ir import Builder, trace_from_builder

REFUSED = (IndexError, ValueError)   # (ShapeError and ExprcIndexError are ValueErrors or IndexErrors)


def _pick_trace(key, shape, op="log_softmax_at"):
    b = Builder()
    z = b.input("z", shape)
    P = b.apply("log_softmax_at_parts", z, key=key, axis=0)
    if op == "log_softmax_at":
        out = b.apply("log_softmax_at", z, P, key=key)
    else:
        out = b.sum(b.apply("log_softmax_at_vjp", P, b.const(1.0), key=key))
    return trace_from_builder(b, [("y", out)])


def _keys_in_range(trace, n):
    """Every key of the pick ops in 0 <= k (< n where n is a number), on a vector."""
    for ins in trace.instrs:
        if ins.op in ("log_softmax_at_parts", "log_softmax_at", "log_softmax_at_vjp"):
            key = dict(ins.attrs)["key"]
            assert key and all(type(k) is int and k >= 0 for k in key), (ins.op, key)
            if n is not None:
                assert max(key) < n, (ins.op, key, n)


@pytest.mark.parametrize("op", ["log_softmax_at", "log_softmax_at_vjp"])
@pytest.mark.parametrize("key, shape, n", [((5,), (5,), 5), ((7,), (5,), 5), ((-6,), (5,), 5),
                                           ((-1,), ("n",), None), ((-2,), ("n",), None)])
def test_a_pick_ops_key_out_of_range_is_refused_at_build(op, key, shape, n):
    """A key the C loops would read or write out of the vector's bounds: refused (as
    Builder.index refuses z[5] of 5), or normalized into 0 <= k < n."""
    try:
        trace = _pick_trace(key, shape, op)
    except REFUSED:
        return
    _keys_in_range(trace, n)


@pytest.mark.parametrize("key, shape", [((0,), (3, 4)), ((1,), (2, 2))])
def test_a_pick_op_on_a_matrix_is_refused_at_build(key, shape):
    """The C emitters index the argument as a vector (at(x, [k]), dim_c(shape[0])): on a
    matrix they read and write past row 0's end as if it were the whole array."""
    with pytest.raises(REFUSED):
        _pick_trace(key, shape)



# -- C log_softmax along the last axis of a matrix, a row with a single +inf ----------------------
# _log_softmax_rows (c_tensor_softmax.py, 9848536) carries over from the pick's kernel the
# pass that sets a single +inf's exp(inf - inf) to its limit 1, written as dst[j] (at(dst,
# ['j']): the first index, so dst[j * row length]) and not dst[row, j]: in a later row with
# a single +inf at column j it writes 1.0 over element (j, 0) of the result, or past the
# array's end where j >= the number of rows (a heap overflow under ASan: X of (2, 5), +inf
# at [1, 4]). These cases keep the stray write inside the array (j < rows).
INF_ROWS = [(np.array([[0.0, 1.0, 2.0], [np.inf, 0.0, 1.0]]), "a single +inf at [1, 0]: (0, 0) set to 1"),
            (np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5], [1.0, np.inf, 2.0]]), "a single +inf at [2, 1]: (1, 0) set to 1"),
            (np.array([[0.5, 1.0, 2.0, -3.0], [0.0, 0.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0],
                       [np.inf, 1.0, np.inf, 2.0], [np.inf, 0.0, -1.0, 7.0]]), "ties of +inf, then a single one")]


@needs_cc
@pytest.mark.parametrize("X, what", INF_ROWS, ids=[w for _, w in INF_ROWS])
@pytest.mark.parametrize("text", ["log_softmax(X)", "log_softmax(X, axis=1)", "log(softmax(X))"])
def test_c_log_softmax_rows_with_a_single_inf_keep_the_other_rows(X, what, text):
    want = compile_expr(text, shapes={"X": X.shape}, stable=True)(X)
    got = compile_expr(text, shapes={"X": X.shape}, stable=True, backend="c")(X)
    # (C's exp is libmvec's: within an ulp of NumPy's, not its bits)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    np.testing.assert_allclose(got, runtime.log_softmax(X, axis=-1), rtol=1e-14, atol=0)
