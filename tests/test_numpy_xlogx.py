"""x*log(x) in NumPy as one call: runtime_xlogy.xlogx_rows, the value and derivative of
the stable form xlogy(u, u), and the backend's rows of it (numpy_share_pairs.xlogx_rows).
Its bits are the generated lines' (`where_rare(x == 0.0, 0.0, x * log(x))` and
`where_rare_kept(x == 0.0, x / x) + log(x)`) at every point, NaNs' bits included."""

import numpy as np
import pytest

import exprcompiler as X
from exprcompiler import runtime, runtime_xlogy
from exprcompiler.runtime_blocks import _BIG
from exprcompiler.runtime_xlogy import xlogx_rows

_BLOCK = 16_384   # (a generated function's blocks: numpy_runner's)


def lines(x):
    """The generated lines of x*log(x)'s value and gradient before the fusion."""
    t1 = np.log(x)
    t2 = x == 0.0
    v1 = runtime.where_rare(t2, 0.0, x * t1)
    t3 = x / x
    return v1, runtime.where_rare_kept(t2, t3) + t1


def by_blocks(f, x):
    rows = [f(x[s:s + _BLOCK]) for s in range(0, x.size, _BLOCK)]
    return tuple(np.concatenate([np.atleast_1d(r[k]) for r in rows]) for k in (0, 1))


def points(dtype, kind: str, n: int = 3 * _BIG // 2) -> np.ndarray:
    """`n` points (above _BIG: a whole call runs by blocks): "accurate" (all in (0, inf),
    the usual block), "edge" (5% zeros, ±inf, NaN, negatives, subnormals, the largest:
    every block mixed), "sparse" (a handful of them: most blocks clean, a few not)."""
    rng = np.random.default_rng(7)
    fi = np.finfo(dtype)
    if kind == "accurate":
        return rng.uniform(1e-3, 10.0, n).astype(dtype)
    top = np.log(fi.max) * 0.99
    x = (np.exp(rng.uniform(-top, top, n)) * rng.choice([1.0, -1.0], n, p=[0.9, 0.1])).astype(dtype)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, fi.tiny,
                        fi.smallest_subnormal, fi.max, 0.5], dtype=dtype)
    k = n // 20 if kind == "edge" else 9
    x[rng.integers(0, n, k)] = rng.choice(special, k)
    return x


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["accurate", "edge", "sparse"])
def test_rows_are_the_lines_bits(dtype, kind):
    x = points(dtype, kind)
    with np.errstate(all="ignore"):
        want = by_blocks(lines, x)
        got_blocks = by_blocks(xlogx_rows, x)   # the front, a block at a time
        got_whole = xlogx_rows(x)               # _blocked's blocks, into out=
    for got in (got_blocks, got_whole):
        assert same_bits(got[0], want[0]) and same_bits(got[1], want[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_at_the_edges(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1.0, 2.0], dtype=dtype)
    with np.errstate(all="ignore"):
        value, slope = xlogx_rows(x)
        want = lines(x)
    assert same_bits(value, want[0]) and same_bits(slope, want[1])
    assert value[0] == 0.0 and not np.signbit(value[1]) and slope[0] == slope[1] == -np.inf
    assert value[2] == np.inf and np.isnan(slope[2])   # (x / x is NaN at inf, as the lines')
    assert slope[6] == 1.0 and value[6] == 0.0


def test_rows_of_scalars_other_types_and_out():
    with np.errstate(all="ignore"):
        for s in (0.0, -0.0, 2.0, np.inf, np.nan, -3.0):
            value, slope = xlogx_rows(s)
            want = lines(np.float64(s))
            assert same_bits(np.float64(value), np.float64(want[0])) and same_bits(np.float64(slope), want[1])
        for x in (np.array([0, 1, 2, 3]), np.array([0.0, 0.5, 2.0], dtype=np.float16), np.zeros((0,))):
            got, want = xlogx_rows(x), lines(x)
            assert same_bits(got[0], want[0]) and same_bits(got[1], want[1])
        x = points(np.float64, "edge", 1000).reshape(10, 100)
        out = (np.empty_like(x), np.empty_like(x))
        assert xlogx_rows(x, out=out) is out
        want = lines(x)
        assert same_bits(out[0], want[0]) and same_bits(out[1], want[1])


def test_the_front_is_the_block_form():
    assert xlogx_rows.front is runtime_xlogy._xlogx_block
    x = points(np.float64, "edge", _BLOCK)
    with np.errstate(all="ignore"):
        got, want = xlogx_rows.__wrapped__(x), lines(x)   # (the general steps on a mixed block)
    assert same_bits(got[0], want[0]) and same_bits(got[1], want[1])


@pytest.mark.parametrize("x", [[1.0, 0.0, 2.0], [1.0, -1.0], [np.inf, 2.0]])
def test_warnings_as_the_lines(x):
    x = np.array(x)
    for f in (lines, xlogx_rows):
        with np.errstate(all="raise"), pytest.raises(FloatingPointError):
            f(x)
    with np.errstate(all="raise"):
        xlogx_rows(np.array([0.5, 1.0, 3.0]))


def test_runtime_exports_the_helper():
    # (generated code imports it from runtime.py)
    assert runtime.xlogx_rows is xlogx_rows


def test_value_and_gradient_are_one_call():
    src = str(X.compile_grad("x*log(x)", backend="numpy", stable=True).source)
    assert "p1 = xlogx_rows(x)" in src and "x / x" not in src and "np.log" not in src
    src = str(X.compile_grad("(x+y)*log(x+y)", backend="numpy", stable=True).source)
    assert "xlogx_rows(v1)" in src
    src = str(X.compile_grad("sum(x*log(x))", shapes={"x": ("n",)}, backend="numpy", stable=True).source)
    assert "xlogx_rows(x)" in src


@pytest.mark.parametrize("expr", ["sin(x*log(x))", "-sum(p*log(p))", "x*log(x) + x*log(y)"])
def test_other_derivatives_keep_their_lines(expr):
    # (a seed other than 1.0, or another partial added first: the sums round otherwise)
    shapes = {"p": (5,)} if "p" in expr else None
    src = str(X.compile_grad(expr, shapes=shapes, backend="numpy", stable=True).source)
    assert "xlogx_rows" not in src and "where_rare(" in src


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["accurate", "edge", "sparse"])
def test_compiled_bits_are_the_lines(dtype, kind):
    x = points(dtype, kind)
    grad = X.compile_grad("x*log(x)", backend="numpy", stable=True)
    hess = X.compile_hessian("x*log(x)", backend="numpy", stable=True)
    tensor = X.compile_grad("sum(x*log(x))", shapes={"x": ("n",)}, backend="numpy", stable=True)
    with np.errstate(all="ignore"):
        value, (slope,) = grad(x)
        h_value, h_slope, _ = hess(x)
        t_value, (t_slope,) = tensor(x)
        want = by_blocks(lines, x.astype(value.dtype))   # (a scalar formula's function computes in float64)
        t_want = lines(x.astype(t_slope.dtype))   # (arrays whole: the tensor program's call)
    assert same_bits(value, want[0]) and same_bits(np.reshape(slope, x.shape), want[1])
    assert same_bits(h_value, want[0]) and same_bits(np.reshape(h_slope, x.shape), want[1])
    assert same_bits(t_slope, t_want[1]) and same_bits(t_value, np.sum(t_want[0]))
