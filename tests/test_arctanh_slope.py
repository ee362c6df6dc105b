"""arctanh's derivatives at small and moderate |x|: its partial is g / one_minus_square(x),
an op whose value is (1 - x)(1 + x) (the product's bits, so the gradient is unchanged)
and whose derivative is -2x. The product differentiated step by step, -(1 + x) + (1 - x),
cancelled for small x: the Hessian 2x/(1 - x²)² was 0 below 1e-16 and 2.7e-8 off at 1e-9."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, compile_vjp, passes, runtime, to_trace
from exprcompiler.errors import ExprcError
from test_hessian_ties import BACKENDS

pytestmark = pytest.mark.usefixtures("private_cache")

MAGNITUDES = np.concatenate([10.0 ** np.arange(-300.0, 0.0, 7.0),
                             [1e-9, 0.1, 0.3, 0.49, 0.5, 0.51, 0.7, 0.9, 0.99, 0.999999, 1 - 2.0 ** -40]])
XS = np.concatenate([MAGNITUDES, -MAGNITUDES])


def exact(xs) -> np.ndarray:
    """Rows (arctanh'(x), arctanh''(x)) = (1/(1 - x²), 2x/(1 - x²)²) by mpmath."""
    with mpmath.workdps(60):
        return np.array([[float(1 / (1 - m * m)), float(2 * m / (1 - m * m) ** 2)]
                         for m in map(mpmath.mpf, map(float, xs))])


def assert_ulps(got, want, ulps, eps=2.0 ** -52):
    got = np.asarray(got, dtype=float).ravel()
    bad = ~(np.abs(got - want) <= ulps * eps * np.abs(want))
    assert not bad.any(), [(float(g), float(w)) for g, w in zip(got[bad], want[bad])]


@pytest.mark.parametrize("backend", BACKENDS + (["vm"] if "c" in BACKENDS else []))
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_arctanh_gradient_and_hessian_are_mpmaths_from_1e_300_to_near_1(backend):
    want = exact(XS)
    for mode in ("reverse", "forward"):
        assert_ulps(compile_grad("arctanh(x)", backend=backend, mode=mode)(XS)[1], want[:, 0], 1)
    assert_ulps(compile_hessian("arctanh(x)", backend=backend)(XS)[2], want[:, 1], 4)
    rof = compile_vjp(passes.grad_forward(to_trace("arctanh(x)")), backend=backend)
    assert_ulps(rof(XS, 0.0, 1.0)[-1], want[:, 1], 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_arctanh_hessian_in_float32(backend):
    xs = XS.astype(np.float32)
    xs = xs[(xs != 0) & (np.abs(xs) < 1)]
    want = exact(xs)
    normal = np.abs(want[:, 1]) >= np.finfo(np.float32).tiny
    h = np.asarray(compile_hessian("arctanh(x)", backend=backend, dtype="float32")(xs)[2], dtype=float).ravel()
    assert_ulps(h[normal], want[normal, 1], 4, eps=2.0 ** -23)


@pytest.mark.parametrize("backend", BACKENDS + (["vm"] if "c" in BACKENDS else []))
def test_arctanh_gradient_keeps_the_products_bits(backend):
    """1/((1 - x)(1 + x)), bit for bit, at ±1 (inf), beyond (negative), inf and NaN too."""
    xs = np.concatenate([XS, [0.0, -0.0, 1.0, -1.0, 2.0, -3.0, np.inf, -np.inf, np.nan, 5e-324]])
    with np.errstate(all="ignore"):
        got = compile_grad("arctanh(x)", backend=backend)(xs)[1][0]
        want = 1.0 / ((1.0 - xs) * (1.0 + xs))
    np.testing.assert_array_equal(np.asarray(got).view(np.int64), want.view(np.int64))


def test_one_minus_square_runtime_keeps_types_and_bits():
    x = np.array([0.3, -0.7, 1e-9], dtype=np.float32)
    r = runtime.one_minus_square(x)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, (np.float32(1) - x) * (np.float32(1) + x))
    assert type(runtime.one_minus_square(0.25)) is float and runtime.one_minus_square(0.25) == 0.9375
    assert np.asarray(runtime.one_minus_square(np.float64(0.5))).shape == ()
    assert runtime.one_minus_square(np.array(0.5)) == 0.75


def test_one_minus_square_is_not_in_the_language():
    with pytest.raises(ExprcError):
        compile_grad("one_minus_square(x)")
