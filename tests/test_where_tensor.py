"""where() in reverse mode on tensor traces: the branch not taken does not reach the gradient.

sum(where(x > 0, sqrt(x), 0)) of a vector x had gradient NaN at x <= 0 (0·NaN of
sqrt's partial), where forward mode gives 0. The reverse sweep masks the
contributions that leave a branch (passes/reverse_masks.py) at the shape of the
operation they leave, before the sum down to the argument's shape, and a value
is in a branch's region only where its lanes line up with the condition's.
Checked against forward mode (the reference: its tangents go through where's own
select), central differences away from the boundaries, and SymPy's Piecewise for
one element; NumPy and C (the VM runs scalars only); gradients, Jacobians, HVPs
and Hessians in both compositions (forward over reverse, reverse over forward).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from test_where_reverse import formulas as where_formulas

from exprcompiler import compile_grad, compile_hessian, compile_hvp, compile_jacobian, compile_vjp, passes, to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse
from exprcompiler.passes.reverse_masks import where_exits

TENSOR = sorted(b for b in BACKENDS if b != "vm")   # numpy, and c where a compiler is

V = np.array([-4.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 4.0])
W = np.array([0.5, -2.0, 3.0, 1.5, -1.0, 2.0, -0.25, 1.0, 4.0])
M = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0], [3.0, -1.0, 1.0, -0.0, 0.25]])
ROW = np.array([-1.0, 0.5, -0.25, 2.0, 1.0])
N = len(V)

# (formula, shapes, inputs): a condition of each shape against branches of each shape
CASES = [
    # vectors: NaN-producing branches, nested, shared, masks inside reductions' arguments
    ("sum(where(x > 0, sqrt(x), 0))", {"x": (N,)}, {"x": V}),
    ("sum(where(x > 0, log(x), 0))", {"x": (N,)}, {"x": V}),
    ("where(x > 0, 1 / x, 0) @ w", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    ("w @ where(x > 0, x * log(x), x)", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    ("sum(where(x > 0, where(x > 1, log(x - 1), sqrt(x)), exp(x)))", {"x": (N,)}, {"x": V}),
    ("sum(where(x > 0, sqrt(x) * w, w ** 2))", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    ("sum(where(x * w > 0, log(x * w), x + w))", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    ("sum(where(x > 0, sqrt(x), 0) + where(x < -1, 2 * sqrt(-x - 1), 0))", {"x": (N,)}, {"x": V}),
    # union: one value in the branches of two conditions' wheres
    ("sum(where(x > 0, sqrt(x), 0) + where(x > 1, log(x) * sqrt(x), 0))", {"x": (N,)}, {"x": V}),
    ("sum(where(x > 0, sqrt(x) + w, 0) + where(x > 1, sqrt(x) * w, 0))", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    # a reduction, a matmul inside a branch
    ("sum(where(x > 0, sqrt(x) * sum(w * w), 0))", {"x": (N,), "w": (N,)}, {"x": V, "w": W}),
    ("where(s > 0, sum(sqrt(x * s)), 0)", {"x": (N,), "s": ()}, {"x": np.abs(V) + 1, "s": -2.0}),
    ("where(s > 0, sum(sqrt(x * s)), 0)", {"x": (N,), "s": ()}, {"x": np.abs(V) + 1, "s": 3.0}),
    # broadcasting: a scalar condition, vector branches
    ("sum(where(s > 0, sqrt(x * s), x))", {"x": (N,), "s": ()}, {"x": np.abs(V), "s": -1.0}),
    ("sum(where(s > 0, log(s) * x, x ** 2))", {"x": (N,), "s": ()}, {"x": V, "s": -1.0}),
    ("sum(where(s > 0, log(s) * x, x ** 2))", {"x": (N,), "s": ()}, {"x": V, "s": 2.0}),
    # a vector condition, a scalar in the branch: its adjoint sums the masked lanes
    ("sum(where(x > 0, log(x) * s, 0))", {"x": (N,), "s": ()}, {"x": V, "s": 1.5}),
    ("sum(where(x > 0, sqrt(s * x), 0))", {"x": (N,), "s": ()}, {"x": V, "s": 2.0}),
    ("sum(where(x > 0, sqrt(s), 0))", {"x": (N,), "s": ()}, {"x": V, "s": 2.0}),
    ("sum(where(x > 0, sqrt(s), 0))", {"x": (N,), "s": ()}, {"x": -np.abs(V), "s": -2.0}),
    ("sum(where(x > 0, x * log(s), x))", {"x": (N,), "s": ()}, {"x": -np.abs(V), "s": -2.0}),
    # matrices; a condition with more lanes than the branch's argument (a row)
    ("sum(where(A > 0, sqrt(A) * A, 0))", {"A": (2, 5)}, {"A": M}),
    ("sum(where(A > 0, sqrt(A * abs(r)), r))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}),
    ("sum(where(A > 0, log(A + r), 0))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}),
    ("sum(where(r > 0, sqrt((abs(A) + 1) * r), A))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}),
    ("sum(where(A > 0, sqrt(A), 0) @ r)", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}),
    ("sum(where(A @ r > 0, sqrt(A @ r), 0))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}),
    ("sum(where(r > 0, sqrt(r) * (A @ sqrt(abs(r))), 0))", {"A": (5, 5), "r": (5,)},
     {"A": np.outer(ROW, ROW) - 0.5, "r": ROW}),
]
IDS = [f"{k}:{c[0]}" for k, c in enumerate(CASES)]


def gradient(expr, shapes, inputs, mode="reverse", backend="numpy") -> list:
    """The gradient, one array per input in the order of `shapes`."""
    with np.errstate(all="ignore"):
        g = compile_grad(expr, shapes=shapes, mode=mode, backend=backend)
        got = dict(zip(g.wrt, g(**inputs)[1]))
    return [np.asarray(got[name], dtype=float) for name in shapes]


def check_against(got: list, want: list, what: str) -> None:
    """Where the reference is a finite number, `got` is close to it (NaN is not)."""
    for a, b in zip(got, want):
        finite = np.isfinite(b)
        assert np.allclose(a[finite], b[finite], rtol=1e-12, atol=1e-300), (what, a, b)


def test_the_reported_case_is_zero_where_the_branch_is_not_taken():
    for backend in TENSOR:
        got = compile_grad("sum(where(x > 0, sqrt(x), 0))", shapes={"x": (3,)}, backend=backend)(
            np.array([-1.0, 0.0, 4.0]))[1][0]
        assert got.tolist() == [0.0, 0.0, 0.25], backend


@pytest.mark.parametrize("backend", TENSOR)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reverse_gradient_is_forward_modes(case, backend):
    expr, shapes, inputs = case
    forward = gradient(expr, shapes, inputs, "forward")
    assert any(np.isfinite(f).any() for f in forward)
    check_against(gradient(expr, shapes, inputs, "reverse", backend), forward, expr)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_is_central_differences_away_from_the_boundaries(case):
    expr, shapes, inputs = case
    f = compile_grad(expr, shapes=shapes)
    got = gradient(expr, shapes, inputs)
    for name, dg in zip(shapes, got):
        base = np.asarray(inputs[name], dtype=float)
        for k in np.ndindex(base.shape):
            left, right = (_difference(f, inputs, name, k, h) for h in (-1e-6, 1e-6))
            # (a step that crosses a where's boundary, or a kink: one-sided quotients that
            # disagree; only smooth neighbourhoods)
            if np.isfinite(left) and np.isfinite(right) and abs(left - right) <= 1e-4 * (1 + abs(left)):
                central = (left + right) / 2
                assert abs(central - dg[k]) <= 1e-6 * (1 + abs(central)), (expr, name, k, central, dg[k])


def _difference(f, inputs, name, k, h) -> float:
    """(f(x + h·e_k) - f(x)) / h."""
    base = np.asarray(inputs[name], dtype=float)
    step = base.copy()
    step[k] += h
    with np.errstate(all="ignore"):
        return (f(**{**inputs, name: step})[0] - f(**inputs)[0]) / h


def test_one_element_is_sympys_piecewise_slope():
    x = sympy.Symbol("x", real=True)
    f = sympy.Piecewise((sympy.log(x) * x, x > 0), (sympy.sqrt(-x) + 1 / (x - 3), True))
    points = np.array([-2.0, -0.5, 0.5, 3.0])
    got = gradient("sum(where(x > 0, log(x) * x, sqrt(-x) + 1 / (x - 3)))", {"x": (4,)}, {"x": points})[0]
    want = [float(sympy.diff(f, x).subs(x, p)) for p in points]
    assert np.allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("backend", TENSOR)
def test_a_scalars_adjoint_sums_the_lanes_where_its_branch_is_taken(backend):
    x = np.array([-1.0, 2.0, -3.0, 4.0])
    gx, gs = gradient("sum(where(x > 0, log(x) * s, 0))", {"x": (4,), "s": ()}, {"x": x, "s": 3.0}, backend=backend)
    assert gx.tolist() == [0.0, 1.5, 0.0, 0.75]
    assert gs == math.log(2.0) + math.log(4.0)


@pytest.mark.parametrize("backend", TENSOR)
def test_a_value_narrower_than_its_condition_is_masked_where_no_lane_is_taken(backend):
    """sqrt(s) broadcast over x's lanes: where no x > 0, f does not depend on s (slope 0,
    as forward mode gives), though sqrt'(s) is NaN at s < 0; where one is, f is NaN."""
    expr, shapes = "sum(where(x > 0, sqrt(s), 0))", {"x": (3,), "s": ()}
    none, one = np.array([-1.0, 0.0, -4.0]), np.array([-1.0, 0.0, 4.0])
    assert gradient(expr, shapes, {"x": none, "s": -2.0}, backend=backend)[1] == 0.0
    assert gradient(expr, shapes, {"x": one, "s": 4.0}, backend=backend)[1] == 0.25
    assert np.isnan(gradient(expr, shapes, {"x": one, "s": -2.0}, backend=backend)[1])
    assert gradient(expr, shapes, {"x": none, "s": -2.0}, "forward")[1] == 0.0
    # nested, and in two wheres' branches (a union of two narrowed regions)
    for expr in ["sum(where(x > 0, where(x > 1, sqrt(s) * x, log(s)), 0))",
                 "sum(where(x > 0, sqrt(s), 0) + where(x < -5, log(s) * x, 0))"]:
        got = gradient(expr, shapes, {"x": none, "s": -2.0}, backend=backend)
        assert got[0].tolist() == [0.0, 0.0, 0.0] and got[1] == 0.0, expr


@pytest.mark.parametrize("backend", TENSOR)
def test_a_row_narrower_than_a_matrix_condition_is_masked_per_column(backend):
    """r (5,) broadcast over A's rows: a column with no A > 0 adds 0 to r's adjoint
    (column 1, r < 0 there: sqrt'(r) NaN)."""
    r = np.array([-1.0, -0.5, -0.25, 2.0, 1.0])
    got = gradient("sum(where(A > 0, sqrt(r) * 2, 0))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": r},
                   backend=backend)[1]
    rows = (M > 0).sum(axis=0)   # [1, 0, 1, 1, 2]
    with np.errstate(all="ignore"):
        want = np.where(rows > 0, rows / np.sqrt(r), 0.0)
    assert np.array_equal(got, want, equal_nan=True)   # (NaN where r < 0 is taken: f is NaN)
    assert got[1] == 0.0 and np.isnan(got[0])


@pytest.mark.parametrize("backend", TENSOR)
def test_a_condition_with_more_lanes_masks_before_the_sum_to_the_argument(backend):
    """r (5,) broadcast over A's rows (2, 5): r's adjoint sums, per column, the rows
    where A > 0; a row where A <= 0 has log(A + r) NaN and adds 0."""
    got = gradient("sum(where(A > 0, log(A + r), 0))", {"A": (2, 5), "r": (5,)}, {"A": M, "r": ROW}, backend=backend)
    taken = M > 0
    with np.errstate(all="ignore"):
        slope = np.where(taken, 1 / (M + ROW), 0.0)
    assert got[0].tolist() == slope.tolist()
    assert np.array_equal(got[1], slope.sum(axis=0))


def test_a_tensor_trace_has_masked_exits_and_masks_sit_before_the_sum():
    t = to_trace("sum(where(A > 0, log(A + r), 0))", shapes={"A": (2, 5), "r": (5,)})
    assert where_exits(t.instrs, reverse.active_set(t, [0, 1]), {t.outputs[0][1]}) is not None
    text = str(passes.grad_reverse(t))
    # the mask of the adjoint that leaves log(A + r) for r is a (2, 5) where, summed to (5,) after it
    lines = text.splitlines()
    masked = [k for k, line in enumerate(lines) if "where(" in line and ": (2, 5)" in line]
    summed = [k for k, line in enumerate(lines) if "sum_to" in line or ("sum(" in line and ": (5,)" in line)]
    assert masked and summed and min(masked) < max(summed), text


@pytest.mark.parametrize("backend", TENSOR)
def test_jacobians_mask_in_both_modes(backend):
    x = np.array([-1.0, -0.0, 0.0, 4.0])
    for mode in ("reverse", "forward"):
        with np.errstate(all="ignore"):
            jac = compile_jacobian("where(x > 0, sqrt(x), 0)", shapes={"x": (4,)}, mode=mode, backend=backend)(x)[1]
        assert jac.tolist() == np.diag([0.0, 0.0, 0.0, 0.25]).tolist(), mode
    with np.errstate(all="ignore"):
        jac = compile_jacobian("where(x > 0, sqrt(x), 0) * s", shapes={"x": (4,), "s": ()}, mode="reverse",
                               backend=backend)(x=x, s=2.0)[1]
    assert jac[:, 1:].tolist() == np.diag([0.0, 0.0, 0.0, 0.5]).tolist()   # (columns: s, then x)
    assert jac[:, 0].tolist() == [0.0, 0.0, 0.0, 2.0]


HESSIAN_CASES = [
    ("sum(where(x > 0, x * sqrt(x), 0))", {"x": V}),
    ("sum(where(x > 0, log(x) * w, w ** 3))", {"x": V, "w": W}),
    ("sum(where(x > 0, sqrt(x), 0) + where(x > 2, x * sqrt(x), 0))", {"x": V}),
    ("where(x > 0, 1 / x, 0) @ (w * w)", {"x": V, "w": W}),
]


def _reverse_over_forward(expr, shapes, inputs, backend, names) -> np.ndarray:
    """The Hessian column by column: the VJP of the JVP's tangent output."""
    trace = passes.jvp(to_trace(expr, shapes=shapes))
    rof = compile_vjp(trace, wrt=names, backend=backend)
    columns = []
    for name in names:
        for k in range(N):
            seed = {f"{n}.dot": np.zeros(N) for n in names}
            seed[f"{name}.dot"][k] = 1.0
            values = {**inputs, **seed}
            cts = {n: 0.0 for n in rof.inputs if n not in values}
            dot_bar = [n for n in cts if "dot" in n]
            cts[dot_bar[0]] = 1.0
            with np.errstate(all="ignore"):
                got = rof(*({**values, **cts}[n] for n in rof.inputs))[1]
            columns.append(np.concatenate([np.asarray(g, dtype=float) for g in got]))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("backend", TENSOR)
@pytest.mark.parametrize("case", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_hessians_both_compositions_agree_with_forward_differences(case, backend):
    expr, inputs = case
    shapes = {n: (N,) for n in inputs}
    with np.errstate(all="ignore"):
        hessian = compile_hessian(expr, shapes=shapes, backend=backend)
        hess = np.asarray(hessian(**inputs)[2])
    names = list(hessian.wrt)
    shapes = {n: shapes[n] for n in names}
    rof = _reverse_over_forward(expr, shapes, inputs, backend, names)
    assert np.all(np.isfinite(hess)) and np.all(np.isfinite(rof)), expr
    assert np.allclose(rof, hess, rtol=1e-12, atol=1e-300), expr
    # the reference: differences of forward mode's gradient, where they are smooth
    h = 1e-6
    for col, (name, k) in enumerate((n, k) for n in names for k in range(N)):
        step = {**inputs, name: inputs[name].copy()}
        step[name][k] += h
        back = {**inputs, name: inputs[name].copy()}
        back[name][k] -= h
        at, up, down = (np.concatenate(gradient(expr, shapes, p, "forward")) for p in (inputs, step, back))
        right, left = (up - at) / h, (at - down) / h
        smooth = np.abs(right - left) <= 1e-4 * (1 + np.abs(right))
        assert np.allclose(hess[:, col][smooth], ((right + left) / 2)[smooth], rtol=1e-6, atol=1e-6), (expr, col)


@pytest.mark.parametrize("backend", TENSOR)
def test_hessian_of_a_scalar_narrower_than_its_condition(backend):
    """f = sqrt(s)·sum of x² over x > 0: all 0 where no x > 0 (s < 0: sqrt'' NaN)."""
    hessian = compile_hessian("sum(where(x > 0, sqrt(s) * x * x, 0))", shapes={"x": (3,), "s": ()}, backend=backend)
    assert hessian.wrt == ("s", "x")
    with np.errstate(all="ignore"):
        _, grad, hess = hessian(x=np.array([-1.0, 0.0, -3.0]), s=-2.0)
    assert grad.tolist() == [0.0] * 4 and hess.tolist() == [[0.0] * 4] * 4
    _, grad, hess = hessian(x=np.array([-1.0, 0.0, 3.0]), s=4.0)
    assert grad.tolist() == [2.25, 0.0, 0.0, 12.0]
    assert hess.tolist() == [[-0.28125, 0.0, 0.0, 1.5], [0.0] * 4, [0.0] * 4, [1.5, 0.0, 0.0, 4.0]]


@pytest.mark.parametrize("backend", TENSOR)
def test_hvp_masks_too(backend):
    x = np.array([-1.0, -0.0, 0.0, 4.0])
    with np.errstate(all="ignore"):
        out = compile_hvp("sum(where(x > 0, x * sqrt(x), 0))", shapes={"x": (4,)}, backend=backend)(x, np.ones(4))
    assert out[1][0].tolist() == [0.0, 0.0, 0.0, 3.0]
    assert out[2][0].tolist() == [0.0, 0.0, 0.0, 0.375]


def test_general_vjp_path_builds_the_scalar_paths_trace(monkeypatch):
    """On scalars, the tensor path of the masks (the VJP, summed to shape) builds
    the trace the partials' path builds."""
    expr = "where(x > 0, log(x) * y, where(x < -0.5, sqrt(-x - 0.5), 1 / (x - 3))) + where(y > 1, sqrt(y - 1), y)"
    scalar = str(passes.grad_reverse(to_trace(expr)))
    monkeypatch.setattr(reverse, "_SCALAR_SWEEP", False)
    assert str(passes.grad_reverse(to_trace(expr))) == scalar


# -- random formulas over vectors and a scalar against forward mode ---------------------

# vectors, and the scalar s alone too (narrower than a vector condition: its branch's
# values are masked by "some lane taken", reverse_masks' narrowed regions)
_LEAF = ("x", "y", "(x + @)", "(y - 0.5)", "(@ - y)", "(x * y + @)", "(-x)", "(s * x)", "(x - s)", "(y + 2)", "s",
         "(s - 0.5)")
_CONDITIONS = ("{a} > 0", "{a} < {b}", "abs({a}) < 1", "s > @", "s < 0.5")


def formulas(depth=3):
    """test_where_reverse's grammar of nested wheres, over vectors and a scalar."""
    return where_formulas(depth, _LEAF, _CONDITIONS)


@settings(max_examples=60, deadline=None)
@given(formulas(), st.sampled_from([-1.0, 0.25, 2.0]), st.booleans())
def test_random_tensor_wheres_reverse_is_forward(expr, s, weighted):
    """sum(f) or w @ f of an elementwise f of vectors x, y and a scalar s: each lane's
    slope is that of f on scalars at the lane's point (forward mode over a batch of
    points: a NaN lane stays in its lane, where a tensor's forward sweep spreads it)."""
    numbers = iter(range(1, 10 ** 6))
    expr = re.sub("@", lambda _: f"{next(numbers) / 64}", expr)
    if not re.search(r"\bx\b", expr):
        expr = f"{expr} + x * y"
    grid = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    x, y = np.repeat(grid, len(grid)), np.tile(grid, len(grid))
    w = np.linspace(-1.0, 1.0, len(x)) if weighted else np.ones(len(x))
    names = [n for n in ("s", "x", "y") if re.search(rf"\b{n}\b", expr)]
    values = {"x": x, "y": y, "s": s}
    with np.errstate(all="ignore"):
        lanes = compile_grad(expr, wrt=names, mode="forward")
        slopes = dict(zip(lanes.wrt, lanes(**{n: values[n] for n in lanes.inputs})[1]))
    tensor = f"w @ ({expr})" if weighted else f"sum({expr})"
    shapes = {**{n: (() if n == "s" else (len(x),)) for n in names}, **({"w": (len(x),)} if weighted else {})}
    inputs = {**{n: values[n] for n in names}, **({"w": w} if weighted else {})}
    got = dict(zip(shapes, gradient(tensor, shapes, inputs)))
    for n in names:
        with np.errstate(all="ignore"):
            want = w * np.broadcast_to(slopes[n], x.shape)
            scale = np.abs(w) * (1 + np.abs(want))   # (terms that cancel round apart)
            if n == "s":   # (a sum: to the rounding of its terms, in either order)
                want, scale = want.sum(), scale.sum()
        finite = np.isfinite(want)
        with np.errstate(all="ignore"):
            error = np.abs(got[n] - want)
        assert np.all(error[finite] <= 1e-11 * scale[finite] + 1e-300), (tensor, n, got[n], want)
