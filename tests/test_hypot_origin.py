"""hypot's and hypot3's Hessians at the origin, reverse over forward.

Their derivative x/out is 0 where out is 0 (a subgradient), a selection whose branch not
taken was x/out, 0/0 there: reverse over forward (the VJP of the forward gradient)
multiplies that branch's derivatives by an adjoint of 0, which gave a NaN Hessian where
forward over reverse gives 0. The branch now divides by 1 where out is 0. Elsewhere
the Hessians are (I - n nᵀ)/out, n = x/out, by both sweeps."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import compile_hessian, compile_vjp, passes, to_trace
from test_hessian_ties import BACKENDS

pytestmark = pytest.mark.usefixtures("private_cache")

CASES = [("hypot(x, y)", "xy"), ("hypot3(x, y, z)", "xyz")]
# per variable: the origin (both signs of zero), then points off it, near it too
COLUMNS = {"x": [0.0, -0.0, 3.0, -1e-300, 1e-150, 2.0],
           "y": [0.0, 0.0, -4.0, 2e-300, 0.0, 1e-8],
           "z": [-0.0, 0.0, 12.0, 0.0, 0.0, -3.0]}


def reverse_over_forward(expr: str, names: str, backend: str, point: dict) -> np.ndarray:
    """The Hessian, (points, n, n), as the VJP of the forward gradient, column by column."""
    rof = compile_vjp(passes.grad_forward(to_trace(expr)), backend=backend)
    columns = []
    for k in names:
        given = {**point, "f_bar": 0.0, **{f"{v}_bar_bar": float(v == k) for v in names}}
        columns.append(np.asarray(rof(*(given[name] for name in rof.inputs))[1], dtype=float))
    return np.stack(columns, axis=1).transpose(2, 0, 1)


def exact(names: str, point: dict) -> np.ndarray:
    """(I - n nᵀ)/h, 0 at the origin (the convention's), in exact scalings of the point;
    its diagonal without cancellation."""
    xs = np.array([point[v] for v in names], dtype=float).T
    scale = np.max(np.abs(xs), axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    h = np.sqrt(np.sum((xs / scale) ** 2, axis=1)) * scale[:, 0]
    n = xs / np.where(h == 0, 1.0, h)[:, None]
    k = len(names)
    eye = np.eye(k)
    # the diagonal 1 - n_i² as the sum of the other n_j² (1 - n_i² cancels: 0 for the
    # 2.5e-17 of (2, 1e-8))
    others = np.stack([np.sum((n ** 2)[:, [j for j in range(k) if j != i]], axis=1) for i in range(k)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (eye * others[:, :, None] - (1.0 - eye) * n[:, :, None] * n[:, None, :]) / h[:, None, None]
    out[h == 0] = 0.0
    return out


@pytest.mark.parametrize("expr,names", CASES)
@pytest.mark.parametrize("backend", BACKENDS + ["vm"])
def test_reverse_over_forward_hessian_is_forward_over_reverse_at_the_origin_and_off_it(expr, names, backend):
    point = {v: np.array(COLUMNS[v]) for v in names}
    got = reverse_over_forward(expr, names, backend, point)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[:2], 0.0)
    want = exact(names, point)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    fwd = compile_hessian(expr, backend=backend)(*(point[v] for v in names))[2]
    np.testing.assert_array_equal(fwd[:2], 0.0)
    # (forward over reverse overflows at the 1e-300 point: its 1/h² terms)
    np.testing.assert_allclose(got[[2, 4, 5]], np.asarray(fwd)[[2, 4, 5]], rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_over_forward_through_selections_that_meet_the_origin(backend):
    """hypot(relu(x), relu(y)) at x, y < 0 is hypot at (0, 0): its Hessian is 0 there."""
    point = {"x": np.array([-1.0, -2.0, 3.0]), "y": np.array([-1.0, 4.0, 4.0])}
    got = reverse_over_forward("hypot(relu(x), relu(y))", "xy", backend, point)
    np.testing.assert_array_equal(got[0], 0.0)
    np.testing.assert_array_equal(got[1], 0.0)   # (hypot(0, 4): its row of x is relu's 0, its y'' 0)
    np.testing.assert_allclose(got[2], exact("xy", {"x": np.array([3.0]), "y": np.array([4.0])})[0], rtol=1e-12)
