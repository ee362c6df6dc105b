"""sinc's derivatives near 0, and reverse-over-forward Hessians (the VJP of the forward
gradient) of every elementwise op at its edge points.

sinc'(x) = (cos(πx) - sinc(x))/x cancels for small |x| (at 1e-9 the gradient was 0 and
the Hessian -9.87 for -3.29), so below a threshold the slope is a Maclaurin series;
both branches take safe arguments where they are not taken, so that the adjoint of 0
through them is 0, not 0·NaN. The reverse-over-forward sweep differentiates the
tangent sweep's selections backwards: a branch not taken that is NaN at a point made
the Hessian NaN there (sinc's 0/0 at 0, and at x < 0 in sinc(relu(x)); its series,
overflowing, at 1e200)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, compile_vjp, passes, to_trace
from exprcompiler.ops_special import _SINC_SMALL
from test_hessian_ties import BACKENDS, DIFFERENTIABLE, all_ops_trace, cases, check, column_blocks, exact_hessians

pytestmark = pytest.mark.usefixtures("private_cache")

_T = _SINC_SMALL
SMALL = [0.0, 1e-300, 1e-12, 1e-9, 1e-6, 1e-3, 0.01, _T * (1 - 2 ** -52), _T, _T * (1 + 2 ** -52),
         _T * 0.99, _T * 1.01]
POINTS = SMALL + [-x for x in SMALL if x] + list(np.linspace(0.1, 4.0, 40)) + [
    n + d for n in (1.0, 2.0, 3.0, -1.0) for d in (-1e-9, 0.0, 1e-9)] + [1e200, -1e200]


def sinc_derivatives(x: float) -> tuple[float, float]:
    """sinc'(x) and sinc''(x) by mpmath, with digits enough for the cancellation at x."""
    if x == 0.0:
        return 0.0, -math.pi ** 2 / 3.0
    with mpmath.workdps(40 + 2 * abs(math.floor(math.log10(abs(x))))):
        m = mpmath.mpf(x)
        s = mpmath.sin(mpmath.pi * m) / (mpmath.pi * m)
        slope = (mpmath.cos(mpmath.pi * m) - s) / m
        return float(slope), float(-mpmath.pi ** 2 * s - 2 * slope / m)


def assert_close(got, want, xs, what):
    """Within 1e-13 relative, of 1 where |x| > 0.1 (the slope and the Hessian cross 0
    there; the forms' terms are of order 1)."""
    got, want = np.asarray(got, dtype=float).ravel(), np.asarray(want)
    scale = np.where(np.abs(xs) < 0.1, np.abs(want), np.maximum(np.abs(want), 1.0))
    bad = ~(np.abs(got - want) <= 1e-13 * scale)
    assert not bad.any(), f"{what}: " + ", ".join(
        f"x={x!r}: {g!r} for {w!r}" for x, g, w in zip(xs[bad], got[bad], want[bad]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sinc_gradient_and_hessian_are_mpmaths_near_0_and_beyond(backend):
    xs = np.array(POINTS)
    want = np.array([sinc_derivatives(x) for x in xs])
    for mode in ("reverse", "forward"):
        assert_close(compile_grad("sinc(x)", backend=backend, mode=mode)(xs)[1], want[:, 0], xs, f"{mode} gradient")
    assert_close(compile_hessian("sinc(x)", backend=backend)(xs)[2], want[:, 1], xs, "Hessian")
    rof = compile_vjp(passes.grad_forward(to_trace("sinc(x)")), backend=backend)
    assert rof.inputs == ("x", "y_bar", "x_bar_bar")
    assert_close(rof(xs, 0.0, 1.0)[-1], want[:, 1], xs, "reverse-over-forward Hessian")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sinc_keeps_nan_and_infinities(backend):
    g = compile_grad("sinc(x)", backend=backend)
    with np.errstate(all="ignore"):
        assert np.isnan(g(np.array([math.nan, math.inf, -math.inf]))[1]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_over_forward_through_a_selection_is_not_nan(backend):
    """sinc(relu(x)) at x < 0 is sinc at 0 (the explore fuzz's case: Hessian NaN)."""
    rof = compile_vjp(passes.grad_forward(to_trace("sinc(relu(x))")), backend=backend)
    np.testing.assert_array_equal(rof(np.array([-1.0, -0.0, 0.0]), 0.0, 1.0)[-1][0], [0.0, 0.0, 0.0])


# Where forward-over-reverse's Hessian is finite and reverse-over-forward's NaN: points
# where the function is not twice differentiable or the Hessian is a limit at infinity,
# and forward-over-reverse gives a convention's 0 (the subgradient's, the tie's 0.5's)
# that reverse over forward meets as 0·inf or 0·NaN in the rule's other terms; and
# xlogy(x, y < 0), which is NaN (x·log(y)). (log1mexp at -inf left the list when the
# reverse sweep masked the contributions leaving a where's branch: reverse_masks.py.)
ROF_NAN = {("logaddexp", (math.inf, math.inf)),
           ("lgamma", (math.inf,)), ("xlogy", (-0.5, -0.5))}


@pytest.fixture(scope="module")
def expected():
    names, args, per_op, n = cases()
    exact = {op.name: exact_hessians(op, per_op[op.name]) for op in DIFFERENTIABLE}
    return names, args, per_op, n, exact


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_ops_reverse_over_forward_hessian_is_sympys_at_edges_ties_and_zeros(backend, expected):
    """The VJP of the forward gradient seeded with e_k on the gradient's outputs: column
    k of each op's block, against SymPy's exact Hessian where it is finite (as
    test_hessian_ties does for forward-over-reverse), and against forward-over-reverse
    wherever that block is finite (SymPy has no number for sinc'' at 0: 0/0), but at
    ROF_NAN."""
    names, args, per_op, n, exact = expected
    rof = compile_vjp(passes.grad_forward(all_ops_trace(), names), backend=backend)
    arity = max(op.arity for op in DIFFERENTIABLE)
    primal = dict(zip(names, args))
    columns = []
    for k in range(arity):
        # the cotangent of x.bar is the direction: e_k in every op's block at once
        seed = {f"{name}_bar_bar": np.full(n, float(name.endswith(f"_x{k + 1}"))) for name in names}
        given = {**primal, **seed, "y_bar": 0.0}
        with np.errstate(all="ignore"):
            got = rof(*(given[name] for name in rof.inputs))
        columns.append(dict(zip(rof.wrt, got[1])))

    block = column_blocks(columns)
    problems = check(block, expected)
    H = compile_hessian(all_ops_trace(), names, backend=backend)
    with np.errstate(all="ignore"):
        full = H(*(primal[name] for name in H.inputs))[2]
    index = {name: k for k, name in enumerate(names)}
    for op in DIFFERENTIABLE:
        for i, point in enumerate(per_op[op.name]):
            at = [index[f"{op.name}_x{k + 1}"] for k in range(op.arity)]
            want = full[i][np.ix_(at, at)]
            if np.isfinite(want).all() and (op.name, point) not in ROF_NAN and not np.allclose(
                    block(op, i), want, rtol=1e-9, atol=1e-12):
                problems.append(f"{op.name} at {point}: got {block(op, i).tolist()}, "
                                f"forward over reverse {want.tolist()}")
    assert not problems, "\n".join(problems)
