"""sqrt(x² + y² + z²) on c_backend's tiles (c_nary.INNER): where the sum of squares is
within [2^-970, inf) xc_hypot3 is the naive root, so a tile whose points all are there
runs xc_hypot3_inner, and any other tile the full form: a point's bits are the same
either way, as the tape VM's (which keeps the full form), one point at a time, on two
threads, and in float32."""

import math

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build

from test_c_exp_inner import assert_tiles_agree
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

EXPR = "sqrt(x**2 + y**2 + z**2)"
_RNG = np.random.default_rng(1803)
LOW = 2.0 ** -485   # LOW² = 2^-970, the least sum of squares of the inner form
# (x, y, z) at and around the edges of the inner points: where the full form scales the
# terms (sums below 2^-970, overflowed sums), infinite and NaN terms, zeros
EDGES = [(LOW, 0.0, 0.0), (np.nextafter(LOW, 0), 0.0, 0.0), (-np.nextafter(LOW, 0), 0.0, -0.0),
         (1e-300, 2e-300, -3e-300), (5e-324, 0.0, 0.0), (0.0, 0.0, 0.0), (-0.0, 0.0, -0.0),
         (1e154, 1e154, 0.0), (1.4e154, -1e154, 3.0), (1e300, 1.0, 2.0), (-1e308, 1e308, 1e308),
         (math.inf, 1.0, 2.0), (1.0, -math.inf, math.nan), (math.nan, 1.0, 2.0), (math.inf, math.inf, math.inf)]


def _inner_points(n: int) -> list:
    """Three arrays of points whose sum of squares is within [2^-970, inf): uniform, and
    of every binade (with terms that underflow beside others that do not)."""
    out = []
    for _ in range(3):
        mag = 2.0 ** _RNG.uniform(-484, 511, n)
        out.append(np.concatenate([_RNG.uniform(-10, 10, n), _RNG.choice([-1, 1], n) * mag, [LOW, 2.0 ** 511, 1.0]]))
    return out


def _bits(results) -> list:
    value, grads = results
    return [np.asarray(value), *map(np.asarray, grads)]


def _same(a, b, where=slice(None)) -> bool:
    return all(same_bits(u[where], w[where]) for u, w in zip(_bits(a), _bits(b)))


@pytest.fixture(scope="module")
def kernels():
    return (compile_grad(EXPR, backend="c", stable=True, threads=1),
            compile_grad(EXPR, backend="vm", stable=True))


def test_the_kernel_runs_tiles_of_inner_points(kernels):
    assert "xc_hypot3_inner_at(x, y, z)" in kernels[0].source
    # an argument of more than one operation on inputs: no tiles
    assert "_point_inner" not in compile_grad("hypot3(sin(x), y, z)", backend="c").source


def test_the_edges_take_the_full_form(kernels):
    g, vm = kernels
    xs = [np.array(c, dtype=float) for c in zip(*EDGES)]
    with np.errstate(all="ignore"):
        assert _same(g(*xs), vm(*xs))
        value, grads = g(*xs)
    assert value[0] == LOW and value[1] == np.nextafter(LOW, 0)        # both sides of 2^-970, exact
    assert value[3] == math.sqrt(14.0) * 1e-300 or abs(value[3] / (math.sqrt(14.0) * 1e-300) - 1) < 4e-16
    assert value[11] == math.inf and value[12] == math.inf and math.isnan(value[13])
    assert value[10] == pytest.approx(math.sqrt(3.0) * 1e308, rel=1e-15)


def test_a_points_bits_do_not_depend_on_its_tile(kernels):
    g, vm = kernels
    n = 64 * 30 + 5
    xs = [_RNG.permutation(x)[:n] for x in _inner_points(1000)]
    edged = assert_tiles_agree(g, vm, xs, [[e[k] for e in EDGES] for k in range(3)], 7, (0, 1, 900, n - 1))
    with np.errstate(all="ignore"):   # one input a number: the tiles test the arrays with it
        assert _same(g(xs[0], 1e-300, edged[2]), vm(xs[0], 1e-300, edged[2]))


def test_the_gradient_and_float32():
    g = compile_grad(EXPR, backend="c", stable=True)
    x, y, z = _inner_points(200)
    with np.errstate(all="ignore"):
        value, (gx, gy, gz) = g(x, y, z)
    h = np.sqrt(np.longdouble(x) ** 2 + np.longdouble(y) ** 2 + np.longdouble(z) ** 2)
    np.testing.assert_allclose(value, np.float64(h), rtol=2 * 2.0 ** -52, atol=0)
    np.testing.assert_allclose(gz, np.float64(np.longdouble(z) / h), rtol=4 * 2.0 ** -52, atol=1e-300)
    f = compile_grad(EXPR, backend="c", stable=True, dtype="float32")
    assert "_point_inner" in f.source
    xs = [np.float32(_RNG.uniform(-10, 10, 1000)) for _ in range(3)]
    edged = [a.copy() for a in xs]
    edged[0][::70] = np.float32(1e-30)
    edged[1][::70] = np.float32(0.0)
    edged[2][::70] = np.float32(0.0)
    kept = np.arange(1000) % 70 != 0
    with np.errstate(all="ignore"):
        assert _same(f(*xs), f(*edged), kept)
        value, _ = f(*edged)
        exact = np.sqrt(sum(a.astype(np.float64) ** 2 for a in xs))
        np.testing.assert_allclose(f(*xs)[0], exact, rtol=2 * 2.0 ** -23)
    assert value[0] == np.float32(1e-30)
