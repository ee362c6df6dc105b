"""Calls by name and at() through the call plans (call_plan.py): the same numbers as
calls in order and as the general path (api.Compiled.__call__), and the same
refusals, whether the plan takes the inputs as keyword parameters of its own (plain
identifiers) or reads them from **kwargs (names that are not, or that its own text
uses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from exprcompiler import ShapeError, api, compile_grad

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
LSQ = "0.5 * sum((X @ w - y)**2)"


def _griewank(x1, x2):
    a, e = x1 / x2, math.exp(x2)
    d = a - e
    s = math.sin(a) + d
    ga = (math.cos(a) + 1.0) * d + s
    return s * d, (ga / x2, -ga * a / x2 - (d + s) * e)


def _bits(result):
    if isinstance(result, tuple):
        return tuple(_bits(r) for r in result)
    return np.asarray(result, dtype=np.float64).tobytes()


def _planned(g, call):
    for _ in range(3):  # the plan is made at the first calls
        call()
    assert type(g) is not api.Compiled and type(g).__call__ is not api.Compiled.__call__
    own = {"x1", "x2", "x", "y", "X", "w"}   # plain names the plan's text does not use
    keywords = type(g).__call__.__code__.co_kwonlyargcount - 1   # out= and the inputs
    assert keywords == (len(g.inputs) if set(g.inputs) <= own else 0)


def test_griewank_by_name_and_at_give_the_bits_of_the_call_in_order():
    g = compile_grad(GRIEWANK)
    _planned(g, lambda: g(1.5, 0.5))
    general = api.Compiled.__call__(g, 1.5, 0.5)
    want = _griewank(1.5, 0.5)
    assert g(1.5, 0.5)[0] == pytest.approx(want[0], rel=1e-14)
    np.testing.assert_allclose(g(1.5, 0.5)[1], want[1], rtol=1e-13)
    x = np.array([1.5, 0.5])
    value, grad = g.at(x)
    for got in (g(1.5, 0.5), g(x1=1.5, x2=0.5), g(x2=0.5, x1=1.5), g(**dict(zip(g.inputs, (1.5, 0.5)))),
                g(1.5, x2=0.5), g(np.float64(1.5), 0.5), (value, tuple(grad.tolist()))):
        assert _bits(got) == _bits(general)
        assert type(got[0]) is float
    assert grad.dtype == np.float64 and grad.shape == (2,)
    assert not np.shares_memory(grad, g.at(x)[1])


@pytest.mark.parametrize("names", [("x", "y"), ("nd", "a0"), ("lambda", "x.1"), ("self", "kwargs"), ("len", "y")])
def test_refusals_of_a_function_of_numbers_are_unchanged(names):
    """Plain names become the plan's keyword parameters; names that its own text uses
    (nd, a0, self, kwargs, the builtin len) or that are no identifiers stay keys of **kwargs."""
    a, b = sympy.symbols(names)
    g = compile_grad(sympy.log(a) + 1 / b)
    n0, n1 = g.inputs
    _planned(g, lambda: g(1.0, 2.0))
    want = api.Compiled.__call__(g, 4.0, 2.0)
    assert _bits(g(**{n0: 4.0, n1: 2.0})) == _bits(want) == _bits(g(4.0, 2.0))
    value, grads = g(**{a.name: 3.0, b.name: 2.0})
    assert value == pytest.approx(math.log(3.0) + 0.5, rel=1e-15)
    assert dict(zip(g.wrt, grads)) == pytest.approx({a.name: 1 / 3.0, b.name: -0.25}, rel=1e-15)
    with np.errstate(all="raise"):  # where math refuses, NumPy's answers, unwarned
        value, (d0, d1) = g(**{n0: 0.0, n1: 0.0})
    assert np.isnan(value) and {d0, d1} == {np.inf, -np.inf}
    with pytest.raises(TypeError, match=f"argument '{n0}' given twice"):
        g(4.0, **{n0: 4.0, n1: 2.0})
    with pytest.raises(TypeError, match=f"argument '{n1}' given twice"):
        g(4.0, 2.0, **{n1: 2.0})
    with pytest.raises(TypeError, match="unexpected argument 'z'"):
        g(**{n0: 4.0, n1: 2.0}, z=1.0)
    with pytest.raises(TypeError, match=f"missing value for input '{n1}'"):
        g(**{n0: 4.0})
    with pytest.raises(TypeError, match="expected at most 2 arguments"):
        g(1.0, 2.0, 3.0)
    assert _bits(g(4, **{n1: np.float64(2.0)})) == _bits(want)    # converted by the general path
    np.testing.assert_array_equal(g(np.array([4.0, 1.0]), 2.0)[0], [want[0], api.Compiled.__call__(g, 1.0, 2.0)[0]])


def _lsq(n=6, p=3):
    rng = np.random.default_rng(7)
    return rng.normal(size=(n, p)), rng.normal(size=p), rng.normal(size=n)


@pytest.mark.parametrize("names", [("X", "w", "y"), ("nd", "a0", "m")])
def test_tensor_by_name_gives_the_bits_in_order_and_refuses_as_before(names):
    X_, w_, y_ = names
    g = compile_grad(LSQ.replace("X", X_).replace("w", w_).replace("y", y_), wrt=[w_],
                     shapes={X_: ("n", 3), w_: (3,), y_: ("n",)})
    X, w, y = _lsq()
    order = [X, w, y] if g.inputs == names else [dict(zip(names, (X, w, y)))[k] for k in g.inputs]
    named = dict(zip(names, (X, w, y)))
    _planned(g, lambda: g(**named))
    r = X @ w - y
    general = api.Compiled.__call__(g, *order)
    assert general[0] == pytest.approx(0.5 * r @ r, rel=1e-13)
    np.testing.assert_allclose(general[1][0], X.T @ r, rtol=1e-12)
    for got in (g(*order), g(**named), g(*order[:1], **{k: v for k, v in named.items() if k != g.inputs[0]})):
        assert _bits(got) == _bits(general)
    out = (np.empty(()), (np.empty(3),))
    assert g(**named, out=out)[1][0] is out[1][0] and _bits(out) == _bits(general)
    with pytest.raises(TypeError, match=f"argument '{g.inputs[0]}' given twice"):
        g(*order, **{g.inputs[0]: order[0]})
    with pytest.raises(TypeError, match="unexpected argument 'Z'"):
        g(**named, Z=X)
    with pytest.raises(TypeError, match=f"missing value for input '{g.inputs[-1]}'"):
        g(**{k: v for k, v in named.items() if k != g.inputs[-1]})
    with pytest.raises(ShapeError, match=f"{X_!r}.*dimension.*{y_!r}|{y_!r}.*dimension.*{X_!r}|"
                                         f"'n'.*{X_!r}.*{y_!r}|'n'.*{y_!r}.*{X_!r}"):
        g(**{**named, y_: np.ones(7)})
    assert _bits(g(**{k: v.tolist() for k, v in named.items()})) == _bits(general)  # lists: converted
