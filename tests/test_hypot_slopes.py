"""hypot's Hessian at mixed magnitudes: its partials x/h are the op hypot_slope(x, y, h)
(ops_special), whose derivative is the unit vector's products, (y/h)²/h and
-(x/h)(y/h)/h; differentiated as a quotient, 1/h - (x/h)·(x/h)/h cancelled (0 for
y²/h³ = 3.7e-20 at (3, 1e-9)). The first derivative's code is the quotient's all the
same: every backend divides by the kernel's own h (c_forms.hypot_quotients), so its bits
and cost did not change; the op alone computes hypot itself (h is a hint)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_vjp, passes, runtime
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import backends_here

BACKENDS = backends_here("c", "vm")
_RNG = np.random.default_rng(2026)
TINY = 2.2250738585072014e-308


pytestmark = pytest.mark.usefixtures("private_cache")


def _points() -> tuple[np.ndarray, np.ndarray]:
    """Mixed magnitudes (|y|/|x| from 1e-3 to 1e-15, both ways, all signs), extreme
    scales (1e-300..1e300, one argument far below the other too), ordinary points."""
    mixed = [(3.0, 1e-9), (1e-9, 3.0), (-3.0, 1e-9), (-1e-9, 3.0), (1.0, 1e-15), (2.5, -1e-6)]
    scaled = [(3e-300, 1e-309), (3e300, 1e290), (1e-150, 3e-158), (5e150, -2e149), (3.0, 4.0), (1e-300, 2e-300)]
    big = 10.0 ** _RNG.uniform(-3, 3, 40)
    ratio = 10.0 ** -_RNG.uniform(3, 15, 40)
    sign = _RNG.choice([-1.0, 1.0], (2, 40))
    pts = mixed + scaled + list(zip(sign[0] * big, sign[1] * big * ratio))
    pts += [(y, x) for x, y in pts]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def _exact(x: float, y: float) -> np.ndarray:
    """[[y², -xy], [-xy, x²]] / h³ by mpmath."""
    with mpmath.workdps(60):
        x, y = mpmath.mpf(x), mpmath.mpf(y)
        h3 = mpmath.sqrt(x * x + y * y) ** 3
        return np.array([[float(y * y / h3), float(-x * y / h3)], [float(-x * y / h3), float(x * x / h3)]])


def _check(got: np.ndarray, xs, ys) -> None:
    bad = []
    for k, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
        want = _exact(x, y)
        finite = np.abs(want) <= np.finfo(float).max
        normal = finite & (np.abs(want) >= TINY)
        err = np.abs(got[k] - want)
        scale = np.max(np.abs(want[finite]))
        if (normal & ~(err <= 1e-12 * np.abs(want))).any() or (finite & ~normal & ~(err <= 1e-12 * scale)).any():
            bad.append(f"({x!r}, {y!r}): got {got[k].tolist()}, exact {want.tolist()}")
    assert not bad, "\n".join(bad[:10])


def _reverse_over_forward(backend, xs, ys) -> np.ndarray:
    """The VJP of the forward gradient of hypot(x, y), seeded with e_k: column k."""
    b = Builder()
    x, y = b.input("x"), b.input("y")
    trace = trace_from_builder(b, [("f", b.hypot(x, y))])
    rof = compile_vjp(passes.grad_forward(trace, ["x", "y"]), backend=backend)
    cols = []
    for k in range(2):
        given = {"x": xs, "y": ys, "x_bar_bar": np.full(xs.shape, float(k == 0)),
                 "y_bar_bar": np.full(xs.shape, float(k == 1)), "f_bar": 0.0}
        got = rof(*(given[name] for name in rof.inputs))
        cols.append(dict(zip(rof.wrt, (np.asarray(v, dtype=float) for v in got[1]))))
    return np.stack([np.stack([cols[k]["x"], cols[k]["y"]], -1) for k in range(2)], -1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sweep", ["forward over reverse", "reverse over forward"])
def test_hessian_within_1e12_at_mixed_magnitudes_and_extreme_scales(backend, sweep):
    xs, ys = _points()
    if sweep == "forward over reverse":
        got = np.asarray(compile_hessian("hypot(x, y)", backend=backend)(xs, ys)[2])
    else:
        got = _reverse_over_forward(backend, xs, ys)
    _check(got, xs, ys)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_at_zero_and_beside_zero(backend):
    """(0, 0): 0 (the subgradient's derivative, as before); (x, 0): [[0, 0], [0, 1/|x|]]."""
    xs, ys = np.array([0.0, -0.0, 2.0, 0.0, 1e-310]), np.array([0.0, 0.0, 0.0, -4.0, 0.0])
    got = np.asarray(compile_hessian("hypot(x, y)", backend=backend)(xs, ys)[2])
    assert (got[:2] == 0.0).all()
    np.testing.assert_array_equal(got[2], [[0.0, -0.0], [-0.0, 0.5]])
    np.testing.assert_array_equal(np.abs(got[3]), [[0.25, 0.0], [0.0, 0.0]])
    assert got[4][1, 1] == np.inf and got[4][0, 0] == 0.0   # 1/1e-310 overflows


@pytest.mark.parametrize("backend", ["numpy", "c"] if "c" in BACKENDS else ["numpy"])
def test_hessian_float32(backend):
    """float32 at (3, 1e-3) and back: y²/h³ = 3.7e-8; as a quotient's derivative,
    1/h - (x/h)²/h, it was 0 or a float32 ulp of 1/3 (1.5e-8) off."""
    xs, ys = np.array([3.0, 1e-3, -3.0], np.float32), np.array([1e-3, 3.0, 2e-2], np.float32)
    got = np.asarray(compile_hessian("hypot(x, y)", backend=backend, dtype="float32")(xs, ys)[2])
    assert got.dtype == np.float32
    want = np.array([_exact(float(x), float(y)) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(got, want, rtol=3e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_is_the_quotient_by_the_kernels_hypot(backend):
    """The first derivative: no hypot_slope left in its code (each divided by the value's
    own h), the bits where(h == 0, 0, x / where(h == 0, 1, h)) of the value h returned."""
    g = compile_grad("hypot(x, y)", backend=backend)
    if backend != "vm":
        assert "hypot_slope" not in g.source.split("one point */")[-1]
    xs, ys = _points()
    xs, ys = np.concatenate([xs, [0.0, 3.0, np.inf, np.nan]]), np.concatenate([ys, [0.0, np.inf, 1.0, 2.0]])
    h = np.asarray(compile_expr("hypot(x, y)", backend=backend)(xs, ys))
    with np.errstate(all="ignore"):
        zero = h == 0.0
        t = np.where(zero, 1.0, h)
        want = [np.where(zero, 0.0, x / t) for x in (xs, ys)]
    _, got = g(xs, ys)
    for w, v in zip(want, got):
        np.testing.assert_array_equal(np.asarray(v).view(np.int64), w.view(np.int64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_op_alone_computes_its_norm(backend):
    """hypot_slope(x, y, h) with an h that is not the kernel's hypot: x / hypot(x, y)
    whatever h (a hint), 0 at (0, 0); the NumPy reference gives the same numbers."""
    b = Builder()
    x, y, h = b.input("x"), b.input("y"), b.input("h")
    f = compile_expr(trace_from_builder(b, [("f", b.apply("hypot_slope", x, y, h))]), backend=backend)
    xs, ys = np.array([3.0, 0.0, 1e-9, -1e300, 5.0]), np.array([4.0, 0.0, 3.0, 1e300, 0.0])
    got = np.asarray(f(*({"x": xs, "y": ys, "h": np.full(5, 7.0)}[n] for n in f.inputs)))
    want = np.array([0.6, 0.0, 1e-9 / 3.0, -1.0 / np.sqrt(2.0), 1.0])
    np.testing.assert_allclose(got, want, rtol=2e-16)
    np.testing.assert_array_equal(runtime.hypot_slope(xs, ys, 7.0), got)
