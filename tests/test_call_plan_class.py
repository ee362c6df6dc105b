"""The call plan as the compiled object's own __call__ (compiled_call._planned, call_plan.py):
after the first call, a tensor function's class is a subclass of its own whose
__call__ is the plan; the plan's out= fills the caller's arrays as the general path
does, refuses what it refuses, and results are checked at the first call of each
shape tuple.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from exprcompiler import api, compile_expr, compile_grad

LSQ = "0.5 * sum((X @ w - y)**2)"
SHAPES = {"X": ("n", 3), "w": (3,), "y": ("n",)}


def _data(n=5):
    rng = np.random.default_rng(4)
    return rng.normal(size=(n, 3)), rng.normal(size=3), rng.normal(size=n)


def test_the_plan_becomes_the_call_and_the_object_keeps_its_face():
    g = compile_grad(LSQ, wrt=["w"], shapes=SHAPES)
    before = inspect.signature(g)
    X, w, y = _data()
    first = g(X, w, y)                                  # the general path, which makes the plan
    assert type(g) is not api.Compiled and isinstance(g, api.Compiled)
    assert type(g).__call__ is g._tensor_call.plan
    assert type(g).__name__ == "Compiled" and inspect.signature(g) == before
    assert g.__call__.__doc__ == api.Compiled.__call__.__doc__
    r = X @ w - y
    for got in (g(X, w, y), g(X=X, w=w, y=y), api.Compiled.__call__(g, X, w, y)):
        assert got[0] == pytest.approx(0.5 * r @ r, rel=1e-13) == first[0]
        np.testing.assert_allclose(got[1][0], X.T @ r, rtol=1e-12)
    again = pickle.loads(pickle.dumps(g))               # pickles as its recipe
    assert type(again) is api.Compiled and again(X, w, y)[0] == first[0]


def test_the_plans_out_fills_the_callers_arrays_and_refuses_as_before():
    g = compile_grad(LSQ, wrt=["w"], shapes=SHAPES)
    X, w, y = _data()
    want = g(X, w, y)
    out = (np.empty(()), (np.empty(3),))
    got = g(X, w, y, out=out)                           # the plan's own out=
    assert got[0] is out[0] and got[1][0] is out[1][0]
    assert float(out[0]) == want[0] and np.array_equal(out[1][0], want[1][0])
    lists = [np.empty(()), [np.empty(3)]]               # other nestings: the general path's
    got = g(X=X, w=w, y=y, out=lists)
    assert got[1][0] is lists[1][0] and np.array_equal(got[1][0], want[1][0])
    with pytest.raises(ValueError, match=r"out= array 1: expected float64 of shape \(3,\)"):
        g(X, w, y, out=(np.empty(()), (np.empty(4),)))
    with pytest.raises(ValueError, match="out= array 1"):
        g(X, w, y, out=(np.empty(()), (np.empty(3, dtype=np.float32),)))
    with pytest.raises(ValueError, match="expected 2 arrays"):
        g(X, w, y, out=(np.empty(()),))


def test_results_are_checked_at_the_first_call_of_each_shape_tuple():
    """A result that has to be fitted (here a read-only broadcast) is fitted at every call;
    shapes that change between calls each get their own binding."""
    f = compile_expr("x + 0 * sum(x)", shapes={"x": ("n",)})
    h = compile_expr("sum(x) * y", shapes={"x": ("n",), "y": ("m",)})
    for n in (3, 3, 4, 3, 4, 4):
        x = np.arange(float(n))
        for _ in range(2):
            out = f(x)
            assert out.flags.writeable and not np.shares_memory(out, x)
            np.testing.assert_array_equal(out, x)
            y = np.ones(n + 1)
            np.testing.assert_array_equal(h(x, y), x.sum() * y)
