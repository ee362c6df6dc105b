"""The NumPy backend's cheaper spellings (backends/numpy_render.py): masks as boolean
comparisons, sums as np.add.reduce. Each must give the same bits as the generic
spelling (trace.render.Renderer), at NaN, ±inf and ±0 too, and keep float32 float32."""

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend
from exprcompiler.trace.render import Renderer

EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -2.5, 3.0])

CASES = [  # expression, shapes, the names whose arrays get the edge values
    ("h = relu(X @ W + b); sum(h * h) + sum(relu(v))", {"X": ("n", 3), "W": (3, 2), "b": (2,), "v": (8,)}),
    ("sum(maximum(v, u) * v) + sum(minimum(u, 0.5)) + sum(relu(u) * v)", {"v": (8,), "u": (8,)}),
    ("sum(where(v > u, v * u, u)) + mean(abs(v)) + sum(relu(v - u) * v)", {"v": (8,), "u": (8,)}),
    ("sum(relu(A) * A, axis=1, keepdims=True)[0, 0] + sum(A)", {"A": (8, 3)}),
]


def _inputs(shapes, n=8):
    rng = np.random.default_rng(1)
    out = {}
    for k, shape in shapes.items():
        shape = tuple(n if isinstance(d, str) else d for d in shape)
        a = rng.normal(size=shape)
        a.reshape(-1)[:min(a.size, EDGES.size)] = EDGES[:a.size]
        out[k] = a
    return out


def _both(trace):
    """The generated function as the backend writes it, and with the generic spelling."""
    source, _ = numpy_backend.generate(trace)
    fn = numpy_backend.load(source, "f")
    real = numpy_backend.NumpyRenderer
    try:
        numpy_backend.NumpyRenderer = Renderer
        plain_source, _ = numpy_backend.generate(trace)
    finally:
        numpy_backend.NumpyRenderer = real
    return fn, numpy_backend.load(plain_source, "f"), source, plain_source


def _flat(results):
    return [np.asarray(r) for r in (results if isinstance(results, tuple) else (results,))]


@pytest.mark.parametrize("expr, shapes", CASES)
def test_the_cheaper_spellings_give_the_generic_bits(expr, shapes):
    g = compile_grad(expr, shapes=shapes)
    fn, plain, source, plain_source = _both(g.trace)
    assert source != plain_source  # the case exercises a rewritten spelling
    args = _inputs(shapes)
    with np.errstate(all="ignore"):
        got = _flat(fn(*[args[k] for k in g.inputs]))
        want = _flat(plain(*[args[k] for k in g.inputs]))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.view(np.uint64) if a.ndim else a.reshape(1).view(np.uint64),
                              b.view(np.uint64) if b.ndim else b.reshape(1).view(np.uint64))


def test_relu_adjoint_is_a_boolean_mask_and_bias_adjoints_reduce_directly():
    g = compile_grad("h = relu(X @ W + b); mean(h @ w)", ["W", "b", "w"],
                     shapes={"X": ("n", 3), "W": (3, 2), "b": (2,), "w": (2,)})
    assert "> 0.0)" in g.source and "gt(" not in g.source.split("def ")[1]
    assert "np.add.reduce(" in g.source and "np.sum(" not in g.source
    assert "np.sum(" in compile_grad("sum(A*A)", shapes={"A": (2, 2)}).source  # every element: as it was


@pytest.mark.parametrize("expr, float_mask", [("relu(x)", True), ("2 * relu(x)", True),
                                               ("relu(x) * relu(y)", False)])
def test_a_mask_times_a_python_float_keeps_the_float_mask(expr, float_mask):
    """A seed (1.0) or a constant times the mask stays gt(): float * bool would be
    float64 in a float32 function. An array times it takes the boolean mask."""
    g = compile_grad(expr)
    assert ("gt(" in g.source.split("def ")[1]) == float_mask
    g32 = compile_grad(expr, dtype="float32")
    x = np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32)
    value, grads = g32(*[x] * len(g32.inputs))
    assert all(d.dtype == np.float32 for d in grads)


def test_float32_masks_and_sums_stay_float32():
    shapes = {"X": ("n", 3), "W": (3, 2), "b": (2,)}
    g = compile_grad("h = relu(X @ W + b); mean(h * h)", ["W", "b"], shapes=shapes, dtype="float32")
    args = {k: v.astype(np.float32) for k, v in _inputs(shapes).items()}
    args["X"][np.isnan(args["X"]) | np.isinf(args["X"])] = 1.0
    value, (dW, db) = g(**args)
    assert dW.dtype == np.float32 and db.dtype == np.float32
    g64 = compile_grad("h = relu(X @ W + b); mean(h * h)", ["W", "b"], shapes=shapes)
    _, (dW64, db64) = g64(**{k: v.astype(np.float64) for k, v in args.items()})
    np.testing.assert_allclose(dW, dW64, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(db, db64, rtol=2e-5, atol=1e-5)
