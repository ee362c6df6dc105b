"""A split kernel's batch entry (c_driver.entries with a batch declaration): the
extension's array call (c_entry.run_entry) hands the caller's tables of pointers and
strides to the driver as they are, with no call of the batch kernel in between; its
results are the general path's bit for bit, at any batch size, strided columns and
broadcast numbers included."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import api, compile_hessian
from exprcompiler.backends import c_entry, c_split

from test_bench import has_compiler

pytestmark = pytest.mark.skipif(not has_compiler(), reason="no C compiler")

PROGRAM = " + ".join(f"x{i} * sin(x{i + 1}) * x{i + 2}" for i in range(28))


@pytest.fixture(scope="module")
def hessian():
    if c_entry.load() is None:
        pytest.skip(f"no one-point extension here: {c_entry.why_not()}")
    H = compile_hessian(PROGRAM, backend="c", threads=1)
    assert c_split.UNIT_MARK in H.source  # split, in the default layout
    return H


def test_the_batch_entry_calls_the_driver_with_the_callers_tables(hessian):
    entry = hessian.source.split("_batch(ptrdiff_t n, int threads, const double *const *in,")[1]
    body = entry[entry.index("{"):entry.index("}")]
    assert "xc_split_run(n, threads, in, st, " in body and "out, os, " in body
    assert "in[0]" not in body  # no pointer spelled out for the batch kernel


@pytest.mark.parametrize("n", [1, 2, 5, 17, 1001])
def test_the_batch_entry_gives_the_general_paths_results(hessian, n):
    k = len(hessian.inputs)
    for _ in range(3):  # the quick paths in place
        hessian(*[np.ones(3)] * k)
    assert hessian._entry
    xs = [np.linspace(-1, 1, n) + 0.1 * i for i in range(k)]
    want = api.Compiled.__call__(hessian, *xs)
    outs = tuple(np.full(w.shape, np.nan) for w in want)
    assert hessian._entry(outs, *xs) is not NotImplemented
    for o, w in zip(outs, want):
        assert np.array_equal(o.view(np.int64), w.view(np.int64))
    cols = [x[::-1].copy()[::-1] for x in xs]  # strided views
    cols[1] = 0.5  # a number, broadcast
    want = api.Compiled.__call__(hessian, *cols)
    for g, w in zip(hessian(*cols), want):
        assert np.array_equal(g.view(np.int64), w.view(np.int64))
