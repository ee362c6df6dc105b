"""where_rare_kept(c, p): the NumPy spelling of where(c, where(p == p, p + 0.0, 0.0), p),
the derivative at zeros of x*log(x), xlogy and pow (op_def._unless_zero)."""

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.runtime import where_rare_kept

_SPECIAL = [0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 1e-310]


def _spelled(c, p):
    return np.where(c, np.where(p == p, p + 0.0, 0.0), p)


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bits_of_the_np_where_spelling(dtype):
    p0 = np.array(_SPECIAL, dtype=dtype)
    for c in (np.zeros(p0.shape, bool), np.ones(p0.shape, bool), np.arange(p0.size) % 3 == 0):
        _same(where_rare_kept(c, p0.copy()), _spelled(c, p0))
    none = np.zeros(p0.shape, bool)
    p = p0.copy()
    assert where_rare_kept(none, p) is p   # nothing to change: p itself


def test_broadcasting_scalars_and_0d():
    p = np.array([[0.0, -0.0, np.nan], [1.0, -np.inf, 2.0]])
    for c, q in ((np.array([True, False, True]), p), (np.array([[True], [False]]), p),
                 (np.ones((2, 3), bool), np.array([-0.0, np.nan, 3.0])),
                 (np.bool_(True), p), (np.array(True), np.array(-0.0)), (True, np.float64(np.nan)),
                 (np.array(False), np.float32(-0.0)), (np.array([True, False]), -0.0),
                 (np.array([2, 0, 1]), np.array([np.nan, -0.0, -0.0]))):   # (not a mask: no fancy indexing)
        _same(where_rare_kept(c, np.copy(q) if isinstance(q, np.ndarray) else q), _spelled(c, q))


def test_spelled_as_one_call_with_no_dead_lines():
    # (sin: x*log(x)'s value and gradient alone are one xlogx_rows call, tests/test_numpy_xlogx.py)
    body = compile_grad("sin(x*log(x))", stable=True).source.split("def ")[1]
    assert "where_rare_kept(t2, t3)" in body and "t3 == t3" not in body and body.count("np.where") == 0
    body = compile_grad("x**y", stable=True).source.split("def ")[1]
    assert "where_rare_kept(y == 0.0, t1)" in body


def test_not_where_p_is_read_elsewhere():
    """p that another line reads (here the value's x / x and y*x**(y - 1)) keeps the
    np.where spelling: the helper may change its p in place."""
    for expr, p in (("x*log(x) + x/x", "v2"), ("x**y + y*x**(y-1)", "v4")):
        body = compile_grad(expr, stable=True).source.split("def ")[1]
        assert f"np.where({p} == {p}, {p} + 0.0, 0.0), {p})" in body


@pytest.mark.parametrize("expr", ["x*log(x)", "xlogy(x, y)", "x**y", "x*log(x) + x**y + xlogy(y, x)",
                                  "x*log(x) + x/x", "x**y + y*x**(y-1)"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_match_the_np_where_spelling(expr, dtype):
    g = compile_grad(expr, stable=True)
    n = len(g.inputs)
    x = np.array(_SPECIAL * 3, dtype=dtype)
    y = np.array(_SPECIAL[3:] + _SPECIAL * 2 + _SPECIAL[:3], dtype=dtype)
    args = (x, y)[:n]
    fns = []
    for src in (g.source, g.source.replace("where_rare_kept(", "_spelled(")):   # the helper, np.where
        space = {"_spelled": _spelled}
        exec(compile(src, "<generated>", "exec"), space)
        fns.append(space["f_grad"])
    with np.errstate(all="ignore"):
        got, want = fns[0](*args), fns[1](*args)
    _same(got[0], want[0])
    for a, b in zip(got[1], want[1]):
        _same(a, b)
