"""One parametrized suite over the op table: every op's derivatives against central
finite differences and sympy.diff, in both modes, at sampled and edge points; the
dot-product test ties forward and reverse mode together."""

import math

import numpy as np
import pytest
import sympy

from exprcompiler import compile_expr, compile_grad, compile_jvp, compile_vjp, ops, passes
from exprcompiler.backends.numpy_backend import SPELLING
from exprcompiler.trace import interpret, verify
from exprcompiler.trace.ir import Builder, trace_from_builder
from exprcompiler.trace.to_sympy import to_sympy

DIFFERENTIABLE = [op for op in ops.OPS.values() if not op.is_leaf and op.name != "copy" and op.elementwise]
IDS = [op.name for op in DIFFERENTIABLE]


def one_op_trace(op):
    b = Builder()
    xs = [b.input(f"x{i + 1}") for i in range(op.arity)]
    return trace_from_builder(b, [("y", b.apply(op.name, *xs))])


def varies(op, i) -> bool:
    """Whether argument i is a variable to perturb and differentiate: not one whose
    sampling interval is a point (polygamma's order, an integer)."""
    lo, hi = op.domain[i]
    return lo != hi


def steps_differentiated(expr):
    """SymPy leaves the derivatives of floor, ceiling and frac unevaluated: away from
    the integers (where the tests sample) they are 0, 0 and 1."""
    flat = {sympy.floor: sympy.S.Zero, sympy.ceiling: sympy.S.Zero, sympy.frac: sympy.S.One}
    return expr.replace(lambda e: isinstance(e, sympy.Derivative) and e.expr.func in flat,
                        lambda e: flat[e.expr.func])


def sample(op, n=7):
    rng = np.random.default_rng(sum(map(ord, op.name)))
    cols = []
    for lo, hi in op.domain:
        x = rng.uniform(lo, hi, size=4 * n)
        for k in op.kinks:  # finite differences across a kink are meaningless
            x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
        cols.append(x[:n])
    return cols


def test_every_op_has_every_field():
    for op in ops.OPS.values():
        assert op.name and (op.arity >= 0 or op.arity == ops.VARIADIC)
        if op.is_leaf:
            continue
        assert callable(op.evaluate), op.name
        if not op.elementwise:  # tensor ops: shape rule and both derivative rules
            assert callable(op.jvp) and callable(op.vjp), op.name
            assert op.numpy or op.fmt is not None, op.name
            continue
        assert len(op.partials) == op.arity, op.name
        assert op.numpy or op.name == "copy", op.name
        assert op.sympy is not None or hasattr(sympy, op.sympy_head or ""), op.name
        if op.name != "copy":
            assert len(op.domain) == op.arity, op.name
            assert (op.infix is None) == (op.uinfix is None), op.name
            SPELLING.call(op)  # every op has a NumPy spelling


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=IDS)
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_partials_match_finite_differences(op, mode):
    trace = one_op_trace(op)
    g = compile_grad(trace, mode=mode)
    f = compile_expr(trace)
    pts = sample(op)
    _, grad = g(*pts)
    for i in filter(lambda i: varies(op, i), range(op.arity)):
        h = 1e-6 * np.maximum(1.0, np.abs(pts[i]))
        up = [p + h if j == i else p for j, p in enumerate(pts)]
        down = [p - h if j == i else p for j, p in enumerate(pts)]
        fd = (f(*up) - f(*down)) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-6, atol=1e-7, err_msg=f"{op.name} d/dx{i + 1}")


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=IDS)
def test_partials_match_sympy_diff(op):
    trace = one_op_trace(op)
    expr, = to_sympy(trace)
    syms = [sympy.Symbol(f"x{i + 1}", real=True) for i in range(op.arity)]
    g = compile_grad(trace)
    pts = sample(op, n=3)
    for k in range(3):
        point = [float(p[k]) for p in pts]
        _, grad = g(*point)
        for i, s in enumerate(syms):
            if not varies(op, i):
                continue
            exact = steps_differentiated(sympy.diff(expr, s)).subs(dict(zip(syms, point)))
            exact = float(exact.rewrite(sympy.Piecewise).evalf()) if exact.has(sympy.DiracDelta) \
                else float(exact.evalf())
            assert grad[i] == pytest.approx(exact, rel=1e-10, abs=1e-12), (op.name, i, point)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=IDS)
def test_dot_product_ties_forward_to_reverse(op):
    trace = one_op_trace(op)
    fwd, rev = compile_jvp(trace), compile_vjp(trace)
    pts = sample(op)
    rng = np.random.default_rng(1)
    v = [rng.standard_normal(pts[0].shape) for _ in pts]
    u = rng.standard_normal(pts[0].shape)
    _, jv = fwd(*pts, *v)
    _, jtu = rev(*pts, u)
    lhs = np.sum(u * jv)
    rhs = sum(np.sum(a * b) for a, b in zip(jtu, v))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("op", [op for op in DIFFERENTIABLE if op.edges], ids=lambda op: op.name)
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_conventions_at_edge_points(op, mode):
    """Documented values at kinks and domain edges (see the ops module docstring)."""
    g = compile_grad(one_op_trace(op), mode=mode)
    for point, expected in op.edges:
        value, grad = g(*point)
        with np.errstate(all="ignore"):
            ref = float(op.evaluate(*map(np.float64, point)))
        assert value == ref or (math.isnan(ref) and math.isnan(value))
        for got, want in zip(grad, expected):
            assert got == want, (op.name, point, grad, expected)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=IDS)
def test_derivative_traces_differentiate_again(op):
    """Rules are builder calls, so a gradient is a trace whose own gradient exists
    (checked against finite differences of the first derivative)."""
    trace = one_op_trace(op)
    first = passes.grad_reverse(trace)
    verify(first)
    pts = sample(op, n=3)
    for i in range(op.arity):
        component = first.__class__(first.instrs, first.labels, [first.outputs[1 + i]])
        second = verify(passes.grad_reverse(passes.simplify(component)))
        env = {f"x{j + 1}": p for j, p in enumerate(pts)}
        h = 1e-5
        for j in filter(lambda j: varies(op, j), range(op.arity)):
            up = interpret(component, {**env, f"x{j + 1}": pts[j] + h})[0]
            down = interpret(component, {**env, f"x{j + 1}": pts[j] - h})[0]
            fd = (up - down) / (2 * h)
            got = interpret(second, env)[1 + j]
            np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=f"{op.name} d2/dx{i+1}dx{j+1}")


def test_maximum_of_equal_arguments_has_derivative_one():
    g = compile_grad("maximum(x, x) + minimum(x, x)")
    assert g(0.3)[1] == (2.0,)


def test_relu_and_abs_at_zero():
    assert compile_grad("relu(x)")(0.0)[1] == (0.0,)
    assert compile_grad("abs(x)")(0.0)[1] == (0.0,)
    assert compile_grad("relu(x)")(1e-300)[1] == (1.0,)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_constant_zero_exponent_has_zero_derivative_everywhere(mode):
    # 0 * x**-1 would be NaN at x = 0; the rule returns a structural zero instead.
    assert compile_grad("x**0 + y", mode=mode)(0.0, 1.0) == (2.0, (0.0, 1.0))
