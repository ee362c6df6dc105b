"""Jacobians by vertex elimination (passes/elimination.py): the same trace as the
tangent and adjoint sweeps give (outputs, names, numbers), on hand cases with the
edge cases of the graph (outputs used by other outputs, outputs that are inputs or
constants, repeated outputs, absent `wrt` inputs, an argument used twice), on
random DAGs from hypothesis, against sympy.diff, finite differences and SymPy's
exact Jacobian of the 3-link pendulum; compile_jacobian(mode="elimination"), and
mode="auto", which compiles elimination where its trace is smaller than the sweeps'."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings

from exprcompiler import compile_jacobian, passes, randexpr, to_trace
from exprcompiler.api import with_wrt
from exprcompiler.jacobians import auto_jacobian, choose_mode, operations
from exprcompiler.passes.elimination import ORDERS
from exprcompiler.trace import interpret, verify
from exprcompiler.trace.to_sympy import to_sympy
from conftest import examples
from test_random import SETTINGS, build, close, points, recipes, sample
from test_second_order import TALL, WIDE

HAVE_CC = bool(shutil.which("cc") or shutil.which("gcc"))


def jacobian_at(trace, env, mode, wrt=None, **kw):
    """(the Jacobian trace, its values, its Jacobian entries) of passes.jacobian at `env`."""
    jac = passes.jacobian(trace, wrt, mode, **kw)
    verify(jac)
    m = len(trace.outputs)
    got = np.array([np.asarray(v, dtype=float) for v in interpret(jac, env)], dtype=float)
    return jac, got[:m], got[m:]


HAND = {
    "products": "x*y; sin(x)*y; x/y",
    "an output used by another": "a = x*y\na, a + sin(a)*a",
    "an output that is an input": "x; x*y",
    "a constant output": "2.5; x*exp(y)",
    "a repeated output": "a = x*y\na, a",
    "an argument used twice": "x*x + y**2; x*(x - y)",
    "signs and constant factors": "-(3*x*y)/7 + 2*sin(-x); cos(x)*(-y)/300",
    "a sum of products": "u = y**2\nu*(cos(x)*sin(y) - cos(y)*sin(x)), u*cos(x)",
}


@pytest.mark.parametrize("text", HAND.values(), ids=HAND.keys())
@pytest.mark.parametrize("order", ORDERS)
def test_hand_cases_match_the_sweeps_and_sympy(text, order):
    trace = to_trace(text)
    env = {"x": 0.7, "y": -1.3}
    elim, values, rows = jacobian_at(trace, env, "elimination", order=order)
    for mode in ("forward", "reverse"):
        sweep, v, r = jacobian_at(trace, env, mode)
        assert elim.output_names == sweep.output_names
        np.testing.assert_array_equal(values, v)
        np.testing.assert_allclose(rows, r, rtol=1e-14, atol=1e-15)
    xs = sp.symbols("x y", real=True)   # as to_sympy names the inputs
    subs = {s: sp.Float(env[s.name], 30) for s in xs}
    want = [float(sp.diff(e, x).xreplace(subs)) for e in to_sympy(trace) for x in xs]
    np.testing.assert_allclose(rows, want, rtol=1e-13, atol=1e-15)


def test_inputs_that_do_not_occur_get_zero_columns():
    J = compile_jacobian("x*y; x", wrt=["x", "y", "z"], mode="elimination")
    values, jac = J(1.5, 2.0, 3.0)
    np.testing.assert_array_equal(jac, [[2.0, 1.5, 0.0], [1.0, 0.0, 0.0]])
    assert J.mode == "elimination" and J.trace.output_names[2:5] == ("y1.d.x", "y1.d.y", "y1.d.z")


@settings(max_examples=examples(40), **SETTINGS)
@given(recipe=recipes(max_steps=20, multi_output=True), rng=points)
def test_random_dags_match_forward_and_reverse_mode(recipe, rng):
    trace = build(recipe)
    env = sample(rng, recipe.names)
    sweeps, _, fwd = jacobian_at(trace, env, "forward")
    rev = jacobian_at(trace, env, "reverse")[2]
    for order in ORDERS:
        _, _, elim = jacobian_at(trace, env, "elimination", order=order)
        assert close(elim, fwd, 1e-12) and close(elim, rev, 1e-12), (order, elim, fwd)
    # mode="auto": the same numbers, and never more operations than the rule's sweeps
    mode, auto = auto_jacobian(trace, trace.input_names)
    verify(auto)
    got = np.array([np.asarray(v, dtype=float) for v in interpret(auto, env)], dtype=float)[len(trace.outputs):]
    assert close(got, fwd, 1e-12) and close(got, rev, 1e-12), (mode, got, fwd)
    rule = choose_mode(len(trace.inputs), len(trace.outputs))
    assert operations(auto) <= operations(passes.jacobian(trace, None, rule))
    assert auto.output_names == sweeps.output_names


@pytest.mark.parametrize("text, mode", [
    ("x*y; sin(x)", "forward"),            # elimination has as many operations: the sweeps stay
    ("x*x; sin(x)", "forward"),            # one variable: elimination is not tried
    ("x*y*z; x + y*z; z*x", "forward"),
    ("log(1 + exp(x*y)) + x*z; x*y*z + sin(y)", "reverse"),   # n = 3 > m = 2
])
def test_auto_keeps_the_sweeps_unless_elimination_is_smaller(text, mode):
    J = compile_jacobian(text, stable=True)
    assert J.mode == mode and J.rewrites == compile_jacobian(text, stable=True, mode=mode).rewrites
    primal = to_trace(text)
    elim = passes.jacobian(primal, None, "elimination", order="forward")
    assert operations(elim) >= operations(passes.jacobian(primal, None, mode))
    assert J.mode == auto_jacobian(primal, primal.input_names)[0]


@pytest.mark.parametrize("expr, m", [(TALL, 50), (WIDE, 2)], ids=["tall", "wide"])
def test_tall_and_wide_shapes_need_fewer_operations_than_either_sweep(expr, m):
    trace = to_trace(expr)
    env = {x: 0.1 * (k + 1) for k, x in enumerate(trace.input_names)}
    elim, _, rows = jacobian_at(trace, env, "elimination")
    sizes = {mode: operations(passes.jacobian(trace, None, mode)) for mode in ("forward", "reverse")}
    assert operations(elim) < min(sizes.values()), (operations(elim), sizes)
    _, _, fwd = jacobian_at(trace, env, "forward")
    np.testing.assert_allclose(rows, fwd, rtol=1e-13, atol=1e-15)


def test_a_random_program_against_finite_differences():
    text = randexpr.random_program(60, 4, seed=3).rsplit("\n", 1)[0] + "\nt60, t59 * t58, t40"
    J = compile_jacobian(text, mode="elimination")
    rng = np.random.default_rng(0)
    point = {x: rng.uniform(-1, 1) for x in J.inputs}
    _, jac = J(**point)
    h = 1e-6
    for j, x in enumerate(J.wrt):
        up, down = J(**{**point, x: point[x] + h})[0], J(**{**point, x: point[x] - h})[0]
        np.testing.assert_allclose(jac[:, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_three_link_pendulum_matches_sympys_exact_jacobian():
    """mode="elimination" and mode="auto" (which picks elimination in forward order here,
    the same trace as the best order's, so one C build serves both) against SymPy's
    exact Jacobian and the sweeps, on both backends."""
    from exprcompiler.bench.mechanics import exact, pendulum, random_states
    model = pendulum(3)
    X = random_states(3, 4)
    cols = {name: X[:, k] for k, name in enumerate(model.names)}
    want = exact(3, X)
    sweeps = {mode: compile_jacobian(list(model.exprs), wrt=model.names, mode=mode)(**cols)[1]
              for mode in ("forward", "reverse")}
    backends = ("numpy", "c") if HAVE_CC else ("numpy",)
    for backend in backends:
        for mode in ("elimination", "auto"):
            J = compile_jacobian(list(model.exprs), wrt=model.names, mode=mode, backend=backend)
            assert J.mode == "elimination"
            values, jac = J(**cols)
            np.testing.assert_allclose(np.hstack([values, jac.reshape(len(X), -1)]), want, rtol=1e-12, atol=1e-14)
            for sweep in sweeps.values():
                np.testing.assert_allclose(jac, sweep, rtol=1e-13, atol=1e-14)
    primal, wrt = with_wrt(to_trace(list(model.exprs)), model.names)   # q0 does not occur
    assert str(J.trace) == str(passes.jacobian(primal, wrt, "elimination", order="forward"))
    sizes = {mode: operations(passes.jacobian(primal, wrt, mode)) for mode in ("forward", "reverse")}
    assert operations(J.trace) < min(sizes.values()), (operations(J.trace), sizes)


def test_the_trace_is_deterministic_and_has_no_recursion():
    deep = randexpr.deep_expression(1500)
    text = f"a = {deep}\na * x, a + y"   # a 1500-long chain that both outputs use
    first, second = (str(passes.jacobian(to_trace(text), None, "elimination")) for _ in range(2))
    assert first == second


def test_what_elimination_refuses():
    with pytest.raises(ValueError, match="'elimination'"):
        compile_jacobian("x*y; x", mode="elimination!")
    with pytest.raises(ValueError, match="sparse=True"):
        compile_jacobian("x*y; x", mode="elimination", sparse=True)
    with pytest.raises(NotImplementedError, match="scalar"):
        compile_jacobian("A @ x", wrt=["x"], shapes={"A": (3, 3), "x": (3,)}, mode="elimination")
    with pytest.raises(ValueError, match="elimination order"):
        passes.jacobian(to_trace("x*y; x"), None, "elimination", order="random")
    with pytest.raises(NotImplementedError, match="scalar"):
        passes.jacobian(to_trace("sum(v*v), v[0]", shapes={"v": (3,)}), None, "elimination")


@pytest.mark.parametrize("exprs, x", [
    (["1e-200*exp(x) + 1e200*x", "x*y"], 1.0),      # t/s would overflow: 1e-200*(e + inf)
    (["(1e200*x)*(1e200*y) + x", "x*y"], 1e-200),   # s*t would overflow where the sweeps' products do not
    (["(1e-150*x)*(1e-150*y)*1e300 + 2*x", "x*y"], 1.0),
    (["1e300*x*1e-300*y + 3*x", "0*x + y"], 1.0),
])
def test_scales_of_extreme_size_stay_on_their_instructions(exprs, x):
    """Constant factors ride on the edges only within elimination.BOUND: taking out
    1e-200 or 1e200 would reassociate the products into an overflow the sweeps do not have."""
    want = compile_jacobian(exprs, wrt=["x", "y"], mode="reverse")(x, 2.0)[1]
    got = compile_jacobian(exprs, wrt=["x", "y"], mode="elimination")(x, 2.0)[1]
    np.testing.assert_array_equal(got, want)
