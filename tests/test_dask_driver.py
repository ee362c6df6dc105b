"""The driver on Dask data (exprcompiler/dask_driver.py, driver/objective.py,
driver/train.py): `minimize` (gd, lbfgs, newton-cg, newton), `g.scipy()` and `train` with
data given as Dask arrays chunked along the rows, on Dask's threaded scheduler and on
a real 2-process LocalCluster. Every evaluation equals the in-memory one to 1e-12;
optimizer runs take the same path; mini-batches cover every row once per epoch in a
seeded order; the check of how outputs combine runs once per compiled function; a
worker with no C compiler runs the NumPy kernel and says so once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import environ_kept

dask = pytest.importorskip("dask", reason="dask is not installed (pip install 'exprcompiler[dask]')")
da = pytest.importorskip("dask.array", reason="dask.array is not installed (pip install 'dask[array]')")
distributed = pytest.importorskip("distributed", reason="distributed is not installed "
                                  "(pip install 'exprcompiler[dask]')")

from exprcompiler import compile_expr, compile_grad, compile_hvp, dask_driver, dask_loss, on_dask  # noqa: E402
from exprcompiler.driver import minimize, train  # noqa: E402
from exprcompiler.driver.models import logistic  # noqa: E402
from exprcompiler.driver.objective import Objective  # noqa: E402
from exprcompiler.driver.train import shuffle_rng  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use")

P = 6
SHAPES = {"X": ("n", P), "y": ("n",), "w": (P,)}
LSQ = "0.5*sum((X@w - y)**2)"
RNG = np.random.default_rng(11)
N = 1201
X = RNG.normal(size=(N, P))
Y = X @ np.linspace(-1, 1, P) + 0.1 * RNG.normal(size=N)
LABELS = (X @ np.linspace(1, -1, P) + 0.5 * RNG.normal(size=N) > 0).astype(float)


def dask_data(chunks=(300, 300, 300, 301), **arrays):
    arrays = arrays or {"X": X, "y": Y}
    return {k: da.from_array(v, chunks=(chunks,) + v.shape[1:]) for k, v in arrays.items()}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with environ_kept():   # (the Nannies' environment is their workers', not this process's)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                           env={"EXPRCOMPILER_CACHE": str(tmp_path_factory.mktemp("cache"))})
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


# the cluster runs are slow (CI runs them): a LocalCluster is seconds of both cores
@pytest.fixture(params=["threads", pytest.param("cluster", marks=pytest.mark.slow)])
def scheduler(request):
    """Dask's default scheduler for the test: the driver computes with whatever it is."""
    chosen = "threads" if request.param == "threads" else request.getfixturevalue("client")
    with dask.config.set(scheduler=chosen):
        yield chosen


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ----------------------------------------------------------------- evaluations

@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_objective_evaluations_equal_in_memory(backend, scheduler):
    memory = Objective(LSQ, data={"X": X, "y": Y}, shapes=SHAPES, wrt=["w"], backend=backend, needs="hvp")
    chunked = Objective(LSQ, data=dask_data(), shapes=SHAPES, wrt=["w"], backend=backend, needs="hvp")
    assert chunked.on_dask and not memory.on_dask
    for k in range(3):
        x, v = np.random.default_rng(k).normal(size=(2, P))
        (f0, g0), (f1, g1) = memory.value_grad(x), chunked.value_grad(x)
        assert isinstance(f1, float) and isinstance(g1, np.ndarray) and g1.shape == (P,)
        assert relative(f1, f0) < 1e-12 and relative(g1, g0) < 1e-12
        assert relative(chunked.hvp(x, v), memory.hvp(x, v)) < 1e-12


def test_a_mean_loss_with_a_matrix_parameter_packs_like_in_memory():
    shapes = {"X": ("n", P), "y": ("n",), "W": (P, 2), "v": (2,)}
    expr = "mean((tanh(X@W)@v - y)**2)"
    x = np.random.default_rng(3).normal(size=P * 2 + 2)
    memory = Objective(expr, data={"X": X, "y": Y}, shapes=shapes, wrt=["W", "v"])
    chunked = Objective(expr, data=dask_data(chunks=(500, 500, 201)), shapes=shapes, wrt=["W", "v"])
    (f0, g0), (f1, g1) = memory.value_grad(x), chunked.value_grad(x)
    assert relative(f1, f0) < 1e-12 and relative(g1, g0) < 1e-12


@pytest.mark.parametrize("method,options", [("gd", {"lr": 2e-4}), ("lbfgs", {}), ("newton-cg", {}), ("newton", {})])
def test_minimize_on_dask_data_takes_the_in_memory_path(method, options, scheduler):
    g = compile_grad(LSQ, ["w"], shapes=SHAPES)
    runs = [minimize(g, {"w": np.zeros(P)}, method=method, data=data, quiet=True, maxiter=30, **options)
            for data in ({"X": X, "y": Y}, dask_data())]
    memory, chunked = runs
    assert chunked.iterations == memory.iterations and chunked.evaluations == memory.evaluations
    assert chunked.hessian_evaluations == memory.hessian_evaluations
    assert relative(chunked.x, memory.x) < 1e-10 and relative(chunked.f, memory.f) < 1e-10
    if method != "gd":
        assert chunked.converged
        assert relative(chunked.x, np.linalg.lstsq(X, Y, rcond=None)[0]) < 1e-6


def test_the_combination_check_runs_once_per_compiled_function_in_a_loop():
    g = compile_grad(LSQ, ["w"], shapes=SHAPES)
    h = compile_hvp(LSQ, ["w"], shapes=SHAPES)
    # CHECKS counts by id(): a freed object of an earlier test may have left a count under
    # the id that g or h now has, so the counts are read as increments
    before = {"g": dask_loss.CHECKS[id(g)], "h": dask_loss.CHECKS[id(h)]}
    with dask.config.set(scheduler="threads"):
        r = minimize(h, {"w": np.zeros(P)}, method="newton-cg", data=dask_data(), quiet=True)
        minimize(g, {"w": np.zeros(P)}, method="lbfgs", data=dask_data(), quiet=True)
    assert r.hessian_evaluations > 2
    assert dask_loss.CHECKS[id(h)] - before["h"] == 1 and dask_loss.CHECKS[id(g)] - before["g"] == 1
    g(X=dask_data()["X"], y=dask_data()["y"], w=np.ones(P))  # the same shapes, another chunking
    assert dask_loss.CHECKS[id(g)] - before["g"] == 1


def test_scipy_adapters_take_dask_data(scheduler):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    g = compile_grad(LSQ, ["w"], shapes=SHAPES)
    fun, hessp = g.scipy(**dask_data())
    best = np.linalg.lstsq(X, Y, rcond=None)[0]
    for method in ("L-BFGS-B", "trust-ncg"):
        r = scipy_optimize.minimize(fun, np.zeros(P), jac=True, method=method,
                                    **({"hessp": hessp} if method == "trust-ncg" else {}))
        assert relative(r.x, best) < 1e-5, method
    x = np.random.default_rng(5).normal(size=P)
    assert relative(fun(x)[1], g.at(x, X=X, y=Y)[1]) < 1e-12


def test_the_driver_on_numpy_data_never_imports_dask():
    code = ("import sys, numpy as np\n"
            "from exprcompiler.driver import minimize, train\n"
            "minimize('0.5*sum((X@w - y)**2)', {'w': np.zeros(2)}, data={'X': np.eye(2), 'y': np.ones(2)},\n"
            "         shapes={'X': ('n', 2), 'y': ('n',), 'w': (2,)}, quiet=True)\n"
            "train('mean((X@w - y)**2)', {'w': np.zeros(2)}, {'X': np.eye(2), 'y': np.ones(2)}, batch=1,\n"
            "      epochs=1, quiet=True)\n"
            "assert not [m for m in sys.modules if m.startswith('dask')], 'dask was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_elementwise_functions_refuse_dask_data_by_name():
    with pytest.raises(TypeError, match=r"data: a is a Dask array.*elementwise.*shapes="):
        minimize("(x - a)**2", {"x": 0.0}, data={"a": da.ones(4, chunks=2)}, quiet=True)


# ------------------------------------------------------------------------ train

@pytest.mark.parametrize("chunks", [(500, 200, 501), (10,) * 120 + (1,)], ids=["large", "smaller than a batch"])
def test_an_epoch_of_batches_covers_every_row_once_in_a_seeded_order(chunks):
    ids = np.arange(N, dtype=float)
    data = dask_data(chunks=chunks, X=np.stack([ids, -ids], axis=1), y=ids)
    epochs = [list(dask_driver.batches(data, 64, np.random.default_rng(s))) for s in (1, 1, 2)]
    rows = [np.concatenate([part["y"] for part, _ in e]) for e in epochs]
    assert sorted(rows[0]) == list(ids)  # every row once
    assert np.array_equal(rows[0], rows[1]) and not np.array_equal(rows[0], rows[2])
    for part, count in epochs[0]:
        assert np.array_equal(part["X"][:, 0], part["y"]) and len(part["y"]) == count
    assert [c for _, c in epochs[0]] == [64] * (N // 64) + [N % 64]  # batches span chunks


def in_memory(model, params, data) -> tuple[float, float]:
    """A model's loss and accuracy at `params` on NumPy data."""
    loss = compile_expr(model.loss, shapes=model.shapes)(**params, **data)
    return float(loss), model.accuracy(params, data)


def _replay(w0, data, epochs, batch, lr, seed=0):
    """SGD over dask_driver.batches with the run's generator, in NumPy: what train
    must do with Dask data."""
    g = compile_grad("mean(log(1 + exp(-(2*y - 1)*(X@w + b))))", ["w", "b"],
                     shapes={"X": ("n", P), "y": ("n",), "w": (P,), "b": ()})
    w, b = w0["w"].copy(), float(w0["b"])
    rng = shuffle_rng(seed)
    for _ in range(epochs):
        for part, _ in dask_driver.batches(data, batch, rng):
            _, (gw, gb) = g(X=part["X"], y=part["y"], w=w, b=b)
            w, b = w - lr * gw, b - lr * gb
    return w, b


def test_mini_batch_training_on_dask_data_is_sgd_over_the_chunk_batches(scheduler):
    model = logistic(P)
    data = dask_data(X=X, y=LABELS)
    r = train(model, data=data, epochs=3, batch=50, lr=0.2, quiet=True)
    w, b = _replay(model.init(0), data, 3, 50, 0.2)
    assert relative(r.params["w"], w) < 1e-12 and relative(r.params["b"], b) < 1e-12
    assert r.steps == 3 * -(-N // 50)
    loss, accuracy = in_memory(model, r.params, {"X": X, "y": LABELS})
    assert relative(r.loss, loss) < 1e-12 and r.accuracy == accuracy


def test_full_batch_training_on_dask_data_equals_in_memory():
    model = logistic(P)
    with dask.config.set(scheduler="threads"):
        chunked = train(model, data=dask_data(X=X, y=LABELS), epochs=4, batch=None, lr=0.5, quiet=True)
    memory = train(model, data={"X": X, "y": LABELS}, epochs=4, batch=None, lr=0.5, quiet=True)
    assert relative(chunked.params["w"], memory.params["w"]) < 1e-12
    assert relative(chunked.history.loss, memory.history.loss) < 1e-12
    assert np.array_equal(chunked.history.accuracy, memory.history.accuracy)


def test_validation_split_per_chunk_and_early_stopping_on_dask_data():
    model = logistic(P)
    data = dask_data(X=X, y=LABELS)
    with dask.config.set(scheduler="threads"):
        r = train(model, data=(data["X"], data["y"]), validation=0.25, patience=2, epochs=40, batch=100,
                  lr=3.0, seed=4, quiet=True)
        held = dask_driver.holdout(data, 0.25, 4)
    kept, val = (dask.compute(part)[0] for part in held)
    assert len(kept["y"]) + len(val["y"]) == N and abs(len(val["y"]) - N / 4) <= 4
    assert not set(map(tuple, kept["X"])) & set(map(tuple, val["X"]))
    # the reported validation loss is the in-memory loss of the held-out rows at the result
    loss, accuracy = in_memory(model, r.params, val)
    assert relative(r.val_loss, loss) < 1e-12 and r.val_accuracy == accuracy
    assert r.stopped_early and "stopped early" in r.message


# ------------------------------------------------------------ no C compiler

@pytest.mark.slow
def test_a_worker_without_a_c_compiler_runs_numpy_and_says_so_once(tmp_path):
    with environ_kept():   # (the Nanny's environment is its worker's, not this process's)
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                           env={"PATH": str(tmp_path), "EXPRCOMPILER_CACHE": str(tmp_path / "cache")})
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            g = compile_grad(LSQ, ["w"], shapes=SHAPES, backend="c")
            h = compile_hvp(LSQ, ["w"], shapes=SHAPES, backend="c")
            with dask.config.set(scheduler=client):
                first = Objective(g, data=dask_data()).value_grad(np.ones(P))
                Objective(h, data=dask_data(), needs="hvp").hvp(np.ones(P), np.ones(P))
            assert relative(first[1], g.at(np.ones(P), X=X, y=Y)[1]) < 1e-12
            notices = client.run(lambda: list(__import__("exprcompiler.on_dask").on_dask.FALLBACKS))
            assert [len(n) for n in notices.values()] == [1]
            assert "no C compiler found" in next(iter(notices.values()))[0]
            events = client.get_events("exprcompiler")
            assert len(events) == 1 and "running the NumPy kernel instead" in events[0][1]["notice"]
    finally:
        cluster.close()
    assert on_dask.FALLBACKS == []  # this process has a compiler: no notice here


def test_at_with_dask_data_computes_once_and_matches_memory():
    """g.at(x, X=dask, y=dask): numbers, not lazy arrays, equal to the in-memory call."""
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt="w", shapes={"X": ("n", 3), "y": ("n",), "w": (3,)})
    rng = np.random.default_rng(2)
    X, y, w = rng.normal(size=(90, 3)), rng.normal(size=90), rng.normal(size=3)
    value, grad = g.at(w, X=da.from_array(X, chunks=(25, 3)), y=da.from_array(y, chunks=25))
    want_value, want_grad = g.at(w, X=X, y=y)
    assert type(value) is float and type(grad) is np.ndarray
    assert abs(value - want_value) <= 1e-12 * abs(want_value)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12)
