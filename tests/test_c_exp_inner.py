"""e^x - 1 and e^x without the edge steps (c_exp's xc_expm1_inner and xc_exp_inner):
the bits of xc_expm1, xc_expm1_shared and xc_exp_shared wherever xc_exp_inner_at holds,
and C kernels that run them on tiles whose points all pass (c_backend.INNER_UP_TO), so
that a point's bits never depend on the other points of its tile: the same bits
whether its tile takes the inner forms or not, on one thread or two, one point at a
time, and as the tape VM (which keeps the full forms)."""

import math

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian
from exprcompiler.backends import c_backend, c_build

from test_c_exp import array_call, vectorized
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(1802)
LOW = 2.0 ** -1000
# the bounds of xc_exp_inner_at and their neighbours: (x, whether it is an inner point;
# the subnormals are: at n = 0 the inner forms take p itself, as the full forms do)
BOUNDS = [(0.0, True), (-0.0, False), (LOW, True), (-LOW, True), (np.nextafter(LOW, 0), True),
          (-np.nextafter(LOW, 0), True), (5e-324, True), (-1e-310, True), (2.0 ** -1022, True),
          (690.0, True), (-690.0, True), (np.nextafter(690.0, 1e3), False), (-np.nextafter(690.0, 1e3), False),
          (709.78, False), (710.0, False), (-745.0, False), (math.inf, False), (-math.inf, False),
          (math.nan, False), (1.0, True), (-1.0, True)]
# points other than the inner ones, for tiles that take the full forms
EDGES = [-0.0, math.nan, 700.0, -720.0, math.inf, -math.inf, 709.78, 745.0, 1e300, -1e300]


def _inner_points(n: int) -> np.ndarray:
    """Points of the whole inner range: uniform, every binade of both signs, and near
    n = 0 (|x| <= ln(2)/512), where the full forms take another path."""
    mag = 2.0 ** _RNG.uniform(-1074, 9.43, n)
    return np.concatenate([_RNG.uniform(-690, 690, n), _RNG.choice([-1, 1], n) * mag,
                           _RNG.uniform(-0.0014, 0.0014, n), [0.0, LOW, -LOW, 690.0, -690.0]])


@pytest.fixture(scope="module")
def helpers():
    return vectorized(("xc_expm1", "xc_expm1_shared", "xc_exp_shared", "xc_expm1_inner", "xc_exp_inner",
                       "xc_exp_inner_at"))


def test_which_points_are_inner(helpers):
    xs = np.array([x for x, _ in BOUNDS])
    assert helpers["xc_exp_inner_at"](xs).tolist() == [float(inner) for _, inner in BOUNDS]
    assert (helpers["xc_exp_inner_at"](_inner_points(2000)) == 1.0).all()


def test_the_inner_forms_are_the_full_forms_bit_for_bit(helpers):
    xs = _inner_points(20000)
    for full in ("xc_expm1", "xc_expm1_shared"):
        assert same_bits(helpers["xc_expm1_inner"](xs), helpers[full](xs)), full
    assert same_bits(helpers["xc_exp_inner"](xs), helpers["xc_exp_shared"](xs))


def test_minus_zero_is_no_inner_point(helpers):
    """Why -0.0 takes the full forms: the inner steps give e^-0.0 - 1 as +0.0."""
    assert math.copysign(1, helpers["xc_expm1"](np.array([-0.0]))[0]) == -1
    assert math.copysign(1, helpers["xc_expm1_inner"](np.array([-0.0]))[0]) == 1


def test_which_kernels_run_tiles_of_inner_points():
    assert "f_grad_point_inner" in compile_grad("exp(x) - 1", backend="c", stable=True).source
    assert "f_grad_point_inner" in compile_grad("1 - exp(x) + x * y", backend="c", stable=True).source
    # e^x - 1 of one operation on inputs: the test of a tile computes it again (c_tiles._of_inputs)
    assert "xc_exp_inner_at(2.0 * x)" in compile_grad("expm1(2 * x)", backend="c").source
    # of more: no tiles
    assert "xc_expm1" in compile_grad("expm1(sin(x))", backend="c").source
    assert "_point_inner" not in compile_grad("expm1(sin(x))", backend="c").source
    many = " + ".join(f"sin({k} * x) * y" for k in range(1, c_backend.INNER_UP_TO))
    g = compile_grad(f"exp(x) - 1 + {many}", backend="c", stable=True)
    assert "xc_exp_shared(x)" in g.source and "_point_inner" not in g.source


def _bits(results) -> list:
    value, grads = results
    return [np.asarray(value), *map(np.asarray, grads)]


def _same(a, b, where=slice(None)) -> bool:
    return all(same_bits(u[where], w[where]) for u, w in zip(_bits(a), _bits(b)))


def assert_tiles_agree(g, vm, xs, edges, first: int, singles) -> list:
    """g's bits at xs, with an edge point (edges[k] for input k, in turn) at every other
    tile from point `first` on (returned: those arrays), are the same at the other points,
    the same as the VM's, on two threads, and, at the points `singles`, one point at a time."""
    n = xs[0].size
    edged = [x.copy() for x in xs]
    hit = np.arange(first, n, 64 * 2)
    for x, e in zip(edged, edges):
        x[hit] = np.resize(e, hit.size)
    kept = np.ones(n, bool)
    kept[hit] = False
    with np.errstate(all="ignore"):
        inner, mixed = g(*xs), g(*edged)
        assert _same(inner, mixed, kept)
        assert _same(inner, vm(*xs)) and _same(mixed, vm(*edged))
        assert _same(inner, g.with_threads(2)(*xs))
        for i in singles:
            one = g(*[float(x[i]) for x in xs])
            assert all(same_bits(np.asarray(a), np.asarray(b)[i]) for a, b in zip(_bits(one), _bits(inner)))
    return edged


@pytest.mark.parametrize("expr", ["exp(x) - 1", "1 - exp(x)", "exp(x) * expm1(y) + x * y"])
def test_a_points_bits_do_not_depend_on_its_tile(expr):
    """(One point at a time: where the kernel calls no libm function, whose scalar
    variant may differ from the vector one in the last bit.)"""
    g = compile_grad(expr, backend="c", stable=True)
    vm = compile_grad(expr, backend="vm", stable=True)
    assert "_point_inner" in g.source
    n = 64 * 40 + 3
    xs = [_RNG.permutation(_inner_points(1000))[:n] for _ in g.inputs]
    edged = assert_tiles_agree(g, vm, xs, [EDGES] * len(xs), 5,
                               (0, 1, 700, n - 1) if "exp(x) *" not in expr else ())
    if len(g.inputs) == 2:  # one input a number: the tiles test the other one
        with np.errstate(all="ignore"):
            assert _same(g(0.5, edged[1]), vm(0.5, edged[1])) and _same(g(-0.0, xs[1]), vm(-0.0, xs[1]))


def test_edges_against_numpy():
    g = compile_grad("exp(x) - 1", backend="c", stable=True)
    xs = np.array([x for x, _ in BOUNDS] * 2 + list(_inner_points(50)))
    with np.errstate(all="ignore"):
        value, (grad,) = g(xs)
        np.testing.assert_allclose(value, np.expm1(xs), rtol=3 * 2.0 ** -52, atol=0)
        np.testing.assert_allclose(grad, np.exp(xs), rtol=3 * 2.0 ** -52, atol=0)
        assert same_bits(np.signbit(value).astype(float), np.signbit(np.expm1(xs)).astype(float))


def test_a_hessians_columns_and_float32_kernels():
    h = compile_hessian("exp(x) - 1 + x * y", backend="c", stable=True)
    assert "_point_inner" in h.source
    x = _inner_points(300)
    y = _RNG.uniform(-1, 1, x.size)
    x[::97] = 1e-310
    vm = compile_hessian("exp(x) - 1 + x * y", backend="vm", stable=True)
    assert all(same_bits(np.asarray(a), np.asarray(b)) for a, b in zip(h(x, y), vm(x, y)))
    f = compile_grad("exp(x) - 1", backend="c", stable=True, dtype="float32")
    assert "_point_inner" in f.source
    xs = np.float32(_RNG.uniform(-80, 80, 1000))
    edged = xs.copy()
    edged[::70] = np.float32(-0.0)
    kept = np.arange(xs.size) % 70 != 0
    assert _same(f(xs), f(edged), kept)
    np.testing.assert_allclose(f(xs)[0], np.expm1(xs.astype(np.float64)), rtol=4e-7)


def test_minus_zero_is_no_inner_point_in_a_float_kernel():
    """A float kernel's xc_exp_inner_at (dtypes.c_source_float: its union's integer 32
    bits wide) tells -0.0 from +0.0 too: the sign bit is its integer's own width's."""
    import ctypes
    from exprcompiler import dtypes
    loop = ("void run(long n, const double *x, double *y)\n{\n"
            "    for (long i = 0; i < n; ++i) y[i] = xc_exp_inner_at(x[i]);\n}")
    source = dtypes.c_source_float("\n".join(["#include <math.h>", *c_backend.math_prelude({"xc_exp_inner_at"}),
                                              loop, ""]))
    inner_at = array_call(ctypes.CDLL(str(c_build.build(source))).run, np.float32)
    assert inner_at([-0.0, 0.0, 1.5, -2.0, 700.0, np.nan]).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
