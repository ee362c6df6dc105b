"""e^y - 1 and e^y of y <= 0 without the edge steps (c_exp's xc_expm1_neg_inner and
xc_exp_neg_inner) and the helpers built on them (c_special.INNER: log1mexp, its slope's
expm1, tanh and sech2): the full forms' bits wherever their tests hold, and C kernels
that run them on tiles whose points all pass, also where a helper's argument is one
operation on inputs (sech2(x/2) of sigmoid's slope, tanh(x*y)), which the test of a
tile computes again: a point's bits never depend on the other points of its tile."""

import math

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian
from exprcompiler.backends import c_build, c_special

from test_c_exp import vectorized
from test_c_exp_inner import _bits, _same
from test_vm import same_bits

if c_build.shutil.which("cc") is None and c_build.shutil.which("gcc") is None:
    pytest.skip("no C compiler on this machine", allow_module_level=True)

_RNG = np.random.default_rng(1803)
# (x, whether y = -|x| is within [-690, 0]); y = -2|x| at half these bounds
BOUNDS = [(0.0, True), (-0.0, True), (5e-324, True), (-1e-310, True), (690.0, True), (-690.0, True),
          (np.nextafter(690.0, 1e3), False), (-np.nextafter(690.0, 1e3), False), (693.0, False),
          (746.0, False), (1e300, False), (math.inf, False), (-math.inf, False), (math.nan, False)]
# points of tiles that take the full forms, for arguments x and x/2
EDGES = [math.nan, 700.0, -720.0, math.inf, -math.inf, 1e300, -746.5, 693.5]


def _inner_points(n: int, bound: float = 690.0) -> np.ndarray:
    """|x| <= bound: uniform, every binade of both signs (subnormals too), near 0, zeros."""
    mag = 2.0 ** _RNG.uniform(-1074, math.log2(bound), n)
    return np.concatenate([_RNG.uniform(-bound, bound, n), _RNG.choice([-1, 1], n) * mag,
                           _RNG.uniform(-0.003, 0.003, n), [0.0, -0.0, bound, -bound, 5e-324]])


@pytest.fixture(scope="module")
def helpers():
    names = [n for pair in c_special.INNER.items() for n in (pair[0], pair[1][0])]
    return vectorized((*names, "xc_expm1_neg", "xc_exp_neg", "xc_expm1_neg_inner", "xc_exp_neg_inner",
                       "xc_exp_neg_inner_at", "xc_exp_neg2_inner_at"))


def test_which_points_are_inner(helpers):
    xs = np.array([x for x, _ in BOUNDS])
    assert helpers["xc_exp_neg_inner_at"](xs).tolist() == [float(inner) for _, inner in BOUNDS]
    assert helpers["xc_exp_neg2_inner_at"](xs / 2).tolist() == [float(inner) for _, inner in BOUNDS]
    assert (helpers["xc_exp_neg_inner_at"](_inner_points(2000)) == 1.0).all()


def test_the_inner_forms_are_the_full_forms_bit_for_bit(helpers):
    ys = -np.abs(_inner_points(20000))
    for full in ("xc_expm1_neg", "xc_exp_neg"):
        assert same_bits(helpers[f"{full}_inner"](ys), helpers[full](ys)), full
    for full, (inner, at) in c_special.INNER.items():
        xs = _inner_points(20000, 690.0 if at == "xc_exp_neg_inner_at" else 345.0)
        assert (helpers[at](xs) == 1.0).all()
        with np.errstate(all="ignore"):
            assert same_bits(helpers[inner](xs), helpers[full](xs)), full


def test_the_edges_need_the_full_forms(helpers):
    """Why the tests stop at 690: below y = -693.1 e^y needs the rescue of 2^k."""
    y = np.array([-700.0, -745.0])
    assert not same_bits(helpers["xc_exp_neg_inner"](y), helpers["xc_exp_neg"](y))
    assert helpers["xc_exp_neg"](y)[0] == pytest.approx(math.exp(-700.0), rel=1e-15)


@pytest.mark.parametrize("expr", ["log(1 - exp(x))", "log(-expm1(x))", "log1p(-exp(x))", "tanh(x)",
                                  "sigmoid(x)*(1 - sigmoid(x))", "tanh(x*y)", "expm1(2 * x)"])
def test_which_kernels_run_tiles_of_inner_points(expr):
    assert "f_grad_point_inner" in compile_grad(expr, backend="c", stable=True).source


@pytest.mark.parametrize("expr", ["tanh(sin(x))", "tanh(x*y + x)", "tanh(x) + tanh(2 * x + 1)"])
def test_an_argument_of_more_than_one_operation_runs_no_tiles(expr):
    source = compile_grad(expr, backend="c", stable=True).source
    assert "xc_tanh(" in source and "_point_inner" not in source
    # of one operation on inputs, or a negation, it does (c_tiles._of_inputs): the test computes it again
    assert "xc_exp_neg2_inner_at(x * y)" in compile_grad("tanh(x*y)", backend="c", stable=True).source
    assert "xc_exp_neg2_inner_at(-x)" in compile_grad("tanh(-x)", backend="c", stable=True).source


def _edged(xs: list, n: int):
    """The inputs with an edge point in every other tile, and the points left alone."""
    edged = [x.copy() for x in xs]
    hit = np.arange(5, n, 64 * 2)
    for x in edged:
        x[hit] = np.resize(EDGES, hit.size)
    kept = np.ones(n, bool)
    kept[hit] = False
    return edged, kept


@pytest.mark.parametrize("expr", ["log(1 - exp(x))", "log1p(-exp(x))", "sigmoid(x)*(1 - sigmoid(x))",
                                  "tanh(x*y)", "tanh(x) * y"])
def test_a_points_bits_do_not_depend_on_its_tile(expr):
    """(One point at a time: where the kernel calls no libm function, whose scalar
    variant may differ from the vector one in the last bit: log1mexp calls log.)"""
    g = compile_grad(expr, backend="c", stable=True)
    vm = compile_grad(expr, backend="vm", stable=True)
    assert "_point_inner" in g.source
    n = 64 * 40 + 3
    xs = [_RNG.permutation(_inner_points(1000, 18.0 if "x*y" in expr else 690.0))[:n] for _ in g.inputs]
    edged, kept = _edged(xs, n)
    with np.errstate(all="ignore"):
        inner, mixed = g(*xs), g(*edged)
        assert _same(inner, mixed, kept)
        assert _same(inner, vm(*xs)) and _same(mixed, vm(*edged))
        assert _same(inner, g.with_threads(2)(*xs)) and _same(mixed, g.with_threads(2)(*edged))
        for i in (0, 1, 700, n - 1) if "log" not in expr else ():
            one = g(*[float(x[i]) for x in xs])
            assert all(same_bits(np.asarray(a), np.asarray(b)[i]) for a, b in zip(_bits(one), _bits(inner)))


def test_values_against_numpy():
    g = compile_grad("sigmoid(x)*(1 - sigmoid(x))", backend="c", stable=True)
    x = np.concatenate([_inner_points(50, 40.0), EDGES[:1] + EDGES[3:5]])
    w = np.exp(-np.abs(x))   # s (1 - s) = w / (1 + w)^2 for the sigmoid s, without cancellation
    with np.errstate(all="ignore"):
        value, (grad,) = g(x)
    np.testing.assert_allclose(value, w / (1 + w) ** 2, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad, np.sign(x) * w * np.expm1(-np.abs(x)) / (1 + w) ** 3, rtol=1e-13, atol=1e-300)
    h = compile_grad("log(1 - exp(x))", backend="c", stable=True)
    x = -np.abs(_inner_points(50, 30.0))
    x = x[x < -1e-300]
    value, (grad,) = h(x)
    above = x > -math.log(2)   # each form where it is accurate
    exact = np.where(above, np.log(-np.expm1(np.where(above, x, -1.0))),
                     np.log1p(-np.exp(np.where(above, -1.0, x))))
    np.testing.assert_allclose(value, exact, rtol=1e-14)
    np.testing.assert_allclose(grad, -1 / np.expm1(-x), rtol=1e-14)


def test_a_hessians_columns_and_float32_kernels():
    h = compile_hessian("log(1 - exp(x)) + tanh(x * y)", backend="c", stable=True)
    vm = compile_hessian("log(1 - exp(x)) + tanh(x * y)", backend="vm", stable=True)
    assert "_point_inner" in h.source
    x = -np.abs(_inner_points(300, 20.0))
    y = _RNG.uniform(-1, 1, x.size)
    x[::97] = -800.0
    with np.errstate(all="ignore"):
        assert all(same_bits(np.asarray(a), np.asarray(b)) for a, b in zip(h(x, y), vm(x, y)))
    f = compile_grad("sigmoid(x)*(1 - sigmoid(x))", backend="c", stable=True, dtype="float32")
    assert "_point_inner" in f.source
    xs = np.float32(_RNG.uniform(-80, 80, 1000))
    edged = xs.copy()
    edged[::70] = np.float32(np.nan)
    kept = np.arange(xs.size) % 70 != 0
    assert _same(f(xs), f(edged), kept)
