"""hypot3's Hessian at mixed magnitudes, against mpmath, by both sweeps (forward over
reverse: compile_hessian; reverse over forward: the VJP of the forward gradient), on
NumPy, C and the VM. Its partials x/h were the op over_norm(x, h, s), whose derivative
is the quotient's: the diagonal (y² + z²)/h³ came out as 1/h - (x/h)·(x/h)/h, 0 for
3.7e-20 at (1e-9, 3, 2e-9). They are now hypot3_slope<i>(x, y, z) under a guard
(ops_special._over_norm3), whose derivative is products of the unit vector's
components, and the backends still divide by the kernel's own h (c_forms.hypot_quotients:
the first derivative's code is over_norm's)."""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import compile_grad, compile_hessian, compile_vjp, passes
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import HAVE_CC, backends_here

TINY = 2.2250738585072014e-308
RTOL = 1e-12
BACKENDS = backends_here("c", "vm")
POINTS = [(1e-9, 3.0, 2e-9), (-1e-9, 3.0, -2e-9), (3.0, 1e-200, 1e-200), (1e300, 1e-300, 1.0),
          (1e-300, 1.0, 2e-300), (1e150, 1e-150, 2e150), (2e-9, -1e-9, 3.0), (1.0, 1e300, 1e-300),
          (0.0, 3.0, 0.0), (0.0, -0.0, 2.0), (5e-324, 3.0, 1e-310), (3.0, 5e-324, -1e-310),
          (1e-310, 2e-310, 3e-310), (2.0, 3.0, 6.0)]


pytestmark = pytest.mark.usefixtures("private_cache")


def exact(p) -> np.ndarray:
    """(δ_ij r² - x_i x_j) / r³ at 60 digits, the diagonal as the sum of the other two
    squares over r³ (r² - x_i² would cancel: 1e-23 beside 100 needs 1300 digits)."""
    with mpmath.workdps(60):
        x = [mpmath.mpf(v) for v in p]
        r2 = sum(t * t for t in x)
        r3 = r2 * mpmath.sqrt(r2)
        return np.array([[float((sum(x[k] ** 2 for k in range(3) if k != i) if i == j else -x[i] * x[j]) / r3)
                          for j in range(3)] for i in range(3)])


def mismatches(got, p) -> list:
    """Entries off the exact Hessian: relative RTOL where it is a normal float, RTOL of the
    block's largest entry where it is 0 or subnormal; not checked where it overflows."""
    want = exact(p)
    finite = np.abs(want) <= np.finfo(float).max
    if not finite.any():
        return []
    normal = finite & (np.abs(want) >= TINY)
    scale = np.abs(want[finite]).max()
    with np.errstate(all="ignore"):
        err = np.abs(np.asarray(got, dtype=float) - want)
        bad = (normal & ~(err <= RTOL * np.abs(want))) | (finite & ~normal & ~(err <= RTOL * scale))
    return [(p, (i, j), float(got[i][j]), float(want[i][j])) for i, j in np.argwhere(bad)]


def _trace():
    b = Builder()
    xs = [b.input(n) for n in "xyz"]
    return trace_from_builder(b, [("y", b.apply("hypot3", *xs))])


@functools.lru_cache(maxsize=None)
def forward_over_reverse(backend):
    return compile_hessian("hypot3(x, y, z)", backend=backend)


@functools.lru_cache(maxsize=None)
def reverse_over_forward(backend):
    return compile_vjp(passes.grad_forward(_trace(), ["x", "y", "z"]), backend=backend)


def hessians(backend, mode, pts: np.ndarray) -> np.ndarray:
    """(points, 3, 3) by one sweep at the columns of pts (3, points)."""
    with np.errstate(all="ignore"):
        if mode == "forward over reverse":
            return np.asarray(forward_over_reverse(backend)(*pts)[2], dtype=float).reshape(-1, 3, 3)
        f = reverse_over_forward(backend)
        primal = dict(zip("xyz", pts))
        columns = []
        for k in range(3):   # the VJP seeded with e_k on the gradient: column k
            given_ = {**primal, **{f"{n}_bar_bar": np.full(pts.shape[1], float(j == k)) for j, n in enumerate("xyz")},
                      "y_bar": 0.0}
            got = f(*(given_[n] for n in f.inputs))
            columns.append(np.stack([np.asarray(got[1][f.wrt.index(n)], dtype=float) for n in "xyz"]))
        return np.stack(columns, axis=-1).transpose(1, 0, 2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["forward over reverse", "reverse over forward"])
def test_hessian_is_exact_at_mixed_magnitudes(backend, mode):
    pts = np.array(POINTS).T
    hs = hessians(backend, mode, pts)
    found = [m for p, h in zip(POINTS, hs) for m in mismatches(h, p)]
    assert not found, found


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_at_zero_is_finite_and_gradient_a_subgradient(backend):
    # at (0, 0, 0) the Hessian is unbounded: the rules give 0 (h taken as 1, the guard's 0),
    # not NaN, and the gradient is 0 (as before)
    with np.errstate(all="ignore"):
        v, g, h = forward_over_reverse(backend)(0.0, 0.0, -0.0)
    assert v == 0.0 and all(t == 0.0 for t in g)
    assert np.all(np.asarray(h, dtype=float) == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_derivative_divides_by_the_value(backend):
    # the gradient's bits are over_norm's (x·k·(1/(h·k))) wherever 1/h is normal: those of
    # x·(1/hypot3), 0 at (0, 0, 0)
    pts = np.array(POINTS).T
    v, grads = compile_grad("hypot3(x, y, z)", backend=backend)(*pts)
    with np.errstate(all="ignore"):
        want = [np.where(v == 0, 0.0, t * (1.0 / np.where(v == 0, 1.0, v))) for t in pts]
    ok = (v > 2.0 ** -1000) & (v < 2.0 ** 1000) | (v == 0)
    for got, w in zip(grads, want):
        np.testing.assert_array_equal(np.asarray(got)[ok], w[ok])


def test_c_kernel_keeps_over_norm_in_the_gradient():
    # the first derivative's C code is as before the slopes were ops (c_forms.hypot_quotients)
    if not HAVE_CC:
        pytest.skip("no C compiler")
    src = compile_grad("hypot3(x, y, z)", backend="c").source
    assert "xc_select(v1 == 0.0, 0.0, xc_over_norm(x, t2, t1))" in src
    assert "xc_hypot3_slope" not in src and "xc_hypot3_guard" not in src


_MAGNITUDE = st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(1.0, 10.0), st.integers(-300, 300))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(_MAGNITUDE, _MAGNITUDE, _MAGNITUDE), min_size=1, max_size=8))
def test_hessian_at_random_mixed_magnitudes(points):
    pts = [tuple(s * m * 10.0 ** e for s, m, e in p) for p in points]
    arr = np.array(pts).T
    for backend in BACKENDS[:2]:
        for mode in ("forward over reverse", "reverse over forward"):
            hs = hessians(backend, mode, arr)
            found = [m for p, h in zip(pts, hs) for m in mismatches(h, p)]
            assert not found, (backend, mode, found)
