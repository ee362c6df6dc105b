"""Two results of one call in the NumPy backend's code (backends/numpy_share_exps._pair and
numpy_share_pairs._expm1_pairs): sigmoid(u) and sigmoid(-u) from one exp (sigmoid_pair_of_exp, and
logaddexp's partials sigmoid_pair_e), expm1(x) and the exp(x) of its derivative
(expm1_pair). Each row has the bits of the call it replaces, at the edges, in blocks,
for one point and for float32, and the generated code makes one call of each pair."""

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler import runtime as R
from exprcompiler.backends import numpy_backend
from exprcompiler.runtime_blocks import _BLOCK

from test_numpy_render import EDGES, _both, _loops

def _points(rng, n=3 * _BLOCK + 17):
    """Large and small, both signs, the edges among them, a block all above log 2 (expm1
    as exp(x) - 1), and one of ties (d = 0)."""
    x = rng.uniform(-50, 50, n)
    x[_BLOCK:2 * _BLOCK] = rng.uniform(0.7, 60, _BLOCK)
    x[2 * _BLOCK:2 * _BLOCK + 300] = 0.0
    x[rng.integers(0, n, 60)] = rng.choice(np.concatenate([EDGES, [800.0, -800.0, 36.0, 37.0, 1e-300]]), 60)
    return x


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


def _cases(x):
    """x, its float32 copy, one of its points as a 0-d array, and a block as a (4, n/4) array."""
    return [x, x.astype(np.float32), np.asarray(x[5]), x[:4 * (_BLOCK // 4)].reshape(4, -1)]


@pytest.mark.parametrize("simd", [True, False])
def test_sigmoid_pairs_give_the_two_calls_bits(simd, monkeypatch):
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(11)
    for x in _cases(_points(rng)):
        with np.errstate(all="ignore"):
            E = R.exp_quiet(x)
            pair = R.sigmoid_pair_of_exp(E)
            _same_bits(pair[0], R.sigmoid_of_exp(E))
            _same_bits(pair[1], R.sigmoid_neg_of_exp(E))
            d = x - np.roll(x.reshape(-1), 1).reshape(x.shape)[()]   # ties, NaN and inf - inf among them
            e = R.exp_neg_abs(d)
            pair = R.sigmoid_pair_e(d, e)
            _same_bits(pair[0], R.sigmoid_e(d, e))
            _same_bits(pair[1], R.sigmoid_neg_e(d, e))


@pytest.mark.parametrize("simd", [True, False])
def test_expm1_pair_is_expm1_and_its_derivative(simd, monkeypatch):
    _loops(monkeypatch, simd)
    rng = np.random.default_rng(12)
    for x in _cases(_points(rng)):
        with np.errstate(all="ignore"):
            value, slope = R.expm1_pair(x)
            want, exp = R.expm1(x), np.exp(x)
        _same_bits(value, want)
        _same_bits(slope, exp)


def _generate(trace, monkeypatch):
    """The NumPy source of `trace` and its function, with expm1 among the ops whose
    traces numpy_backend looks for shared calls in (where its own set lacks it)."""
    monkeypatch.setattr(numpy_backend, "_SHARES_EXPS", numpy_backend._SHARES_EXPS | {"expm1"})
    fn, plain, source, _ = _both(trace)
    return source.split("def ")[1], fn, plain


@pytest.mark.parametrize("expr, call", [("exp(x) - 1", "p1 = expm1_pair(x)"),
                                        ("expm1(2 * x) * expm1(x)", "expm1_pair(x)"),
                                        ("log(1 + exp(x)) + sigmoid(x)", "sigmoid_pair_of_exp(e1)")])
def test_generated_code_makes_one_call_of_each_pair(expr, call, monkeypatch):
    """One call, its rows read by index, and the generic spelling's numbers: its bits for
    expm1 and exp; the sigmoids' within an ulp or two (sigmoid(-u) from exp(u) or
    exp(-|u|), not from its own call's exp(-u))."""
    g = compile_grad(expr, stable=True)
    body, fn, plain = _generate(g.trace, monkeypatch)
    assert call in body and body.count("_pair") == (2 if "2 * x" in expr else 1), body
    assert not any(f in body for f in ("sigmoid_e(", "sigmoid_neg_e(", "sigmoid_of_exp(", "sigmoid_neg_of_exp(",
                                       "expm1(", "np.exp("))
    rng = np.random.default_rng(13)
    args = [np.concatenate([EDGES, rng.uniform(-30, 30, 3 * _BLOCK)]) for _ in g.inputs]
    with np.errstate(all="ignore"):
        got, want = fn(*args), plain(*args)
    got = [got[0], *got[1]] if isinstance(got[1], tuple) else list(got)
    want = [want[0], *want[1]] if isinstance(want[1], tuple) else list(want)
    for a, b in zip(got, want):
        if "expm1" not in body:
            np.testing.assert_allclose(a, b, rtol=9e-16, atol=2.2250738585072014e-308)
        else:
            _same_bits(a, b)


def test_pair_rows_as_outputs_are_separate_arrays():
    """Rows of one pair returned as two outputs (logaddexp's partials at no tie): the
    caller may change one without changing the other."""
    g = compile_grad("log(exp(x) + exp(y))", stable=True)
    x, y = np.array([1.0, 2.0, -3.0]), np.array([0.5, 2.5, 4.0])
    _, (dx, dy) = g(x, y)
    want = dy.copy()
    dx[...] = 7.0
    assert np.array_equal(dy, want)
    np.testing.assert_allclose(want, 1 / (1 + np.exp(x - y)), rtol=1e-15)
