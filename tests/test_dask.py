"""Compiled functions on Dask arrays (exprcompiler/on_dask.py, dask_loss.py): on a real
`distributed.LocalCluster` (2 worker processes, one thread each) and on Dask's threaded
scheduler. Elementwise functions give exactly the NumPy call's numbers, chunked like
their inputs, or (g.sum, g.mean, reduce=) their sums and means, each chunk summed in
its task; losses over rows (sums, means, their gradients and HVPs) match the
in-memory results to 1e-12; functions that are not sums or means over the rows are
refused; the kernel is built once per worker; a worker killed mid-computation does not
change the answer. Calls go both through on_dask.call and through `g(dask_array, ...)`
(CompiledFunction.__call__ hands Dask arguments to on_dask.call)."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import warnings
import weakref

import numpy as np
import pytest
from conftest import environ_kept

dask = pytest.importorskip("dask", reason="dask is not installed (pip install 'exprcompiler[dask]')")
da = pytest.importorskip("dask.array", reason="dask.array is not installed (pip install 'dask[array]')")
distributed = pytest.importorskip("distributed", reason="distributed is not installed "
                                  "(pip install 'exprcompiler[dask]')")

from exprcompiler import (compile_expr, compile_grad, compile_hessian, compile_hvp,  # noqa: E402
                          compile_jacobian, compile_jvp, compile_vjp, ShapeError)
from exprcompiler import on_dask  # noqa: E402
from exprcompiler.dask_loss import NotSeparable  # noqa: E402
from exprcompiler.on_dask import DaskChunkWarning  # noqa: E402

# a second cluster (the fault test's) finds the first's HTTP port taken: noise
pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use")

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
LSQ_SHAPES = {"X": ("n", 5), "y": ("n",), "w": (5,)}
RNG = np.random.default_rng(7)
N = 1003
X, Y, W = RNG.normal(size=(N, 5)), RNG.normal(size=N), RNG.normal(size=5)
LABELS = np.where(RNG.uniform(size=N) < 0.5, -1.0, 1.0)


# ------------------------------------------------------------------ fixtures

# in a worker: count its C compiler runs (the benchmark counts them the same way)
from exprcompiler.bench.dask_griewank import count_compiles  # noqa: E402


def _worker_state():
    from exprcompiler.backends import c_build, c_run
    return {"compiles": c_build._compile.runs, "rebuilds": dict(on_dask.REBUILDS),
            "threads": c_run.default_threads(), "pid": os.getpid()}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # the workers' compile cache starts empty: every C kernel they run, they build
    cache = tmp_path_factory.mktemp("worker_cache")
    before = dict(os.environ)
    with environ_kept():   # (the Nannies' environment is their workers', not this process's)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, env={"EXPRCOMPILER_CACHE": str(cache)})
    client = distributed.Client(cluster, set_as_default=False)
    client.environ_before = before   # (test_a_cluster_leaves_this_process_environment_as_it_was)
    client.run(count_compiles)
    yield client
    client.close()
    cluster.close()


# the cluster runs are slow (CI runs them): a LocalCluster is seconds of both cores
@pytest.fixture(params=["threads", pytest.param("cluster", marks=pytest.mark.slow)])
def scheduler(request):
    return "threads" if request.param == "threads" else request.getfixturevalue("client")


def compute(result, scheduler):
    return dask.compute(result, scheduler=scheduler)[0]


def leaves(result) -> list:
    return on_dask.flatten(result)[0]


def through(via: str, f, *args, **kwargs):
    return on_dask.call(f, args, kwargs) if via == "call" else f(*args, **kwargs)


# ------------------------------------------------------------- holds_dask

def test_holds_dask_finds_dask_arrays_by_position_and_by_name():
    x = da.ones(4, chunks=2)
    assert on_dask.holds_dask((1.0, x), {}) and on_dask.holds_dask((), {"x": x})
    assert not on_dask.holds_dask((1.0, np.ones(3), [1.0, 2.0]), {"y": np.ones(2)})


def test_calls_without_dask_never_import_it():
    code = ("import sys, numpy as np\n"
            "from exprcompiler import compile_grad, on_dask\n"
            "assert not on_dask.holds_dask((1.0, np.ones(3), [2.0]), {'y': 2})\n"
            "g = compile_grad('x*sin(y)')\n"
            "g(np.ones(3), 2.0)\n"
            "assert 'dask' not in sys.modules, sorted(m for m in sys.modules if 'dask' in m)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------- elementwise functions

SCALAR_CASES = [  # (what, make(backend), the call's arguments, positional)
    ("value", lambda b: compile_expr(GRIEWANK, backend=b), 2),
    ("grad", lambda b: compile_grad(GRIEWANK, backend=b), 2),
    ("grad forward", lambda b: compile_grad(GRIEWANK, mode="forward", backend=b), 2),
    ("jvp", lambda b: compile_jvp("x*sin(y)", backend=b), 4),
    ("vjp", lambda b: compile_vjp("x*y; x+y", backend=b), 4),
    ("hvp", lambda b: compile_hvp(GRIEWANK, backend=b), 4),
    ("hessian", lambda b: compile_hessian(GRIEWANK, backend=b), 2),
    ("jacobian", lambda b: compile_jacobian("x*y; sin(x); x+y", backend=b), 2),
]


def _scalar_args(n_args: int):
    """Dask arrays with uneven chunks, a NumPy array and a number, as the arguments."""
    rng = np.random.default_rng(1)
    first = da.from_array(rng.uniform(1, 2, size=1000), chunks=300)
    args = [first, rng.uniform(0.5, 1.0, size=1000)] + [0.75 + 0.1 * k for k in range(n_args - 2)]
    return args, [a.compute() if isinstance(a, da.Array) else a for a in args]


@pytest.mark.parametrize("via", ["call", "hook"])
@pytest.mark.parametrize("what,make,n_args", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_every_kind_maps_over_chunks_with_the_numpy_numbers(what, make, n_args, via):
    f = make("numpy")
    args, local = _scalar_args(n_args)
    lazy = through(via, f, *args)
    expected = f(*local)
    got_leaves, want_leaves = leaves(lazy), leaves(expected)
    assert len(got_leaves) == len(want_leaves)
    for got in got_leaves:
        assert isinstance(got, da.Array) and got.chunks[0] == (300, 300, 300, 100), what
    result = compute(lazy, "threads")
    assert on_dask.flatten(result)[1] == on_dask.flatten(expected)[1], f"{what}: nesting differs"
    for got, want in zip(leaves(result), want_leaves):
        np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("via", ["call", "hook"])
@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_gradient_and_hessian_on_a_cluster_broadcast_two_dimensional_chunks(backend, via, scheduler):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(1, 2, size=(50, 1)), rng.uniform(0.5, 1, size=(1, 40))
    x1, x2 = da.from_array(a, chunks=(20, 1)), da.from_array(b, chunks=(1, 15))
    g, h = compile_grad(GRIEWANK, backend=backend), compile_hessian(GRIEWANK, backend=backend)
    lazy_g, lazy_h = through(via, g, x1, x2), through(via, h, x1, x2)
    assert lazy_g[1][0].chunks == ((20, 20, 10), (15, 15, 10))
    assert lazy_h[2].shape == (50, 40, 2, 2) and lazy_h[2].chunks[2:] == ((2,), (2,))  # trailing axes whole
    for got, want in zip(leaves(compute((lazy_g, lazy_h), scheduler)), leaves((g(a, b), h(a, b)))):
        if backend == "numpy":
            np.testing.assert_array_equal(got, want)
        else:  # a point's place in the C loop (vector body or scalar tail) can move the last bit
            _assert_close(got, want)


def test_a_seed_named_beside_a_user_name_of_its_spelling_keeps_its_shape():
    # the seed x.dot is called x_dot_ where the user has an x_dot of their own
    f = compile_jvp("sum(x_dot * x)", shapes={"x": ("n",), "x_dot": ("n",)})
    assert f.inputs == ("x", "x_dot", "x_dot_", "x_dot_dot")
    arrays = dict(zip(f.inputs, [np.arange(6.0), np.ones(6), np.full(6, 2.0), np.full(6, 3.0)]))
    want = f(**arrays)
    got = dask.compute(*f(**{name: da.from_array(a, chunks=3) for name, a in arrays.items()}))
    assert [float(g) for g in got] == [float(w) for w in want]


def test_inputs_chunked_differently_are_rechunked_with_a_warning_naming_both():
    g = compile_grad(GRIEWANK)
    rng = np.random.default_rng(3)
    a, b = rng.uniform(1, 2, size=1000), rng.uniform(0.5, 1, size=1000)
    with pytest.warns(DaskChunkWarning, match=r"'x2' and 'x1' are chunked differently along axis 0 "
                                              r"\(\(250, 250, 250, 250\) against \(300, 300, 300, 100\)\)"):
        lazy = on_dask.call(g, (da.from_array(a, chunks=300), da.from_array(b, chunks=250)), {})
    assert lazy[0].chunks == ((300, 300, 300, 100),)
    for got, want in zip(leaves(compute(lazy, "threads")), leaves(g(a, b))):
        np.testing.assert_array_equal(got, want)


def test_cutting_chunks_finer_moves_no_data_and_says_nothing():
    g = compile_grad(GRIEWANK)
    rng = np.random.default_rng(4)
    a, b = rng.uniform(1, 2, size=1000).astype(np.float32), rng.uniform(0.5, 1, size=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DaskChunkWarning)  # x1 (fewer bytes) is cut like x2
        lazy = on_dask.call(g, (da.from_array(a, chunks=500), da.from_array(b, chunks=250)), {})
    assert lazy[0].chunks == ((250, 250, 250, 250),)
    for got, want in zip(leaves(compute(lazy, "threads")), leaves(g(a, b))):
        np.testing.assert_array_equal(got, want)


def test_unknown_chunk_sizes_are_refused_with_the_fix():
    x = da.from_array(np.linspace(0, 1, 100), chunks=30)
    with pytest.raises(ShapeError, match=r"input 'x1': its chunk sizes are unknown.*compute_chunk_sizes"):
        on_dask.call(compile_grad(GRIEWANK), (x[x > 0.5], 0.5), {})


def test_other_dask_collections_are_refused_by_name():
    with pytest.raises(TypeError, match=r"input 'x1': a dask.*Delayed"):
        on_dask.call(compile_grad(GRIEWANK), (dask.delayed(1.5), 0.5), {})
    with pytest.raises(TypeError, match=r"input 'x2': a Dask array of complex128; expected real numbers"):
        on_dask.call(compile_grad(GRIEWANK), (1.5, da.ones(3, chunks=2) * 1j), {})


@pytest.mark.parametrize("how", ["sum", "mean"])
def test_reduced_outputs_are_the_sums_of_the_numpy_call_and_leave_no_arrays(how, scheduler, monkeypatch):
    rng = np.random.default_rng(3)
    a, b = rng.uniform(1, 2, size=(50, 1)), rng.uniform(0.5, 1, size=(1, 40))
    x1, x2 = da.from_array(a, chunks=(20, 1)), da.from_array(b, chunks=(1, 15))  # 3 x 3 chunks, broadcast
    g, jac = compile_grad(GRIEWANK, backend="c"), compile_jacobian("x*y; sin(x); x+y", backend="numpy")
    # the public method (g.sum, g.mean) and on_dask's own call
    lazy = (getattr(g, how)(x1, x2=x2), on_dask.call(jac, (x1, x2), {}, reduce=how))
    assert all(isinstance(leaf, da.Array) for leaf in leaves(lazy))
    want = [getattr(w, how)(axis=(0, 1)) for w in leaves((g(a, b), jac(a, b)))]
    assert [leaf.shape for leaf in leaves(lazy)] == [w.shape for w in want]  # the Jacobian's (3, 2) stays
    got = compute(lazy, scheduler)
    assert on_dask.flatten(got)[1] == on_dask.flatten((g(a, b), jac(a, b)))[1]
    _assert_close(tuple(leaves(got)), tuple(want))
    if scheduler == "threads":  # each chunk's kernel runs once, in a task that sums its results
        calls = []
        for task in (on_dask.PointSums, on_dask.PointChunk):
            monkeypatch.setattr(task, "__call__", lambda self, *blocks, run=task.__call__:
                                calls.append(type(self).__name__) or run(self, *blocks))
        dask.compute(lazy, scheduler="sync")
        assert calls == ["PointSums"] * (2 * 9)
    with pytest.raises(ValueError, match=r"reduce must be 'sum', 'mean' or None"):
        on_dask.call(g, (x1, x2), {}, reduce="max")
    with pytest.raises(ValueError, match=r"mean\(\): no points to average \(the inputs broadcast to shape \(0,\)\)"):
        g.mean(da.ones(0, chunks=1), 0.5)
    loss = compile_grad("sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    with pytest.raises(TypeError, match=r"tensor program.*Write the sum over rows in the expression"):
        loss.sum(_rows(X, 300), W, _rows(Y, 300))


# ---------------------------------------------------------- the kernel travels

def test_each_worker_builds_a_kernel_once_and_runs_it_on_one_thread(client):
    g = compile_grad("x1*exp(-x2*x2) + cos(x1*x2)", backend="c")  # in no worker's cache yet
    x1 = da.from_array(np.linspace(0.1, 1, 20_000), chunks=1000)  # 20 tasks over 2 workers
    lazy = on_dask.call(g, (x1, 0.3), {})
    digest = on_dask.shipped(g).digest
    before = client.run(_worker_state)
    for _ in range(2):  # a second graph of the same kernel: nothing is built again
        result = compute(lazy, client)
    anew = compile_grad("x1*exp(-x2*x2) + cos(x1*x2)", backend="c")  # the same recipe...
    assert on_dask.shipped(anew).digest == digest
    compute(on_dask.call(anew, (x1, 0.3), {}), client)  # ...finds the workers' copy
    after = client.run(_worker_state)
    assert sum(s["rebuilds"].get(digest, 0) for s in after.values()) >= 1
    for address, state in after.items():
        assert state["rebuilds"].get(digest, 0) <= 1, address      # unpickled at most once
        assert state["compiles"] - before[address]["compiles"] <= 1, address  # gcc at most once
        assert state["threads"] == 1, address  # the nanny's OMP_NUM_THREADS=1, honoured
    _assert_close(result, g(x1.compute(), 0.3))  # the C loop's vector body and tail: last bits


def test_a_cluster_leaves_this_process_environment_as_it_was(client):
    """The workers have the Nannies' environment (OMP_NUM_THREADS=1 among it); this
    process, where later tests run, has its own back (conftest.environ_kept)."""
    assert set(client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == {"1"}
    now, before = ({k: v for k, v in environ.items() if k != "PYTEST_CURRENT_TEST"}   # (pytest's, per phase)
                   for environ in (os.environ, client.environ_before))
    assert now == before


def test_shipping_keeps_no_compiled_object_alive():
    g = compile_grad(GRIEWANK)
    on_dask.shipped(g)
    gone = weakref.ref(g)
    del g
    gc.collect()
    assert gone() is None


def test_the_shipped_copy_of_a_c_kernel_runs_one_thread_unless_told():
    default = on_dask.shipped(compile_grad(GRIEWANK, backend="c")).compiled
    chosen = on_dask.shipped(compile_grad(GRIEWANK, backend="c", threads=2)).compiled
    assert default.__reduce__()[1][3]["threads"] == 1 and chosen.__reduce__()[1][3]["threads"] == 2


# ------------------------------------------------------------- losses over rows

def _rows(a, chunks):
    return da.from_array(a, chunks=(chunks,) + a.shape[1:])


def _assert_close(got, want, what=""):
    for g_, w_ in zip(leaves(got), leaves(want)):
        g_, w_ = np.asarray(g_), np.asarray(w_)
        assert g_.shape == w_.shape, what
        scale = max(np.max(np.abs(w_), initial=0.0), 1e-300)
        assert np.max(np.abs(g_ - w_), initial=0.0) <= 1e-12 * scale, (what, g_, w_)


CHUNKINGS = [(N,), (200, 300, 3, 500), 200]


@pytest.mark.parametrize("split_every", [2, None])
@pytest.mark.parametrize("chunks", CHUNKINGS, ids=["one chunk", "uneven", "even"])
def test_least_squares_value_and_gradient_match_in_memory(chunks, split_every, scheduler):
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES, backend="c")
    lazy = on_dask.call(g, (_rows(X, chunks), W, _rows(Y, chunks)), {}, split_every=split_every)
    assert isinstance(lazy[0], da.Array) and lazy[0].shape == () and lazy[1][0].shape == (5,)
    _assert_close(compute(lazy, scheduler), g(X, W, Y))


def test_one_row_chunks_add_up():
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    lazy = on_dask.call(g, (_rows(X[:9], 1), W, _rows(Y[:9], 1)), {}, split_every=3)
    _assert_close(compute(lazy, "threads"), g(X[:9], W, Y[:9]))


@pytest.mark.parametrize("via", ["call", "hook"])
def test_means_are_weighted_by_chunk_size(via, scheduler):
    """A mean loss over uneven chunks: the mean of the chunks' means would be wrong."""
    g = compile_grad("mean(log(1 + exp(-y * (X @ w))))", wrt=["w"], shapes=LSQ_SHAPES)
    lazy = through(via, g, _rows(X, (3, 1000)), W, _rows(LABELS, (3, 1000)))
    _assert_close(compute(lazy, scheduler), g(X, W, LABELS))


def test_hessian_vector_products_and_hessians_over_rows(scheduler):
    hvp = compile_hvp("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES, backend="c")
    hess = compile_hessian("mean((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    v = RNG.normal(size=5)
    lazy = (on_dask.call(hvp, (_rows(X, 250), W, _rows(Y, 250), v), {}),
            on_dask.call(hess, (_rows(X, 250), W, _rows(Y, 250)), {}))
    _assert_close(compute(lazy, scheduler), (hvp(X, W, Y, v), hess(X, W, Y)))


def test_row_wise_outputs_stay_chunked_beside_the_sums(scheduler):
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w", "X"], shapes=LSQ_SHAPES)
    lazy = on_dask.call(g, (_rows(X, 300), W, _rows(Y, 300)), {})
    assert lazy[1][1].chunks == ((300, 300, 300, 103), (5,))  # d/dX: one row per row of X
    vjp = compile_vjp("X @ w", shapes={"X": ("n", 5), "w": (5,)})
    lazy_vjp = on_dask.call(vjp, (_rows(X, 300), W, _rows(Y, 300)), {})  # y_bar: a seed per row
    _assert_close(compute((lazy, lazy_vjp), scheduler), (g(X, W, Y), vjp(X, W, Y)))


def test_a_two_layer_network_and_the_gradient_of_a_mean_with_respect_to_the_data(scheduler):
    shapes = {"X": ("n", 5), "W1": (5, 8), "b1": (8,), "w2": (8,), "y": ("n",)}
    params = {"W1": RNG.normal(size=(5, 8)), "b1": RNG.normal(size=8), "w2": RNG.normal(size=8)}
    g = compile_grad("mean((tanh(X @ W1 + b1) @ w2 - y)**2)", wrt=["W1", "b1", "w2", "X"], shapes=shapes,
                     backend="c")
    lazy = on_dask.call(g, (), {"X": _rows(X, (400, 3, 600)), "y": _rows(Y, (400, 3, 600)), **params})
    # d/dX of a mean: each row carries 1/n, not 1/(its chunk's rows)
    assert lazy[1][3].chunks == ((400, 3, 600), (5,))
    _assert_close(compute(lazy, scheduler), g(X=X, y=Y, **params))


def test_jacobians_and_forward_gradients_of_tensors_over_rows():
    jac = compile_jacobian("X @ w", wrt=["w"], shapes={"X": ("n", 5), "w": (5,)})
    fwd = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES, mode="forward")
    lazy = (on_dask.call(jac, (_rows(X, 300), W), {}), on_dask.call(fwd, (_rows(X, 300), W, _rows(Y, 300)), {}))
    assert lazy[0][1].chunks == ((300, 300, 300, 103), (5,))  # one Jacobian row per data row
    _assert_close(compute(lazy, "threads"), (jac(X, W), fwd(X, W, Y)))


@pytest.mark.parametrize("make,why", [
    (lambda: compile_jacobian("X @ w", shapes={"X": ("n", 5), "w": (5,)}),
     r"result 1 \(the Jacobian\): its shape \(5, 30\) grows with n along several axes"),
    (lambda: compile_expr("X @ w - mean(X @ w)", shapes={"X": ("n", 5), "w": (5,)}),
     r"result 0: it has one entry per row along axis 0, but each depends on other rows too"),
])
def test_row_outputs_that_chunks_cannot_give_are_refused(make, why):
    with pytest.raises(NotSeparable, match=why):
        on_dask.call(make(), (_rows(X, 300), W), {})


def test_explicit_reduce_must_agree_with_the_function():
    g = compile_grad("mean((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    args = (_rows(X, 300), W, _rows(Y, 300))
    _assert_close(compute(on_dask.call(g, args, {}, reduce="mean"), "threads"), g(X, W, Y))
    with pytest.raises(NotSeparable, match=r"result 0 \(the value\): reduce='sum', but over random data it "
                                           r"is a mean over the rows of n"):
        on_dask.call(g, args, {}, reduce="sum")


@pytest.mark.parametrize("expr,why", [
    ("log(sum((X@w - y)**2))", "neither a sum nor a mean over the rows of n"),
    ("0.5*sum((X@w - y)**2) + sum(w**2)", "a regularizer.*would be counted once per chunk"),
])
def test_functions_that_are_not_sums_over_rows_are_refused(expr, why):
    g = compile_grad(expr, wrt=["w"], shapes=LSQ_SHAPES)
    with pytest.raises(NotSeparable, match=r"result 0 \(the value\): .*" + why):
        on_dask.call(g, (_rows(X, 300), W, _rows(Y, 300)), {})


def test_data_chunked_unlike_each_other_are_rechunked_with_a_warning():
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    cols = da.from_array(X, chunks=(300, 2))  # columns cut too: each task needs a row whole
    with pytest.warns(DaskChunkWarning) as caught:
        lazy = on_dask.call(g, (cols, W, _rows(Y, 250)), {})
    shown = [str(w.message) for w in caught]
    assert any("input 'y' is chunked along 'n' ((250, 250, 250, 250, 3) against 'X''s "
               "(300, 300, 300, 103))" in m for m in shown), shown
    assert any("input 'X' is chunked along axis 1 ((2, 2, 1)), which each task needs whole" in m
               for m in shown), shown
    _assert_close(compute(lazy, "threads"), g(X, W, Y))


def test_refusals_name_what_to_change():
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    with pytest.raises(ShapeError, match=r"the inputs disagree on the size of 'n': X has 1003, y has 1000"):
        on_dask.call(g, (_rows(X, 300), W, _rows(Y[:1000], 300)), {})
    two = compile_grad("sum(A @ w)", wrt=["w"], shapes={"A": ("n", "p"), "w": ("p",)})
    with pytest.raises(ShapeError, match=r"chunked along 2 named dimensions \(n: A axis 0; p: A axis 1\)"):
        on_dask.call(two, (da.from_array(X, chunks=(300, 2)), W), {})
    fixed = compile_grad("sum(x**2)", shapes={"x": (10,)})
    with pytest.raises(ShapeError, match=r"no Dask input has a named dimension.*x \(10,\)"):
        on_dask.call(fixed, (da.ones(10, chunks=5),), {})
    later = compile_grad("mean((a*t - y)**2)", wrt=["a"])  # shapes from the first call
    with pytest.raises(ShapeError, match=r"compile it with shapes= naming the rows"):
        on_dask.call(later, (0.5, da.ones(10, chunks=5), da.ones(10, chunks=5)), {})


# -------------------------------------------------------------------- faults

def _slow(block):
    time.sleep(0.25)
    return block


@pytest.mark.slow
def test_a_worker_killed_mid_gradient_does_not_change_the_result(tmp_path):
    """SIGKILL one of two worker processes while a gradient over 16 slow chunks runs:
    Dask recomputes the lost chunks (kernels are pure), and the answer is unchanged."""
    env = {"EXPRCOMPILER_CACHE": str(tmp_path / "cache")}
    with environ_kept(), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None, env=env) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        rng = da.random.default_rng(11)
        data_x = rng.normal(size=(16_000, 5), chunks=(1000, 5))
        data_y = rng.normal(size=16_000, chunks=1000)
        g = compile_grad("0.5*sum((X@w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES, backend="c")
        lazy = on_dask.call(g, (data_x.map_blocks(_slow), W, data_y.map_blocks(_slow)), {}, split_every=4)
        pids = client.run(os.getpid)
        parts, nesting = on_dask.flatten(lazy)
        futures = client.compute(parts)
        time.sleep(1.5)  # some chunks done, some running
        assert not any(f.done() for f in futures)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        result = on_dask.unflatten(nesting, client.gather(futures))
        assert victim not in client.run(os.getpid).values()  # the nanny started a new process
        x_mem, y_mem = dask.compute(data_x, data_y, scheduler="threads")
    _assert_close(result, g(x_mem, W, y_mem))


def test_the_bench_pins_a_worker_only_within_its_affinity_mask():
    # bench/dask_machine.pin_process (dask_griewank --pin), in a process of its own: asked
    # for CPU i past the mask's size it wraps around, and every thread ends up on that CPU
    code = ("import os; from exprcompiler.bench.dask_machine import pin_process; "
            "mask = os.sched_getaffinity(0); cpu = pin_process(len(mask) + 1); "
            "print(cpu in mask, os.sched_getaffinity(0) == {cpu}, cpu == sorted(mask)[1 % len(mask)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]
