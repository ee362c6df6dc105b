"""Every compiled object and every Trace pickles, and works in another process
(a process pool started with spawn: a fresh interpreter, as a Dask worker is)."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from exprcompiler import (compile_expr, compile_grad, compile_hessian, compile_hvp, compile_jacobian,
                          compile_jvp, compile_vjp, to_trace)
from exprcompiler.bench.runner import flat_arrays

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
LSQ = ("0.5 * sum((X @ w - y)**2)", {"X": ("n", 3), "w": (3,), "y": ("n",)})
RNG = np.random.default_rng(0)
X, W, Y = RNG.normal(size=(5, 3)), RNG.normal(size=3), RNG.normal(size=5)

# (what, make, arguments of a call)
CASES = [
    ("value", lambda b: compile_expr(GRIEWANK, backend=b), (1.5, 0.5)),
    ("grad", lambda b: compile_grad(GRIEWANK, backend=b), (np.array([1.5, 2.0]), 0.5)),
    ("grad forward", lambda b: compile_grad(GRIEWANK, mode="forward", backend=b), (1.5, 0.5)),
    ("jvp", lambda b: compile_jvp("x*sin(y)", backend=b), (0.3, 2.0, 1.0, 0.0)),
    ("vjp", lambda b: compile_vjp("x*y; x+y", backend=b), (0.3, 2.0, 1.0, 2.0)),
    ("hvp", lambda b: compile_hvp(GRIEWANK, backend=b), (1.5, 0.5, 1.0, -1.0)),
    ("hessian", lambda b: compile_hessian(GRIEWANK, backend=b), (1.5, 0.5)),
    ("jacobian", lambda b: compile_jacobian("x*y; sin(x)", backend=b), (1.5, 0.5)),
    ("tensor grad", lambda b: compile_grad(LSQ[0], wrt=["w"], shapes=LSQ[1], backend=b), (X, W, Y)),
    ("tensor hessian", lambda b: compile_hessian(LSQ[0], wrt=["w"], shapes=LSQ[1], backend=b), {"X": X, "w": W, "y": Y}),
    ("tensor jacobian", lambda b: compile_jacobian("X @ w", shapes={"X": ("n", 3), "w": (3,)}, backend=b),
     {"X": X, "w": W}),
    ("tensor forward grad", lambda b: compile_grad(LSQ[0], wrt=["w"], shapes=LSQ[1], mode="forward", backend=b),
     (X, W, Y)),
]


def _call(f, args):
    return f(**args) if isinstance(args, dict) else f(*args)


def _remote(blob: bytes, args):
    """In the worker: unpickle and call."""
    return _call(pickle.loads(blob), args)


def test_a_trace_pickles_to_an_equal_trace():
    trace = to_trace(GRIEWANK)
    again = pickle.loads(pickle.dumps(trace))
    assert str(again) == str(trace) and again.instrs == trace.instrs and again.source == trace.source


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_every_compiled_object_pickles_and_runs_in_a_fresh_process(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))  # the worker inherits it
    made = [(what, make(backend), args) for what, make, args in CASES]
    blobs = [pickle.dumps(f) for _, f, _ in made]
    here = [pickle.loads(b) for b in blobs]
    for (what, f, args), g in zip(made, here):
        assert type(g) is type(f) and g.source == f.source, what
        for a, b in zip(flat_arrays(_call(g, args)), flat_arrays(_call(f, args))):
            np.testing.assert_array_equal(a, b, err_msg=what)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_remote, blobs, [args for _, _, args in made]))
    for (what, f, args), result in zip(made, results):
        for a, b in zip(flat_arrays(result), flat_arrays(_call(f, args))):
            np.testing.assert_array_equal(a, b, err_msg=what)


def test_with_threads_makes_the_same_function_for_another_thread_count():
    """What a Dask worker needs: the function again with threads=1, from its recipe
    (C: the same cached library); itself when nothing changes."""
    import numpy as np

    from exprcompiler import compile_grad, compile_jacobian
    numpy_g = compile_grad("x*y")
    assert numpy_g.with_threads(1) is numpy_g
    g = compile_grad("x*y + sin(x)", backend="c")
    one = g.with_threads(1)
    assert one is not g and one.with_threads(1) is one
    assert one(np.arange(3.0), 2.0)[1][1].tolist() == [0.0, 1.0, 2.0]
    J = compile_jacobian("A @ exp(x)", wrt="x", backend="c", shapes={"A": (2, 3), "x": (3,)})
    A, x = np.ones((2, 3)), np.zeros(3)
    np.testing.assert_array_equal(J.with_threads(1)(A, x)[1], J(A, x)[1])
    lazy = compile_grad("sum(x*x)", backend="c")    # shapes from its first call
    assert lazy.with_threads(1).signature == () and lazy.with_threads(1)(np.ones(4))[0] == 4.0


def test_threads_says_what_was_chosen():
    from exprcompiler import compile_grad
    assert compile_grad("x*y", backend="c").threads is None
    assert compile_grad("x*y", backend="c", threads=2).threads == 2
    assert compile_grad("x*y", backend="c").with_threads(1).threads == 1
