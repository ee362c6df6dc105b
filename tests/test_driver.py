"""The driver's optimizers (exprcompiler/driver): each method reaches the minimizer of a
strongly convex quadratic and of Rosenbrock from (-1.2, 1); the update formulas match
the notes' arithmetic step by step; stopping rules, divergence, options and inputs."""

import math

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, compile_hvp
from exprcompiler.driver import METHODS, minimize
from exprcompiler.driver.objective import Objective

QUADRATIC = "(x - 1)**2 + 4*(y + 2)**2 + x*y"          # Hessian [[2, 1], [1, 8]]: μ ≈ 1.86
QUADRATIC_MIN = np.array([32 / 15, -34 / 15])
ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"
ROSENBROCK_START = {"x": -1.2, "y": 1.0}

# The tolerance each method is documented to reach, and the options it needs to get
# there. Methods that stop on gtol = 1e-6 are within ‖∇f‖/μ of the minimizer (μ the
# smallest Hessian eigenvalue: 1.86 for the quadratic, 0.4 at Rosenbrock's minimum).
# RMSProp with a constant step does not converge: it hovers within about η of the
# minimizer, so it is held to that and given no gtol.
CONVERGES = 1e-5
QUADRATIC_RUNS = {
    "gd": ({"lr": 0.2}, CONVERGES),
    "subgradient": ({"lr": 0.1, "schedule": "constant"}, CONVERGES),
    "momentum": ({"lr": 0.05, "beta": 0.9}, CONVERGES),
    "nesterov": ({"lr": 0.05, "beta": 0.9}, CONVERGES),
    "rmsprop": ({"lr": 1e-2, "maxiter": 2000}, 1e-2),
    "adam": ({"lr": 0.05, "maxiter": 5000}, CONVERGES),
    "coordinate": ({}, CONVERGES),
    "newton": ({}, 1e-12),
    "newton-cg": ({}, 1e-12),
    "lbfgs": ({}, CONVERGES),
}
ROSENBROCK_RUNS = {
    "gd": ({"lr": 1.0, "linesearch": "armijo", "maxiter": 20000}, CONVERGES),
    "subgradient": ({"lr": 1e-3, "schedule": "constant", "maxiter": 40000}, CONVERGES),
    "momentum": ({"lr": 1e-3, "beta": 0.9, "maxiter": 5000}, CONVERGES),
    "nesterov": ({"lr": 1e-3, "beta": 0.9, "maxiter": 5000}, CONVERGES),
    "rmsprop": ({"lr": 1e-3, "maxiter": 10000}, 2e-3),
    "adam": ({"lr": 0.01, "maxiter": 10000}, CONVERGES),
    "coordinate": ({"linesearch": "armijo", "maxiter": 5000}, CONVERGES),
    "newton": ({}, 1e-8),
    "newton-cg": ({}, 1e-8),
    "lbfgs": ({}, CONVERGES),
}


def test_every_method_has_a_run_in_each_table():
    assert set(QUADRATIC_RUNS) == set(METHODS) == set(ROSENBROCK_RUNS)


@pytest.mark.parametrize("method", list(METHODS))
def test_reaches_the_minimizer_of_a_strongly_convex_quadratic(method):
    options, tol = QUADRATIC_RUNS[method]
    r = minimize(QUADRATIC, {"x": 5.0, "y": 5.0}, method, **options)
    assert np.linalg.norm(r.x - QUADRATIC_MIN) <= tol, r
    if method != "rmsprop":
        assert r.converged, r
        assert r.grad_norm <= 1e-6
    assert r.f == pytest.approx(float(r.history.f[-1]))


@pytest.mark.parametrize("method", list(METHODS))
def test_reaches_the_minimizer_of_rosenbrock_from_the_standard_start(method):
    options, tol = ROSENBROCK_RUNS[method]
    r = minimize(ROSENBROCK, ROSENBROCK_START, method, **options)
    assert np.linalg.norm(r.x - 1.0) <= tol, r
    if method != "rmsprop":
        assert r.converged, r


def test_second_order_methods_need_few_iterations_on_rosenbrock():
    iterations = {m: minimize(ROSENBROCK, ROSENBROCK_START, m).iterations
                  for m in ("newton", "newton-cg", "lbfgs")}
    assert max(iterations.values()) < 100, iterations
    gd = minimize(ROSENBROCK, ROSENBROCK_START, "gd", lr=1.0, linesearch="armijo", maxiter=1000)
    assert not gd.converged  # the valley: steepest descent is far slower


@pytest.mark.parametrize("search", ["armijo", "wolfe", "exact"])
def test_gradient_descent_with_each_line_search(search):
    r = minimize(QUADRATIC, [5.0, 5.0], "gd", lr=1.0, linesearch=search)
    assert r.converged and np.linalg.norm(r.x - QUADRATIC_MIN) <= CONVERGES
    assert r.evaluations > r.iterations  # trial points are counted


def test_exact_line_search_on_a_quadratic_takes_the_exact_step():
    # steepest descent with exact steps on f = x² + 10y²: α* = gᵀg / gᵀHg
    r = minimize("x**2 + 10*y**2", [1.0, 1.0], "gd", lr=1.0, linesearch="exact", maxiter=1)
    g = np.array([2.0, 20.0])
    alpha = (g @ g) / (g @ (np.diag([2.0, 20.0]) @ g))
    np.testing.assert_allclose(r.x, np.array([1.0, 1.0]) - alpha * g, rtol=1e-7)


@pytest.mark.parametrize("schedule, factor", [("constant", lambda t: 1.0), ("1/t", lambda t: 1 / (t + 1)),
                                              ("1/sqrt(t)", lambda t: 1 / math.sqrt(t + 1)),
                                              ("exp", lambda t: 0.5 ** t)])
def test_step_schedules(schedule, factor):
    # f = x: the gradient is 1, so x_t - x_{t+1} is the step size η_t
    r = minimize("x", [0.0], "gd", lr=0.3, schedule=schedule, gamma=0.5, maxiter=5)
    np.testing.assert_allclose(-np.diff(r.history.x[:, 0]), [0.3 * factor(t) for t in range(5)], rtol=1e-14)


# -- the update formulas, step by step, against the notes' arithmetic ------------------

TINY = "x**2 + 3*y**2 - x*y"
TINY_START = np.array([1.0, -2.0])


def tiny_grad(w):
    x, y = w
    return np.array([2 * x - y, 6 * y - x])


def reference(update, steps=6):
    w, state, out = TINY_START.copy(), {}, [TINY_START.copy()]
    for t in range(1, steps + 1):
        w = update(w, tiny_grad(w), t, state)
        out.append(w.copy())
    return np.array(out)


def momentum_ref(w, G, t, s, lr=0.1, beta=0.8):
    # W_{t+1} = W_t − η(β G_{t−1} + G_t), G_{t−1} the previous step's direction
    s["D"] = beta * s.get("D", 0.0) + G
    return w - lr * s["D"]


def nesterov_ref(w, G, t, s, lr=0.1, beta=0.8):
    s["D"] = beta * s.get("D", 0.0) + G
    return w - lr * (G + beta * s["D"])


def rmsprop_ref(w, G, t, s, lr=0.1, beta=0.7):
    # S_t = β S_{t−1} + (1 − β) G ⊙ G;  W ← W − (γ/√S_t) ⊙ G
    s["S"] = beta * s.get("S", 0.0) + (1 - beta) * G * G
    return w - lr / np.sqrt(s["S"]) * G


def adam_ref(w, G, t, s, lr=0.1, b1=0.8, b2=0.9):
    s["M"] = b1 * s.get("M", 0.0) + (1 - b1) * G
    s["S"] = b2 * s.get("S", 0.0) + (1 - b2) * G * G
    return w - lr * (s["M"] / (1 - b1 ** t)) / np.sqrt(s["S"] / (1 - b2 ** t))


@pytest.mark.parametrize("method, options, update", [
    ("momentum", {"lr": 0.1, "beta": 0.8}, momentum_ref),
    ("nesterov", {"lr": 0.1, "beta": 0.8}, nesterov_ref),
    ("rmsprop", {"lr": 0.1, "beta": 0.7, "eps": 0.0}, rmsprop_ref),
    ("adam", {"lr": 0.1, "beta1": 0.8, "beta2": 0.9, "eps": 0.0}, adam_ref),
])
def test_update_follows_the_notes_step_by_step(method, options, update):
    r = minimize(TINY, TINY_START, method, maxiter=6, **options)
    np.testing.assert_allclose(r.history.x, reference(update), rtol=1e-13, atol=1e-15)
    assert r.iterations == 6 and r.evaluations == 7


def test_momentum_is_heavy_ball():
    # the same iterates as W_{t+1} = W_t − η G_t + β (W_t − W_{t−1})
    r = minimize(TINY, TINY_START, "momentum", lr=0.1, beta=0.8, maxiter=6)
    w_prev, w = TINY_START, TINY_START - 0.1 * tiny_grad(TINY_START)
    expected = [w_prev, w]
    for _ in range(5):
        w_prev, w = w, w - 0.1 * tiny_grad(w) + 0.8 * (w - w_prev)
        expected.append(w)
    np.testing.assert_allclose(r.history.x, expected, rtol=1e-12)


def test_adam_epsilon_sits_outside_the_square_root():
    eps = 0.5  # large enough to matter
    r = minimize(TINY, TINY_START, "adam", lr=0.1, eps=eps, maxiter=1)
    G = tiny_grad(TINY_START)  # after one step M̂ = G and Ŝ = G ⊙ G
    np.testing.assert_allclose(r.x, TINY_START - 0.1 * G / (np.abs(G) + eps), rtol=1e-14)


# -- Newton -------------------------------------------------------------------------

def test_plain_newton_heads_for_a_maximum_and_damped_newton_does_not():
    # f = x³ − 3x from x = −0.5: f'' < 0 there, so the full Newton step climbs to the
    # local maximum x = −1; the damped method makes the Hessian positive definite
    plain = minimize("x**3 - 3*x", [-0.5], "newton", linesearch=None)
    assert plain.converged and plain.x[0] == pytest.approx(-1.0)
    damped = minimize("x**3 - 3*x", [-0.5], "newton")
    assert damped.converged and damped.x[0] == pytest.approx(1.0)


def test_newton_cg_uses_hessian_vector_products_only():
    r = minimize(ROSENBROCK, ROSENBROCK_START, "newton-cg")
    assert r.hessian_evaluations >= r.iterations  # one HVP per CG step
    assert "second-order" in str(r)


def test_compiled_objects_are_reused_when_they_are_the_kernel_needed():
    g = compile_grad(ROSENBROCK)
    assert Objective(g)._grad is g
    h = compile_hvp(ROSENBROCK)
    assert Objective(h, needs="hvp")._second is h
    H = compile_hessian(ROSENBROCK)
    r = minimize(H, [-1.2, 1.0], "newton")
    assert r.converged and np.allclose(r.x, 1.0)


def test_the_c_backend_gives_the_same_run():
    pytest.importorskip("cffi")
    from exprcompiler.backends import c_build
    if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    numpy_run = minimize(ROSENBROCK, ROSENBROCK_START, "lbfgs")
    c_run = minimize(compile_grad(ROSENBROCK, backend="c"), ROSENBROCK_START, "lbfgs")
    assert c_run.backend == "c"
    assert c_run.iterations == numpy_run.iterations
    np.testing.assert_allclose(c_run.x, numpy_run.x, rtol=1e-10)


# -- stopping rules and divergence -------------------------------------------------------

def test_divergence_is_reported_with_the_iteration():
    # x_k = (−2)^k, f = 4^k: f overflows at k = 512
    r = minimize("x**2", [1.0], "gd", lr=1.5)
    assert not r.converged
    assert r.message.startswith("diverged at iteration 512 (step too large?)"), r.message
    assert r.iterations == 511 and r.x[0] == (-2.0) ** 511  # the last finite iterate
    assert np.isfinite(r.f) and len(r.history) == 512


def test_nan_is_a_divergence_too():
    r = minimize("sqrt(x)", [1.0], "gd", lr=10.0)
    assert r.message.startswith("diverged at iteration 1 (step too large?)")
    assert r.x[0] == 1.0 and r.iterations == 0


@pytest.mark.parametrize("method, lr", [("momentum", 3.0), ("nesterov", 3.0), ("rmsprop", 1e300),
                                        ("adam", 1e300), ("subgradient", 1e300)])
def test_divergence_is_detected_for_every_kind_of_step(method, lr):
    r = minimize("x**2", [1.0], method, lr=lr, schedule="constant", maxiter=100000) if method == "subgradient" \
        else minimize("x**2", [1.0], method, lr=lr, maxiter=100000)
    assert not r.converged and r.message.startswith("diverged at iteration"), r.message
    assert np.isfinite(r.x).all() and np.isfinite(r.f)


def test_a_start_where_f_is_not_finite_is_an_error():
    with pytest.raises(ValueError, match="not finite at x0"):
        minimize("log(x)", [-1.0])


def test_stopping_rules():
    r = minimize(ROSENBROCK, ROSENBROCK_START, "gd", lr=1e-3, maxiter=7)
    assert (r.iterations, r.converged) == (7, False) and "maxiter = 7" in r.message
    r = minimize(ROSENBROCK, ROSENBROCK_START, "gd", lr=1.0, linesearch="armijo", maxfev=30)
    assert r.evaluations >= 30 and "maxfev = 30" in r.message and not r.converged
    r = minimize(ROSENBROCK, ROSENBROCK_START, "gd", lr=1e-3, ftol=1e-3, maxiter=100000)
    assert r.converged and "relative improvement" in r.message
    f = r.history.f
    assert abs(f[-2] - f[-1]) <= 1e-3 * max(1.0, abs(f[-1]))
    assert np.all(np.abs(np.diff(f[:-1])) > 1e-3 * np.maximum(1.0, np.abs(f[1:-1])))
    r = minimize("(x - 2)**2", [2.0], "adam")
    assert r.converged and r.iterations == 0 and "at x0" in r.message


def test_subgradient_keeps_the_best_iterate_on_a_nonsmooth_function():
    r = minimize("abs(x - 1) + 2*abs(y + 2)", [-1.2, 1.0], "subgradient", lr=0.1, maxiter=2000)
    assert r.f == r.history.f.min()
    np.testing.assert_allclose(r.x, [1.0, -2.0], atol=1e-6)


def test_history_and_result():
    r = minimize(QUADRATIC, {"x": 5.0, "y": 5.0}, "lbfgs")
    h = r.history
    assert len(h) == r.iterations + 1 and h.x.shape == (len(h), 2)
    np.testing.assert_array_equal(h.x[0], [5.0, 5.0])
    assert h.step[0] == 0 and np.all(h.step[1:] > 0)
    np.testing.assert_allclose(h.grad_norm[-1], r.grad_norm)
    assert r.x_named == {"x": r.x[0], "y": r.x[1]}
    assert r.options["memory"] == 10 and r.options["gtol"] == 1e-6
    text = str(r)
    assert "lbfgs: converged" in text and "x = 2.13333" in text


# -- inputs and options ---------------------------------------------------------------

def test_data_inputs_and_the_order_of_variables():
    r = minimize("a*(x - b)**2 + (y - x)**2", {"y": 0.0, "x": 0.0}, "lbfgs", data={"a": 2, "b": 3})
    assert r.wrt == ("x", "y") and r.data == {"a": 2.0, "b": 3.0}
    np.testing.assert_allclose(r.x, [3.0, 3.0], atol=1e-6)
    r = minimize("a*(x - b)**2 + (y - x)**2", [0.0], "lbfgs", wrt=["x"], data={"a": 2, "b": 3, "y": 1})
    np.testing.assert_allclose(r.x, [7 / 3], atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: minimize("x**2", [1.0], "sgd"), "unknown method 'sgd' (methods: gd,"),
    (lambda: minimize("x**2", [1.0], "adam", linesearch="armijo"), "adam has no option 'linesearch'"),
    (lambda: minimize("x**2", [1.0], "gd", lr=-1), "gd: option lr must be > 0"),
    (lambda: minimize("x**2", [1.0], "momentum", beta=1.0), "option beta must be in [0, 1)"),
    (lambda: minimize("x**2", [1.0], "gd", linesearch="wolf"), "is not one of None, 'armijo'"),
    (lambda: minimize("x**2", [1.0], maxiter=0), "maxiter must be a positive whole number"),
    (lambda: minimize("x**2", {"z": 1.0}), "x0: z is not a variable of the expression"),
    (lambda: minimize("x**2 + y", {"x": 1.0}), "no value for y"),
    (lambda: minimize("x**2", [1.0, 2.0]), "x0 must hold 1 number (x)"),
    (lambda: minimize("x**2", [math.nan]), "x0 is not finite"),
    (lambda: minimize("x; y", [1.0, 2.0]), "one output"),
    (lambda: minimize("x*a", [1.0], wrt=["x"], data={"a": 1, "x": 2}), "x is optimized, not data"),
])
def test_mistakes_are_explained(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value), str(info.value)


def test_quiet_and_no_terminal_mean_no_bar():
    from exprcompiler.driver import progress
    import io
    assert isinstance(progress.bar(10, quiet=True, desc="gd"), progress._Silent)
    assert isinstance(progress.bar(10, quiet=False, desc="gd", stream=io.StringIO()), progress._Silent)


def test_a_bar_on_a_terminal_when_tqdm_is_installed():
    pytest.importorskip("tqdm")
    from exprcompiler.driver import progress
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    bar = progress.bar(200, quiet=False, desc="adam", stream=stream)
    assert isinstance(bar, progress._Bar)
    for k in range(1, 201):
        bar.update(k, 1.0 / k)
    assert bar.bar.n == 200 and bar.bar.postfix == "f=0.005"  # tqdm redraws at most 10 times a second
    bar.close()
    assert "adam" in stream.getvalue()
