"""The NumPy backend's logaddexp with both partials (numpy_share_exps._logaddexp_rows): one
runtime.logaddexp_rows(a, b) call, its rows read by index, with no a - b, tie test or
where left over; its numbers are the helper's, in blocks and at the edges, and the C
backend's within a few ulps (the value near 0 within a few ε: the naive form's)."""

import numpy as np
import pytest

from exprcompiler import compile_grad, runtime
from exprcompiler.runtime_blocks import _BLOCK

EDGES = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -800.0, 800.0, -708.0, 709.0, 3.0]


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_value_and_both_partials_in_one_call(mode):
    g = compile_grad("log(exp(a) + exp(b))", stable=True, mode=mode)
    body = g.source.split("def ")[1]
    assert body.count("logaddexp_rows(a, b)") == 1 and "import logaddexp_rows\n" in g.source
    assert not any(f in body for f in (" - b", "==", "where", "exp_neg_abs", "sigmoid"))
    rng = np.random.default_rng(19)
    x, y = np.meshgrid(EDGES, EDGES)
    a = np.concatenate([x.ravel(), rng.uniform(-5, 5, _BLOCK), rng.uniform(-1000, 1000, 2 * _BLOCK)])
    b = np.concatenate([y.ravel(), rng.uniform(-5, 5, _BLOCK), rng.uniform(-1000, 1000, 2 * _BLOCK)])
    with np.errstate(all="ignore"):
        v, (da, db) = g(a, b)
        want = runtime.logaddexp_rows(a, b)
        c = compile_grad("log(exp(a) + exp(b))", stable=True, backend="c", threads=1)
        cv, (cda, cdb) = c(a, b) if c.backend == "c" else (v, (da, db))
    for got, w, other in ((v, want[0], cv), (da, want[1], cda), (db, want[2], cdb)):
        np.testing.assert_array_equal(got, w)
        np.testing.assert_allclose(got, other, rtol=2e-15, atol=4.5e-16)
    assert (da[a == b] == 0.5).all() and (db[a == b] == 0.5).all()


def test_one_partial_keeps_the_shared_exp():
    body = compile_grad("log(exp(a) + exp(b))", wrt=["a"], stable=True).source.split("def ")[1]
    assert "exp_neg_abs(" in body and "logaddexp_rows" not in body


def test_three_terms_make_one_call():
    g = compile_grad("log(exp(a) + exp(b) + exp(c))", stable=True)
    body = g.source.split("def ")[1]
    assert body.count("logaddexp3_rows(") == 1 and "where" not in body
    a, b, c = np.array([1.0, np.inf, -1000.0]), np.array([2.0, np.inf, 5.0]), np.array([0.5, 1.0, 900.0])
    with np.errstate(all="ignore"):
        v, grads = g(a, b, c)
    assert v[1] == np.inf and [float(d[1]) for d in grads] == [0.5, 0.5, 0.0]
    np.testing.assert_allclose(sum(grads), 1.0, rtol=4.5e-16)
