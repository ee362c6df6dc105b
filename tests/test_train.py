"""train(): mini-batches, the optimizers' per-step updates, L2, early stopping, restarts,
metrics, progress, plots; and the notes' experiment on digits (logistic ≥ 85%, the
two-layer network ≥ 90% on odd/even)."""

import io
import sys

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.driver import OPTIMIZERS, logistic, mlp, plot_history, train
from exprcompiler.driver.train import batch_order, shuffle_rng

LSQ = "mean((X @ w - y)**2)"


def _lsq(n=40, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ np.arange(1.0, p + 1) + 0.1 * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def digits():
    from exprcompiler.driver.data import load_digits
    pytest.importorskip("sklearn")
    return load_digits("parity", seed=0)


# -- the loop itself ------------------------------------------------------------------------
def test_full_batch_sgd_is_gradient_descent_step_by_step():
    X, y = _lsq()
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=None, epochs=7, lr=0.05)
    w = np.zeros(3)
    for _ in range(7):
        w = w - 0.05 * (2 / len(y)) * X.T @ (X @ w - y)
    np.testing.assert_allclose(r.params["w"], w, rtol=1e-13)
    assert r.steps == 7 and r.epochs == 7 and len(r.history) == 7
    assert r.loss == pytest.approx(np.mean((X @ w - y) ** 2), rel=1e-12)


def test_adam_per_step_follows_the_notes():
    X, y = _lsq(n=10, p=2)
    r = train(LSQ, {"w": np.array([0.5, -0.5])}, {"X": X, "y": y}, batch=None, epochs=4,
              optimizer="adam", lr=0.1)
    w, m, s = np.array([0.5, -0.5]), np.zeros(2), np.zeros(2)
    for t in range(1, 5):
        g = (2 / len(y)) * X.T @ (X @ w - y)
        m = 0.9 * m + 0.1 * g
        s = 0.999 * s + 0.001 * g * g
        w = w - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(r.params["w"], w, rtol=1e-12)


def test_mini_batches_follow_the_seeded_shuffle():
    X, y = _lsq(n=10)
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=4, epochs=2, lr=0.1, seed=5)
    rng, w = shuffle_rng(5), np.zeros(3)
    for _ in range(2):
        for idx in batch_order(10, 4, rng):
            Xb, yb = X[idx], y[idx]
            w = w - 0.1 * (2 / len(idx)) * Xb.T @ (Xb @ w - yb)
    np.testing.assert_allclose(r.params["w"], w, rtol=1e-13)
    assert r.steps == 6  # 4 + 4 + 2 per epoch
    assert sorted(np.concatenate(batch_order(10, 4, shuffle_rng(0))).tolist()) == list(range(10))
    again = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=4, epochs=2, lr=0.1, seed=5)
    other = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=4, epochs=2, lr=0.1, seed=6)
    assert np.array_equal(again.params["w"], r.params["w"])
    assert not np.array_equal(other.params["w"], r.params["w"])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_least_squares(name):
    X, y = _lsq()
    lr = {"rmsprop": 0.05, "adam": 0.1, "subgradient": 0.1}.get(name, 0.05)
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, optimizer=name, lr=lr, batch=8, epochs=60)
    np.testing.assert_allclose(r.params["w"], np.linalg.lstsq(X, y, rcond=None)[0], atol=0.1)


def test_l2_regularization_reaches_the_ridge_solution():
    X, y = _lsq()
    lam = 0.5
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=None, epochs=400, lr=0.2, l2=lam)
    n = len(y)
    ridge = np.linalg.solve(X.T @ X / n + lam * np.eye(3), X.T @ y / n)
    np.testing.assert_allclose(r.params["w"], ridge, rtol=1e-8)
    # the reported loss is the data term alone
    assert r.loss == pytest.approx(np.mean((X @ ridge - y) ** 2), rel=1e-8)


def test_l2_spares_a_models_biases():
    rng = np.random.default_rng(0)
    X = rng.random((30, 4))
    yy = (X[:, 0] > 0.5).astype(int)
    m = logistic(4)
    start = {"w": np.zeros(4), "b": np.array(3.0)}
    plain = train(m, start, (X, yy), batch=None, epochs=1, lr=0.1)
    reg = train(m, start, (X, yy), batch=None, epochs=1, lr=0.1, l2=1.0)
    assert reg.params["b"] == plain.params["b"]  # the bias's gradient has no penalty
    everything = train(m, start, (X, yy), batch=None, epochs=1, lr=0.1, l2=1.0, l2_params=["w", "b"])
    assert everything.params["b"] == pytest.approx(plain.params["b"] - 0.1 * 2 * 3.0)


def test_early_stopping_restores_the_best_parameters():
    # training pulls w to 2, the validation data want w = 1: the validation loss falls,
    # then rises, and the parameters of its lowest epoch come back
    x = np.linspace(-1, 1, 21)[:, None]
    train_data = {"X": x, "y": 2 * x[:, 0]}
    val_data = {"X": x, "y": 1 * x[:, 0]}
    r = train(LSQ, {"w": np.zeros(1)}, train_data, batch=None, epochs=200, lr=0.1,
              validation=val_data, patience=3)
    h = r.history
    best = int(np.argmin(h.val_loss))
    assert r.stopped_early and "stopped early" in r.message
    assert r.epochs == best + 1 + 3 == len(h)
    assert r.best_epoch == best + 1
    assert r.val_loss == pytest.approx(h.val_loss[best], rel=1e-12)
    assert abs(r.params["w"][0] - 1) < 0.1  # not the last epoch's, which is further toward 2
    last = train(LSQ, {"w": np.zeros(1)}, train_data, batch=None, epochs=r.epochs, lr=0.1)
    assert abs(last.params["w"][0] - 1) > abs(r.params["w"][0] - 1)


def test_validation_split_is_a_seeded_fraction():
    X, y = _lsq(n=50)
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=10, epochs=2, validation=0.2)
    assert r.steps == 2 * 4  # 40 training examples in batches of 10
    assert np.isfinite(r.history.val_loss).all() and r.val_loss is not None


def test_restarts_return_the_best_run():
    # a double well: the left minimum is lower, so runs that start on the right lose
    loss = "mean((w**2 - 1)**2 + 0.3 * w * x)"
    r = train(loss, lambda seed: {"w": np.random.default_rng(seed).uniform(-2, 2, size=())},
              {"x": np.ones(8)}, batch=None, epochs=200, lr=0.05, restarts=6, seed=0)
    finals = [run.loss for run in r.runs]
    assert len(r.runs) == 6 and len({run.seed for run in r.runs}) == 6
    assert max(finals) - min(finals) > 0.5  # both wells were found
    assert r.loss == min(finals) and r.runs[r.run] is r
    assert r.params["w"] < 0


def test_restarts_choose_by_validation_loss_when_there_is_one(digits):
    r = train(mlp([64, 8, 1]), data=(digits.X_train[:300], digits.y_train[:300]), epochs=3,
              restarts=3, validation=0.3)
    assert r.val_loss == min(run.val_loss for run in r.runs)


def test_divergence_is_reported_and_params_stay_finite():
    X, y = _lsq()
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, batch=None, epochs=500, lr=10.0)
    assert r.diverged and "diverged at epoch" in r.message and "step too large" in r.message
    assert np.isfinite(r.params["w"]).all() and r.epochs < 500


def test_metrics_per_epoch_and_the_compiled_loss():
    X, y = _lsq()
    g = compile_grad(LSQ, ["w"], shapes={"X": ("n", 3), "w": (3,), "y": ("n",)})
    r = train(g, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=5, batch=16)
    h = r.history
    assert h.epoch.tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(h.accuracy).all() and np.isnan(h.val_loss).all() and r.accuracy is None
    assert (np.diff(h.time) > 0).all() and h.loss[-1] < h.loss[0]
    with pytest.raises(AttributeError):
        h.nothing  # noqa: B018


def test_a_custom_accuracy_is_measured():
    X, y = _lsq()
    hits = lambda params, data: float(np.mean(np.abs(data["X"] @ params["w"] - data["y"]) < 0.5))  # noqa: E731
    r = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=30, batch=8, lr=0.05, accuracy=hits)
    assert r.accuracy == r.history.accuracy[-1] and r.accuracy > 0.9


def test_ten_classes_with_softmax_regression():
    from exprcompiler.driver.data import load_digits
    pytest.importorskip("sklearn")
    ds = load_digits("digit", seed=0)
    r = train(logistic(64, classes=10), data=(ds.X_train, ds.y_train), epochs=15, lr=0.5)
    assert r.score(ds.X_test, ds.y_test) >= 0.9


# -- the notes' experiment ------------------------------------------------------------------
def test_logistic_regression_on_odd_even_digits(digits):
    r = train(logistic(64), data=(digits.X_train, digits.y_train), optimizer="sgd", lr=0.1,
              epochs=30, batch=64, seed=0)
    assert r.score(digits.X_test, digits.y_test) >= 0.85


def test_two_layer_network_on_odd_even_digits(digits):
    r = train(mlp([64, 32, 1]), data=(digits.X_train, digits.y_train), optimizer="sgd", lr=0.1,
              epochs=30, batch=64, seed=0)
    assert r.score(digits.X_test, digits.y_test) >= 0.90
    assert r.accuracy >= 0.90 and r.history.loss[-1] < r.history.loss[0] / 3


def test_the_c_backend_trains_the_same_parameters(digits):
    from exprcompiler.errors import CompileError
    model = mlp([64, 8, 1])
    data = (digits.X_train[:200], digits.y_train[:200])
    try:
        c = train(model, data=data, epochs=2, backend="c")
    except CompileError as err:
        pytest.skip(f"no C tensor backend here: {err.one_line()}")
    py = train(model, data=data, epochs=2)
    assert c.backend == "c"
    for k in py.params:
        np.testing.assert_allclose(c.params[k], py.params[k], rtol=1e-9, atol=1e-12)


# -- progress, plots, mistakes --------------------------------------------------------------
def test_a_bar_with_the_running_loss_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    from exprcompiler.driver import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    bars = []

    def spy(*args, **kwargs):
        bars.append(progress_bar(*args, **kwargs))
        return bars[-1]
    progress_bar = progress.bar
    monkeypatch.setattr(progress, "bar", spy)
    monkeypatch.setattr(sys, "stderr", Terminal())
    X, y = _lsq(n=200)
    train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=3, batch=8, lr=0.01)
    (bar,) = bars
    assert isinstance(bar, progress._Bar) and bar.bar.total == 75 and bar.bar.n == 50
    assert bar.bar.postfix.startswith("loss=") and "sgd" in sys.stderr.getvalue()
    train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=3, batch=8, lr=0.01, quiet=True)
    assert isinstance(bars[-1], progress._Silent)


def test_plot_history_draws_training_curves(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = _lsq()
    a = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=5, validation=0.25)
    b = train(LSQ, {"w": np.zeros(3)}, {"X": X, "y": y}, epochs=5, optimizer="adam", lr=0.1)
    path = tmp_path / "curves.png"
    fig = plot_history({"sgd": a, "adam": b}, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["sgd: training", "sgd: validation", "adam: training"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="newton"), "newton evaluates the whole objective; use minimize"),
    (dict(optimizer="sgdd"), "unknown optimizer 'sgdd'"),
    (dict(beta=0.9), "sgd has no option 'beta'"),
    (dict(maxiter=3), "sgd has no option 'maxiter'"),
    (dict(linesearch="armijo"), "not a line search"),
    (dict(patience=3), "needs a validation set"),
    (dict(restarts=2), "restarts need different starts"),
    (dict(epochs=0), "epochs must be a positive whole number"),
    (dict(batch=2.5), "batch must be a positive whole number"),
    (dict(l2=-1), "l2 must be a number >= 0"),
    (dict(l2_params=["v"]), "l2_params: v is not a parameter"),
    (dict(validation=1.5), "validation must be a fraction"),
    (dict(data={"X": np.ones((4, 3)), "y": np.ones(5)}), "disagree on the number of examples"),
    (dict(data=(np.ones((4, 3)), np.ones(4))), "needs a Model"),
    (dict(params={"v": np.zeros(3)}), "params: v is not a variable of the loss"),
    (dict(data={"X": np.ones((4, 3)), "z": np.ones(4)}), "data: z is not a variable of the loss"),
])
def test_mistakes_are_explained(kwargs, message):
    X, y = _lsq()
    args = dict(params={"w": np.zeros(3)}, data={"X": X, "y": y})
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError)) as info:
        train(LSQ, **args)
    assert message in str(info.value), str(info.value)


# -- the model builders ---------------------------------------------------------------------
def test_binary_cross_entropy_from_logits_is_stable():
    from exprcompiler import compile_expr
    m = logistic(2)
    f = compile_expr(m.loss, shapes=m.shapes)
    X = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.3, 0.0]])
    y = np.array([0.0, 1.0, 1.0])
    value = f(X=X, y=y, w=np.array([1.0, 0.0]), b=0.0)
    naive = -np.log(1 / (1 + np.exp(-0.3)))
    assert value == pytest.approx((1000 + 1000 + naive) / 3, rel=1e-12)


def test_softmax_cross_entropy_is_stable():
    from exprcompiler import compile_expr
    m = logistic(1, classes=3)
    f = compile_expr(m.loss, shapes=m.shapes)
    X = np.array([[1.0]])
    Y = np.array([[0.0, 1.0, 0.0]])
    value = f(X=X, Y=Y, W=np.array([[800.0, 0.0, -800.0]]), b=np.zeros(3))
    assert value == pytest.approx(800.0, rel=1e-12)


def test_mlp_builder():
    m = mlp([64, 32, 16, 10], activation="tanh")
    assert m.params == ("W1", "b1", "W2", "b2", "W3", "b3") and m.weights == ("W1", "W2", "W3")
    assert m.shapes == {"X": ("n", 64), "W1": (64, 32), "b1": (32,), "W2": (32, 16), "b2": (16,),
                        "W3": (16, 10), "b3": (10,), "Y": ("n", 10)}
    assert m.loss.splitlines() == ["h1 = tanh(X @ W1 + b1)", "h2 = tanh(h1 @ W2 + b2)",
                                   "Z = h2 @ W3 + b3",
                                   "mean(logsumexp(Z, axis=1) - sum(Y * Z, axis=1))"]
    binary = mlp([64, 32, 1])
    assert binary.shapes["W2"] == (32,) and binary.shapes["b2"] == () and binary.classes == 2
    assert binary.loss.splitlines()[-1] == "mean(softplus(z) - y * z)"
    p = binary.init(0)
    assert np.std(p["W1"]) == pytest.approx(np.sqrt(2 / 64), rel=0.1)  # He before a ReLU
    assert not p["b1"].any() and np.array_equal(binary.init(0)["W1"], p["W1"])
    assert not np.array_equal(binary.init(1)["W1"], p["W1"])
    with pytest.raises(ValueError, match="activation must be one of"):
        mlp([4, 2, 1], activation="gelu")
    with pytest.raises(ValueError, match="at least an input and an output"):
        mlp([4])
    with pytest.raises(ValueError, match="classes must be"):
        logistic(4, classes=1)
    with pytest.raises(ValueError, match="class labels 0..1"):
        binary.data(np.ones((2, 64)), np.array([0, 2]))
    with pytest.raises(ValueError, match=r"shape \(n, 64\)"):
        binary.data(np.ones((2, 63)), np.array([0, 1]))


def test_the_steps_finiteness_check_looks_at_every_element_when_the_sum_is_not_finite():
    """train's per-step check (the gradient's sum first): elements whose sum overflows
    are finite; one inf, -inf or NaN anywhere is not, float32 too."""
    from exprcompiler.driver.train import _finite
    with np.errstate(over="ignore", invalid="ignore"):  # as train's loop runs it
        _check_finite(_finite)


def _check_finite(_finite):
    for dtype in (np.float64, np.float32):
        big = np.finfo(dtype).max
        assert _finite(np.array([big, big, 1.0], dtype=dtype))
        assert _finite(np.array([-big, -big], dtype=dtype)) and _finite(np.zeros(0, dtype=dtype))
        for bad in (np.inf, -np.inf, np.nan):
            g = np.ones(2113, dtype=dtype)
            g[1717] = bad
            assert not _finite(g)
        g = np.ones(5, dtype=dtype)
        g[0], g[1] = np.inf, -np.inf  # a sum of NaN
        assert not _finite(g)
