"""where() in reverse mode: the branch not taken does not reach the gradient.

where(c, a, b)'s adjoint goes to the branch taken, but the untaken branch's partials
may be NaN there (sqrt'(-1)), and 0·NaN was NaN: the gradient of
where(x > 0, sqrt(x), 0) was NaN at x <= 0 where its slope is 0. The reverse sweep
masks the contributions that leave a branch (passes/reverse_masks.py). Checked
against SymPy's derivative of the Piecewise (at every point, the boundary included:
the derivative follows the branch taken), forward mode, and, away from the
boundaries, central differences; NumPy, C and the VM; gradients and both
second-order compositions.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jacobian, compile_vjp, passes, to_trace
from exprcompiler.api import BACKENDS
from exprcompiler.passes import reverse
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.passes.reverse_masks import where_exits
from exprcompiler.trace.to_sympy import to_sympy

ALL = sorted(BACKENDS)   # numpy, c (where a compiler is), vm
POINTS = np.array([-4.0, -2.0, -1.0, -0.5, -1e-300, -0.0, 0.0, 1e-300, 0.5, 1.0, 2.0, 4.0, math.inf, -math.inf])

# one variable: NaN-producing branches (sqrt, log, 1/x, pow, arcsin), nested wheres,
# a branch shared with the other side or used outside, the condition inside a branch
ONE = [
    "where(x > 0, sqrt(x), 0)",
    "where(x > 0, 0, sqrt(-x)) + x",
    "where(x > 0, log(x) * x, where(x < -0.5, sqrt(-x - 0.5), 1 / (x - 3)))",
    "where(x >= 1, x ** 1.5 - sqrt(x - 1), x ** 2)",
    "where(x > 0, sqrt(x) + sqrt(x) ** 2, x)",
    "where(abs(x) < 1, arcsin(x), x / 2)",
    "where(x > 0, where(x > 1, log(x - 1), sqrt(x)), exp(x))",
    "where(x > 0, sqrt(x), 0) + where(x < 1, sqrt(1 - x), 0)",
    "where(x > 0, sqrt(x), log(-x))",
    "where(x > 0, sqrt(x) * (x > 1), 2 * x)",
    "where(x > 0, sqrt(x), 0) * sqrt(abs(x))",
    "where(sqrt(x) > 1, sqrt(x), 1)",
]
# two variables: masks reach both inputs' adjoints; a branch's value read by the other
TWO = [
    "where(x > y, sqrt(x - y) * y, log(y - x + 1) * x)",
    "where(x * y > 0, log(x * y), x + y)",
    "where(x > 0, where(y > 0, sqrt(x * y), y), x * sqrt(1 - x))",
    "where(x > 0, sqrt(x) + y, 0) + sqrt(x + 5) * where(y > 0, x * y, 0)",
    "where(x > 0, sqrt(x) + y, 0) + where(y > 0, sqrt(x) * y, 0)",
]


def exact_slopes(expr: str, names, points) -> np.ndarray:
    """SymPy's derivative of the Piecewise, evaluated at each point (the branch
    taken there); points where SymPy's value is not a finite real: NaN."""
    trace = to_trace(expr)
    f = to_sympy(trace)[0]
    symbols = [sympy.Symbol(n, real=True) for n in names]   # (to_sympy's)
    out = np.full((len(points), len(names)), np.nan)
    for k, name in enumerate(names):
        d = sympy.diff(f, symbols[k])
        for p, point in enumerate(points):
            try:
                v = d.subs(dict(zip(symbols, map(sympy.Float, point))))
                v = complex(v.evalf()) if v.is_number and v.is_finite else complex(math.nan)
            except TypeError:   # (a comparison of a complex number: the formula's domain left)
                continue
            if v.imag == 0:
                out[p, k] = v.real
    return out


def grad_of(expr: str, backend: str, xs, mode: str = "reverse") -> np.ndarray:
    with np.errstate(all="ignore"):
        got = compile_grad(expr, backend=backend, mode=mode)(*xs)[1]
    return np.stack([np.asarray(g, dtype=float) * np.ones(len(xs[0])) for g in got], axis=1)


def agree(got, want) -> np.ndarray:
    """Where `want` is a finite number, `got` is close to it."""
    finite = np.isfinite(want)
    return ~finite | np.isclose(got, want, rtol=1e-12, atol=1e-300)


def test_the_reported_case_is_zero_where_the_branch_is_not_taken():
    got = compile_grad("where(x > 0, sqrt(x), 0)")(np.array([-1.0, 0.0, 4.0]))[1][0]
    assert got.tolist() == [0.0, 0.0, 0.25]


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("expr", ONE)
def test_one_variable_gradient_is_sympys_piecewise_slope(expr, backend):
    finite_points = POINTS[np.isfinite(POINTS)]
    want = exact_slopes(expr, ["x"], [(p,) for p in finite_points])
    got = grad_of(expr, backend, [finite_points])
    ok = agree(got, want)
    assert ok.all(), f"{expr}: at {finite_points[~ok[:, 0]]}: got {got[~ok]} for {want[~ok]}"
    # every point, infinities included: where forward mode's slope is a number (it
    # selects the tangent, so its untaken branch never mixes in), reverse mode's is it
    fwd = grad_of(expr, backend, [POINTS], mode="forward")
    rev = grad_of(expr, backend, [POINTS])
    assert agree(rev, fwd).all(), f"{expr}: reverse {rev.ravel()}, forward {fwd.ravel()}"


@pytest.mark.parametrize("expr", ONE + TWO)
def test_gradient_is_central_differences_away_from_the_boundaries(expr):
    rng = np.random.default_rng(7)
    names = ["x"] if expr in ONE else ["x", "y"]
    xs = [rng.uniform(-3, 3, 200) for _ in names]
    f = compile_grad(expr)
    with np.errstate(all="ignore"):
        got = np.stack(f(*xs)[1], axis=1)
        for k in range(len(names)):
            h = 1e-6
            up = [x + h * (j == k) for j, x in enumerate(xs)]
            down = [x - h * (j == k) for j, x in enumerate(xs)]
            fd = (f(*up)[0] - f(*down)[0]) / (2 * h)
            # points whose neighbourhood holds a boundary or a pole: the difference lies
            near = ~np.isfinite(fd) | (np.abs(fd) > 1e4)
            near |= np.abs((f(*up)[0] + f(*down)[0]) / 2 - f(*xs)[0]) > 1e-6
            assert np.isfinite(got[:, k][~near]).all()
            assert np.allclose(got[~near, k], fd[~near], rtol=1e-5, atol=1e-6), expr
            assert (~near).sum() > 100


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("expr", TWO)
def test_two_variables_gradient_is_sympys_and_the_backends_agree(expr, backend):
    grid = [(x, y) for x in (-2.0, -0.5, 0.0, 0.5, 2.0) for y in (-1.0, 0.0, 0.5, 3.0)]
    xs = [np.array([p[0] for p in grid]), np.array([p[1] for p in grid])]
    want = exact_slopes(expr, ["x", "y"], grid)
    got = grad_of(expr, backend, xs)
    ok = agree(got, want)
    assert ok.all(), f"{expr}: got {got[~ok]} for {want[~ok]}"
    assert np.allclose(got, grad_of(expr, "numpy", xs), rtol=1e-14, atol=0, equal_nan=True)


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("expr", ["where(x > 0, sqrt(x) * y, y ** 2)", "where(x > y, log(x - y) * x, x * y ** 3)"])
def test_hessians_both_compositions_are_sympys(expr, backend):
    grid = [(x, y) for x in (-2.0, -0.5, 0.5, 2.0) for y in (-1.0, 0.5, 3.0)]
    xs = [np.array([p[0] for p in grid]), np.array([p[1] for p in grid])]
    f = to_sympy(to_trace(expr))[0]
    x, y = sympy.symbols("x y", real=True)
    want = np.array([[[float(sympy.diff(f, a, b).subs({x: p[0], y: p[1]}).evalf()) for b in (x, y)] for a in (x, y)]
                     for p in grid])
    with np.errstate(all="ignore"):
        forward_over_reverse = compile_hessian(expr, backend=backend)(*xs)[2]
        rof = compile_vjp(passes.grad_forward(to_trace(expr)), backend=backend)
        inputs = {"x": xs[0], "y": xs[1], "f_bar": 0.0}
        rows = []
        for k in range(2):
            seed = {"x_bar_bar": float(k == 0), "y_bar_bar": float(k == 1)}
            got = rof(*({**inputs, **seed}.get(name) for name in rof.inputs))[1]
            rows.append(np.stack([np.broadcast_to(g, xs[0].shape) for g in got[:2]], axis=1))
    reverse_over_forward = np.stack(rows, axis=1)
    assert np.allclose(forward_over_reverse, want, rtol=1e-12), expr
    assert np.allclose(reverse_over_forward, want, rtol=1e-12), expr


def test_the_masks_sit_where_contributions_leave_a_branch():
    """sqrt's contribution to x is masked once; the top where passes the seed as it is."""
    text = str(passes.grad_reverse(to_trace("where(x > 0, sqrt(x), 0)")))
    assert text.count("where(") == 2   # the primal's and the one mask
    assert "v̄_2 = v̄_3\n" in text and "v̄_0 = where(v_1, v̄_2 / (2 · v_2), 0)" in text
    # a branch read outside it too: where's own mask, as before
    both = str(passes.grad_reverse(to_trace("where(x > 0, sqrt(x), 0) + sqrt(x)")))
    assert "v̄_2 = v̄_2 + where(v_1, v̄_3, 0)" in both and both.count("where(") == 2


def test_traces_without_a_masked_branch_are_not_changed():
    for expr in ["x * y + sin(x)", "where(x > 0, x, y)", "where(x > 0, x + y, 0) + x"]:
        t = to_trace(expr)
        assert where_exits(t.instrs, reverse.active_set(t, [v for _, v in t.inputs]), {t.outputs[0][1]}) is None


def test_bulk_sweep_masks_wheres_as_the_per_instruction_sweep(monkeypatch):
    masked = to_trace("where(x > 0, sqrt(x) * y, 0) + x * y")
    plain = to_trace("where(x > 0, x * y, 0) + x * y")
    # (the bulk sweep masks the edges itself, to the same trace: tests/test_where_bulk.py)
    assert str(grad_reverse_bulk(masked)) == str(passes.grad_reverse(masked))
    monkeypatch.setattr(reverse, "_BULK_FROM", 0)
    xs = [np.array([-1.0, 0.0, 2.0]), np.array([1.0, -1.0, 3.0])]
    with np.errstate(all="ignore"):
        got = compile_grad(masked)(*xs)[1]
    assert np.array_equal(np.stack(got), [[1.0, -1.0, 3 / (2 * 2 ** 0.5) + 3.0], [-1.0, 0.0, 2 ** 0.5 + 2]])
    # a where with no masked edge: still swept in bulk, to the same trace
    monkeypatch.setattr(reverse, "_BULK_FROM", math.inf)
    assert str(grad_reverse_bulk(plain)) == str(passes.grad_reverse(plain))


def test_tensor_traces_are_masked_too():
    """(tests/test_where_tensor.py holds them to forward mode)"""
    t = to_trace("where(x > 0, sqrt(x), 0)", shapes={"x": (3,)})
    assert where_exits(t.instrs, reverse.active_set(t, [0]), {t.outputs[0][1]}) == {
        4: {1: (True, ())}, 3: {0: (False, ((((2, True),),),))}}


# -- random formulas: a where of NaN-producing branches, nested and shared -----------

_BRANCH = ["sqrt({a})", "log({a})", "1 / ({a})", "({a}) ** 0.5", "arccos({a})", "sqrt({a}) * ({b})", "({a}) * ({b})",
           "exp({a})"]
# A leaf may get its own constant (@, numbered after drawing): values shared by
# several wheres' branches and values read in one only both come.
_LEAF = ["x", "y", "(x + @)", "(y - 0.5)", "(@ - y)", "(x * y + @)", "(-x)", "2"]


_CONDITIONS = ["{a} > 0", "{a} < {b}", "{a} >= 1", "abs({a}) < 1"]


@st.composite
def formulas(draw, depth=3, leaves=tuple(_LEAF), conditions=tuple(_CONDITIONS)):
    """Nested wheres of NaN-producing branches over `leaves` (test_where_tensor draws
    vectors and a scalar with the same grammar)."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    kind = draw(st.integers(0, 2))
    a, b = (draw(formulas(depth - 1, leaves, conditions)) for _ in range(2))
    if kind == 0:
        return draw(st.sampled_from(_BRANCH)).format(a=a, b=b)
    cond = draw(st.sampled_from(conditions)).format(a=a, b=b)
    c, d = (draw(formulas(depth - 1, leaves, conditions)) for _ in range(2))
    if kind == 1:
        return f"where({cond}, {c}, {d})"
    return f"where({cond}, {c}, {d}) + {c}"   # (a branch read outside too)


@settings(max_examples=40, deadline=None)
@given(formulas())
def test_random_wheres_reverse_is_forward_and_backends_agree(expr):
    numbers = iter(range(1, 10 ** 6))
    expr = re.sub("@", lambda _: f"{next(numbers) / 64}", expr)
    if not re.search(r"\bx\b", expr) or not re.search(r"\by\b", expr):
        expr = f"{expr} + x * y"
    grid = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    xs = [np.repeat(grid, len(grid)), np.tile(grid, len(grid))]
    fwd = grad_of(expr, "numpy", xs, mode="forward")
    rev = grad_of(expr, "numpy", xs)
    finite = np.isfinite(fwd)
    assert np.allclose(rev[finite], fwd[finite], rtol=1e-12, atol=1e-300), expr
    assert np.allclose(grad_of(expr, "vm", xs), rev, rtol=1e-9, atol=1e-12, equal_nan=True), expr


def test_general_vjp_path_builds_the_scalar_paths_trace(monkeypatch):
    expr = "where(x > 0, log(x) * y, where(x < -0.5, sqrt(-x - 0.5), 1 / (x - 3))) + where(y > 1, sqrt(y - 1), y)"
    scalar = str(passes.grad_reverse(to_trace(expr)))
    monkeypatch.setattr(reverse, "_SCALAR_SWEEP", False)
    assert str(passes.grad_reverse(to_trace(expr))) == scalar


@pytest.mark.parametrize("backend", ALL)
def test_reverse_jacobian_and_hvp_mask_too(backend):
    from exprcompiler import compile_hvp
    xs = np.array([-1.0, -0.0, 0.0, 4.0])
    with np.errstate(all="ignore"):
        jac = compile_jacobian("where(x > 0, sqrt(x), 0); where(x < 1, x * log(1 - x), x)", mode="reverse",
                               backend=backend)(xs)[1]
        hvp = compile_hvp("where(x > 0, x * sqrt(x), 0)", backend=backend)(xs, 1.0)[2][0]
    assert jac[:, 0, 0].tolist() == [0.0, 0.0, 0.0, 0.25]
    assert np.allclose(jac[:, 1, 0], [math.log(2) + 0.5, 0.0, 0.0, 1.0])
    assert hvp.tolist() == [0.0, 0.0, 0.0, 0.375]


def test_a_value_shared_by_two_conditions_branches_is_masked_by_either():
    """sqrt(x) is read in the branches of wheres of two conditions: its contribution
    to x is masked by x > 0 or x < -1 (one mask, two wheres)."""
    expr = "where(x > 0, sqrt(x), 0) + where(x < -1, 2 * sqrt(x), 0)"
    with np.errstate(all="ignore"):
        got = compile_grad(expr)(np.array([-2.0, -0.5, -0.0, 0.0, 4.0]))[1][0]
    assert np.array_equal(got, [math.nan, 0.0, 0.0, 0.0, 0.25], equal_nan=True)   # (sqrt(-2): the branch taken)
    text = str(passes.grad_reverse(to_trace(expr)))
    assert "= where(v_4, t_1, where(v_1, t_1, 0))" in text


@pytest.mark.parametrize("order", ["best", "markowitz", "forward", "reverse"])
def test_vertex_elimination_masks_the_partials_inside_a_branch(order):
    """Each path's product holds the where's partial 0 where its branch is not taken,
    and the branch's partials masked to 0 there (not sqrt'(-1) = NaN)."""
    expr = "where(x > 0, sin(sqrt(x) * y) * y, 0) + y * x; where(x > 0, cos(sqrt(x) * y) * y, log(-x)) + x * y"
    trace = to_trace(expr)
    xs = [np.array([-1.0, -0.0, 0.0, 4.0]), np.array([1.0, 2.0, -2.0, 3.0])]
    with np.errstate(all="ignore"):
        want = compile_jacobian(expr, mode="forward")(*xs)[1]
        out = compile_expr(passes.jacobian(trace, ["x", "y"], "elimination", order=order))(*xs)
    # (outputs: the two values, then row 0's entries, then row 1's)
    got = np.stack([np.stack(out[2:4], axis=-1), np.stack(out[4:6], axis=-1)], axis=1)
    assert np.allclose(got, want, rtol=1e-14, equal_nan=True)
    assert np.isfinite(want[[0, 3]]).all()

