"""Tensor traces: every tensor op's JVP and VJP against central differences in random
directions and against each other (the dot-product test), the NumPy backend against
the reference interpreter, the lecture notes' losses against hand-derived gradients,
and shape errors that name what is wrong."""

import numpy as np
import pytest

from exprcompiler import (ExprcError, ShapeError, compile_expr, compile_grad, compile_jvp,
                          compile_vjp, interpret, to_trace, verify)
from exprcompiler.passes import grad_forward, grad_reverse, jvp, vjp

# (program, declared shapes, shapes to call with where names are bound)
CASES = [
    ("sum(x)", {"x": (3, 4)}),
    ("sum(x, axis=0)", {"x": (3, 4)}),
    ("sum(x, axis=-1, keepdims=True)", {"x": (3, 4)}),
    ("mean(x, axis=1)", {"x": (3, 4)}),
    ("mean(x)", {"x": ("n", 2)}),
    ("max(x, axis=1)", {"x": (3, 4)}),
    ("min(x)", {"x": (5,)}),
    ("logsumexp(x, axis=1)", {"x": (3, 4)}),
    ("logsumexp(x)", {"x": (4,)}),
    ("softmax(x, axis=0)", {"x": (3, 4)}),
    ("softmax(x)", {"x": (1, 4)}),
    ("norm(x)", {"x": (3, 2)}),
    ("A @ B", {"A": (3, 4), "B": (4, 2)}),
    ("A @ v", {"A": (3, 4), "v": (4,)}),
    ("v @ A", {"v": (3,), "A": (3, 4)}),
    ("u @ v", {"u": (4,), "v": (4,)}),
    ("dot(u, v)", {"u": (1,), "v": (1,)}),
    ("outer(u, v)", {"u": (3,), "v": (2,)}),
    ("A.T @ A", {"A": (3, 2)}),
    ("reshape(x, shape=(4, 3))", {"x": (3, 4)}),
    ("reshape(x, shape=(-1,))", {"x": (3, 4)}),
    ("x[1:, 2]", {"x": (3, 4)}),
    ("x[0]", {"x": (3, 4)}),
    ("x[::2, -1:]", {"x": (5, 3)}),
    ("x[1:] - x[:-1]", {"x": ("n",)}),
    ("stack(u, v, u * v, axis=1)", {"u": (3,), "v": (3,)}),
    ("concatenate(x, y, axis=0)", {"x": (2, 3), "y": (1, 3)}),
    ("where(x > 0, x, 2 * x)", {"x": (2, 3)}),
    ("x * v", {"x": (3, 4), "v": (4,)}),
    ("x * c + s", {"x": (3, 4), "c": (3, 1)}),
    ("x + y", {"x": (1, 4), "y": (3, 1)}),
    ("sin(x) / (1 + y**2)", {"x": (2, 3), "y": (3,)}),
    ("sum(x, axis=0) @ W", {"x": (2, 3), "W": (3, 2)}),
    ("h = relu(W1 @ x + b1); tanh(W2 @ h + b2)",
     {"W1": (4, 3), "x": (3,), "b1": (4,), "W2": (2, 4), "b2": (2,)}),
]
BIND = {"n": 5}


def _concrete(shape):
    return tuple(BIND.get(d, d) for d in shape)


def _point(trace, rng):
    return {name: rng.normal(size=_concrete(trace.instrs[v].shape)) for name, v in trace.inputs}


@pytest.mark.parametrize("program, shapes", CASES, ids=[c[0] for c in CASES])
def test_jvp_and_vjp_match_differences_and_each_other(program, shapes):
    rng = np.random.default_rng(len(program))
    primal = verify(to_trace(program, shapes))
    (yname, y), = primal.outputs
    x = _point(primal, rng)
    d = {k: rng.normal(size=np.shape(v)) for k, v in x.items()}
    J = compile_jvp(primal)
    value, tangent = J(**x, **{f"{k}_dot": v for k, v in d.items()})
    # The reference interpreter on the JVP trace, and central differences.
    ref = interpret(verify(jvp(primal)), {**x, **{f"{k}.dot": v for k, v in d.items()}})
    np.testing.assert_allclose(tangent, ref[1], rtol=1e-13, atol=1e-13)
    h = 1e-6
    f = compile_expr(primal)
    fd = (np.asarray(f(**{k: x[k] + h * d[k] for k in x})) -
          np.asarray(f(**{k: x[k] - h * d[k] for k in x}))) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-7)
    # ⟨u, J d⟩ = ⟨Jᵀ u, d⟩
    u = rng.normal(size=np.shape(value))
    V = compile_vjp(primal)
    v_value, adjoints = V(**x, **{f"{yname}_bar": u})
    np.testing.assert_allclose(v_value, value, rtol=0, atol=0)
    ref = interpret(verify(vjp(primal)), {**x, f"{yname}.bar": u})
    for got, want in zip(adjoints, ref[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    lhs = float(np.sum(u * tangent))
    rhs = sum(float(np.sum(a * d[k])) for k, a in zip(V.wrt, adjoints))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)
    for k, a in zip(V.wrt, adjoints):
        assert np.shape(a) == np.shape(x[k]), k  # adjoints have their variable's shape


def test_max_at_ties_shares_the_derivative_equally():
    g = compile_grad("max(x)", shapes={"x": (4,)})
    _, (grad,) = g(np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.5, 0.5, 0.0])


def test_norm_at_zero_has_derivative_zero():
    g = compile_grad("norm(x)", shapes={"x": (3,)})
    value, (grad,) = g(np.zeros(3))
    assert value == 0.0
    np.testing.assert_array_equal(grad, np.zeros(3))


def test_logsumexp_and_softmax_do_not_overflow():
    g = compile_grad("logsumexp(x)", shapes={"x": (3,)})
    value, (grad,) = g(np.array([1000.0, 1000.0, -1000.0]))
    assert value == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(grad, [0.5, 0.5, 0.0])
    f = compile_expr("softmax(x)", shapes={"x": (2,)})
    np.testing.assert_allclose(f(np.array([800.0, 800.0])), [0.5, 0.5])


# -- the lecture notes' losses ----------------------------------------------------------
def _data(n=40, p=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)), rng.normal(size=p), rng.normal(size=n)


def test_least_squares_gradient_is_xt_residual():
    X, w, y = _data()
    g = compile_grad("0.5 * sum((X @ w - y)**2)", wrt=["w"], shapes={"X": ("n", 6), "w": (6,), "y": ("n",)})
    value, (grad,) = g(X, w, y)
    r = X @ w - y
    assert value == pytest.approx(0.5 * r @ r, rel=1e-13)
    np.testing.assert_allclose(grad, X.T @ r, rtol=1e-12)


def test_least_squares_gradient_trace_has_only_matrix_vector_products():
    # Reverse mode gets Xᵀ(Xw − y) from matrix-vector products: no (p, p) or (n, n)
    # intermediate, and no matrix-matrix product anywhere in the gradient trace.
    trace = grad_reverse(to_trace("0.5 * sum((X @ w - y)**2)", {"X": ("n", "p"), "w": ("p",), "y": ("n",)}),
                         ["w"])
    for ins in trace.instrs:
        assert ins.shape not in (("p", "p"), ("n", "n")), ins
        if ins.op == "matmul":
            assert sum(len(trace.instrs[a].shape) == 2 for a in ins.args) <= 1, ins
    assert any(ins.op == "matmul" for ins in trace.instrs)


LOGISTIC = "sum(softplus(-y * (X @ w)))"


def test_logistic_loss_gradient():
    X, w, _ = _data()
    y = np.where(np.random.default_rng(1).random(X.shape[0]) < 0.5, -1.0, 1.0)
    g = compile_grad(LOGISTIC, wrt=["w"], shapes={"X": ("n", 6), "w": (6,), "y": ("n",)})
    value, (grad,) = g(X, w, y)
    m = y * (X @ w)
    assert value == pytest.approx(np.sum(np.log1p(np.exp(-m))), rel=1e-12)
    np.testing.assert_allclose(grad, -X.T @ (y / (1 + np.exp(m))), rtol=1e-12)


MLP = """
h = relu(W1 @ x + b1)
out = tanh(W2 @ h + b2)
0.5 * sum((out - y)**2)
"""
MLP_SHAPES = {"W1": (5, 3), "b1": (5,), "W2": (2, 5), "b2": (2,), "x": (3,), "y": (2,)}


def _mlp_backprop(W1, b1, W2, b2, x, y):
    a1 = W1 @ x + b1
    h = np.maximum(a1, 0)
    out = np.tanh(W2 @ h + b2)
    d_out = (out - y) * (1 - out**2)
    d_h = W2.T @ d_out
    d_a1 = d_h * (a1 > 0)
    return np.outer(d_a1, x), d_a1, np.outer(d_out, h), d_out


def _mlp_point(seed=2):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in MLP_SHAPES.items()}


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def test_two_layer_network_matches_jax_when_installed():
    jax, jnp = _jax()

    def loss(W1, b1, W2, b2, x, y):
        h = jnp.maximum(W1 @ x + b1, 0)
        return 0.5 * jnp.sum((jnp.tanh(W2 @ h + b2) - y) ** 2)

    point = _mlp_point()
    want = jax.grad(loss, argnums=(0, 1, 2, 3))(*(point[k] for k in MLP_SHAPES))
    _, got = compile_grad(MLP, wrt=["W1", "b1", "W2", "b2"], shapes=MLP_SHAPES)(**point)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-15)


def test_a_batch_of_inputs_as_a_matrix():
    # The network over a batch: X is (n, 3), rows are samples; b1 broadcasts.
    shapes = {"W1": (5, 3), "b1": (5,), "X": ("n", 3)}
    g = compile_grad("sum(relu(X @ W1.T + b1))", wrt=["W1", "b1"], shapes=shapes)
    rng = np.random.default_rng(3)
    W1, b1, X = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=(7, 3))
    _, (gW, gb) = g(W1=W1, b1=b1, X=X)
    mask = (X @ W1.T + b1 > 0) * 1.0
    np.testing.assert_allclose(gW, mask.T @ X, rtol=1e-12)
    np.testing.assert_allclose(gb, mask.sum(axis=0), rtol=1e-12)


# -- shape errors -------------------------------------------------------------------------
def _raises(exc, fn, *words):
    with pytest.raises(exc) as info:
        fn()
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert isinstance(info.value, ExprcError)
    return info.value


def test_mismatched_dimensions_at_compile_time_point_at_the_operator():
    err = _raises(ShapeError, lambda: compile_grad("sum(X @ w)", shapes={"X": (3, 4), "w": (3,)}),
                  "@", "(3, 4)", "(3,)", "column 7")
    assert "^" in str(err)
    _raises(ShapeError, lambda: compile_expr("x + y", shapes={"x": ("n",), "y": (4,)}), "do not broadcast")


def test_call_time_shape_errors_name_the_input_and_the_dimension():
    g = compile_grad("0.5 * sum((X @ w - y)**2)", wrt=["w"], shapes={"X": ("n", 3), "w": (3,), "y": ("n",)})
    X, w, y = np.ones((4, 3)), np.ones(3), np.ones(4)
    _raises(ShapeError, lambda: g(X, np.ones(2), y), "'w'", "size 2", "declared 3")
    _raises(ShapeError, lambda: g(X, w, np.ones(5)), "'y'", "'n' is 5", "'X' has n = 4")
    _raises(ShapeError, lambda: g(np.ones(3), w, y), "'X'", "2 dimensions")


def test_bad_axis_and_bad_index_are_named():
    _raises(ShapeError, lambda: compile_expr("sum(x, axis=2)", shapes={"x": (3, 4)}), "axis 2", "out of range")
    err = _raises(IndexError, lambda: compile_expr("x[5]", shapes={"x": (3,)}), "index 5", "size 3")
    assert "column 2" in str(err)
    _raises(IndexError, lambda: compile_expr("x[0, 0]", shapes={"x": (3,)}), "2 indices")


def test_declared_shapes_are_checked():
    _raises(ShapeError, lambda: compile_expr("x", shapes={"q": (3,)}), "'q' is not a variable")
    _raises(ShapeError, lambda: compile_expr("x", shapes={"x": (0,)}), "positive integer")


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_forward_mode_gradient_over_tensors_is_one_sweep_per_element(backend):
    shapes = {"X": ("n", 3), "w": (3,), "y": ("n",), "b": ()}
    program = "0.5 * sum((X @ w + b - y)**2)"
    forward = compile_grad(program, wrt=["w", "b"], shapes=shapes, mode="forward", backend=backend)
    reverse = compile_grad(program, wrt=["w", "b"], shapes=shapes, backend=backend)
    X, w, y = _data(n=7, p=3)
    got, want = forward(X=X, w=w, y=y, b=0.3), reverse(X=X, w=w, y=y, b=0.3)
    assert got[0] == pytest.approx(want[0], rel=1e-14)
    np.testing.assert_allclose(got[1][0], want[1][0], rtol=1e-12)
    assert got[1][1] == pytest.approx(want[1][1], rel=1e-12)
    x = np.r_[w, 0.3]
    np.testing.assert_allclose(forward.at(x, X=X, y=y)[1], reverse.at(x, X=X, y=y)[1], rtol=1e-12)
    assert forward.mode == "forward" and "w_dot" in forward.source  # the JVP's code
    with pytest.raises(NotImplementedError, match="mode='reverse'"):
        grad_forward(to_trace(program, shapes), ["w"])  # the pass itself needs scalars


def test_scalar_traces_keep_their_batch_semantics():
    # No declared shapes: the same program runs elementwise over arrays of points.
    g = compile_grad("x * y + 1")
    _, (gx, gy) = g(np.arange(3.0), 2.0)
    np.testing.assert_array_equal(gx, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(gy, [0.0, 1.0, 2.0])


def test_tensor_trace_prints_shapes():
    text = str(compile_grad("0.5 * sum((X @ w - y)**2)", wrt=["w"],
                            shapes={"X": ("n", 3), "w": (3,), "y": ("n",)}).trace)
    assert "v_1  : (n,)" in text and "= v_-2 @ v_-1" in text  # names padded to v_-2's width
    assert "v̄_-1 : (3,)" in text and "v̄_1 @ v_-2" in text


# -- second order and the packed calling convention on tensors ---------------------------
LSQ_SHAPES = {"X": ("n", 6), "w": (6,), "y": ("n",)}


def test_hvp_of_least_squares_is_xtx_v():
    from exprcompiler import compile_hvp
    X, w, y = _data()
    v = np.random.default_rng(5).normal(size=6)
    h = compile_hvp("0.5 * sum((X @ w - y)**2)", wrt=["w"], shapes=LSQ_SHAPES)
    value, (grad,), (hv,) = h(X=X, w=w, y=y, w_dot=v)
    np.testing.assert_allclose(grad, X.T @ (X @ w - y), rtol=1e-12)
    np.testing.assert_allclose(hv, X.T @ (X @ v), rtol=1e-12)
    # the trace never forms XᵀX either
    assert all(ins.shape not in ((6, 6), ("n", "n")) for ins in h.trace.instrs)


def test_hessian_over_flattened_tensors_matches_differences_of_the_gradient():
    from exprcompiler import compile_hessian
    point = _mlp_point(4)
    wrt = ["W2", "b2"]
    H = compile_hessian(MLP, wrt=wrt, shapes=MLP_SHAPES)
    value, grad, hess = H(**point)
    assert grad.shape == (12,) and hess.shape == (12, 12)
    np.testing.assert_array_equal(hess, hess.T)
    g = compile_grad(MLP, wrt=wrt, shapes=MLP_SHAPES)
    data = {k: v for k, v in point.items() if k not in wrt}
    x = np.concatenate([point[k].reshape(-1) for k in wrt])
    eps = 1e-6
    for j in range(12):
        e = np.zeros(12)
        e[j] = eps
        fd = (g.at(x + e, **data)[1] - g.at(x - e, **data)[1]) / (2 * eps)
        np.testing.assert_allclose(hess[:, j], fd, rtol=1e-5, atol=1e-7)


def test_at_packs_several_tensors_into_one_vector():
    point = _mlp_point(6)
    wrt = ["W1", "b1", "W2", "b2"]
    g = compile_grad(MLP, wrt=wrt, shapes=MLP_SHAPES)
    x = np.concatenate([point[k].reshape(-1) for k in wrt])
    value, flat = g.at(x, x=point["x"], y=point["y"])
    want_value, grads = g(**point)
    assert value == want_value
    np.testing.assert_array_equal(flat, np.concatenate([a.reshape(-1) for a in grads]))
    with pytest.raises(ValueError, match="hold 32"):
        g.at(x[:-1], x=point["x"], y=point["y"])


def test_the_tensor_losses_example_runs_and_checks_its_gradients(capsys):
    import runpy
    from pathlib import Path
    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "tensor_losses.py"))
    assert example["main"]() < 1e-12
    out = capsys.readouterr().out
    assert "v̄_-1 : (3,) = v̄_1 @ v_-2" in out     # Xᵀ(Xw − y) as (Xw − y) @ X
    assert out.count("against central differences") == 3


def test_results_are_the_callers_arrays():
    # The gradient of sum(x * y) with respect to x is y itself, and a structurally
    # zero gradient is a broadcast zero: both come back as fresh, writable arrays.
    g = compile_grad("sum(x * y) + sum(z)", wrt=["x", "z"], shapes={"x": (3,), "y": (3,), "z": (2,)})
    y = np.arange(3.0)
    _, (gx, gz) = g(x=np.ones(3), y=y, z=np.ones(2))
    gx *= 2
    gz += 1
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0])
    h = compile_grad("sum(x) + sum(w > 0)", wrt=["x", "w"], shapes={"x": (2,), "w": (2, 2)})
    _, (_, gw) = h(x=np.ones(2), w=np.ones((2, 2)))
    gw[0, 0] = 5.0
    np.testing.assert_array_equal(gw, [[5.0, 0.0], [0.0, 0.0]])


DEEP = "H1 = sigmoid(W1 @ X)\nH2 = sigmoid(W2 @ H1)\nsum((Y - sigmoid(W3 @ H2))**2)"
DEEP_SHAPES = {"W1": (5, 4), "W2": (3, 5), "W3": (2, 3), "X": (4, "n"), "Y": (2, "n")}


def _deep_point(seed=7, n=6):
    rng = np.random.default_rng(seed)
    sizes = {"n": n}
    return {k: rng.normal(size=tuple(sizes.get(d, d) for d in s)) for k, s in DEEP_SHAPES.items()}


def _deep_backprop(W1, W2, W3, X, Y):
    def s(z):
        return 1 / (1 + np.exp(-z))
    H1 = s(W1 @ X)
    H2 = s(W2 @ H1)
    out = s(W3 @ H2)
    D3 = -2 * (Y - out) * out * (1 - out)
    D2 = (W3.T @ D3) * H2 * (1 - H2)
    D1 = (W2.T @ D2) * H1 * (1 - H1)
    return [D1 @ X.T, D2 @ H1.T, D3 @ H2.T]


@pytest.mark.parametrize("network", ["two-layer", "deep"])
def test_network_gradients_are_backprop(network):
    # the two-layer network on one sample, and ‖Y − σ(W₃ σ(W₂ σ(W₁X)))‖²_F over n columns
    program, shapes, point, backprop, wrt = {
        "two-layer": (MLP, MLP_SHAPES, _mlp_point(), _mlp_backprop, ["W1", "b1", "W2", "b2"]),
        "deep": (DEEP, DEEP_SHAPES, _deep_point(), _deep_backprop, ["W1", "W2", "W3"]),
    }[network]
    _, grads = compile_grad(program, wrt=wrt, shapes=shapes)(**point)
    for got, want in zip(grads, backprop(**point)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_least_squares_logistic_and_deep_losses_match_jax_when_installed():
    jax, jnp = _jax()
    X, w, y = _data()
    signs = np.where(y > 0, 1.0, -1.0)
    lsq = jax.grad(lambda w: 0.5 * jnp.sum((X @ w - y) ** 2))(w)
    logistic = jax.grad(lambda w: jnp.sum(jax.nn.softplus(-signs * (X @ w))))(w)
    shapes = {"X": ("n", 6), "w": (6,), "y": ("n",)}
    np.testing.assert_allclose(compile_grad("0.5 * sum((X @ w - y)**2)", wrt=["w"], shapes=shapes)(X, w, y)[1][0],
                               np.asarray(lsq), rtol=1e-12)
    np.testing.assert_allclose(compile_grad(LOGISTIC, wrt=["w"], shapes=shapes)(X, w, signs)[1][0],
                               np.asarray(logistic), rtol=1e-12)
    point = _deep_point()

    def deep(W1, W2, W3):
        s = jax.nn.sigmoid
        return jnp.sum((point["Y"] - s(W3 @ s(W2 @ s(W1 @ point["X"])))) ** 2)
    want = jax.grad(deep, argnums=(0, 1, 2))(point["W1"], point["W2"], point["W3"])
    _, got = compile_grad(DEEP, wrt=["W1", "W2", "W3"], shapes=DEEP_SHAPES)(**point)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-15)


def test_empty_dimensions_give_a_shape_error_or_ieee_values():
    with pytest.raises(ShapeError, match="empty dimension \\(n = 0\\)"):
        compile_grad("max(x)", shapes={"x": ("n",)})(np.zeros(0))
    value, (grad,) = compile_grad("sum(x)", shapes={"x": ("n",)})(np.zeros(0))
    assert value == 0.0 and grad.shape == (0,)
    with pytest.warns(RuntimeWarning):  # NumPy's "Mean of empty slice"; the value is nan
        value, (grad,) = compile_grad("mean(x)", shapes={"x": ("n",)})(np.zeros(0))
    assert np.isnan(value) and grad.shape == (0,)


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_jacobian_of_tensor_outputs_over_flattened_tensors(mode):
    from exprcompiler import compile_jacobian
    J = compile_jacobian("y = tanh(A @ x); y, sum(x**2)", wrt=["x", "A"], shapes={"A": (3, 2), "x": (2,)},
                         mode=mode)
    rng = np.random.default_rng(8)
    A, x = rng.normal(size=(3, 2)), rng.normal(size=2)
    values, jac = J(A=A, x=x)
    assert values.shape == (4,) and jac.shape == (4, 8)
    assert J.last_mode == ("reverse" if mode == "auto" else mode)  # m = 4 < n = 8

    def f(z):
        xx, AA = z[:2], z[2:].reshape(3, 2)
        return np.concatenate([np.tanh(AA @ xx), [np.sum(xx**2)]])
    z = np.concatenate([x, A.ravel()])
    fd = np.stack([(f(z + 1e-6 * e) - f(z - 1e-6 * e)) / 2e-6 for e in np.eye(8)], axis=1)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(values, f(z), rtol=1e-15)


def test_sum_of_a_squared_vector_is_one_dot_in_numpy():
    """sum(r * r) of a vector whose product nothing else reads is `r.dot(r)` in the
    NumPy source (one BLAS dot, no temporary, without the matmul ufunc's dispatch); a
    matrix's, or a product read twice, stays a sum; the numbers agree to the last bits
    either way."""
    shapes = {"X": ("n", 3), "y": ("n",), "w": (3,)}
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt="w", shapes=shapes)
    assert "v2.dot(v2)" in g.source and "np.sum" not in g.source
    assert "np.sum" in compile_grad("sum(A*A)", shapes={"A": (2, 2)}).source
    shared = compile_grad("r = X@w - y\nq = r*r\nsum(q) + sum(q*y)", wrt="w", shapes=shapes)
    assert "np.sum" in shared.source
    rng = np.random.default_rng(1)
    X, y, w = rng.normal(size=(7, 3)), rng.normal(size=7), rng.normal(size=3)
    value, (grad,) = g(X=X, y=y, w=w)
    r = X @ w - y
    assert abs(value - 0.5 * np.sum(r * r)) <= 1e-14 * value
    np.testing.assert_allclose(grad, X.T @ r, rtol=1e-14)
