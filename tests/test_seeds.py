"""The lecture notes' worked examples and their published numbers (../shared/SEEDS.md)."""

import math

import numpy as np
import pytest
import sympy

from exprcompiler import check_grad, compile_grad, to_trace
from exprcompiler.cli import main as exprc
from exprcompiler.trace import interpret
from exprcompiler.passes import vjp

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_cubic(mode):
    value, (d,) = compile_grad("x**3 - 3*x", mode=mode)(1.0)
    assert value == -2.0 and d == 0.0


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_square_of_square_plus_one(mode):
    assert compile_grad("(x**2 + 1)**2", mode=mode)(1.0)[1] == (8.0,)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_griewank_published_numbers(mode):
    value, (d1, d2) = compile_grad(GRIEWANK, mode=mode)(1.5, 0.5)
    assert value == pytest.approx(2.016646669, abs=1e-9)
    assert round(value, 4) == pytest.approx(2.0166)  # the table's 2.0167 rounds intermediates
    assert d1 == pytest.approx(3.0118, abs=5e-5)
    assert d2 == pytest.approx(-13.7239, abs=1.5e-4)
    x1, x2 = sympy.symbols("x1 x2")
    y = (sympy.sin(x1 / x2) + x1 / x2 - sympy.exp(x2)) * (x1 / x2 - sympy.exp(x2))
    at = {x1: 1.5, x2: 0.5}
    assert d1 == pytest.approx(float(sympy.diff(y, x1).subs(at)), rel=1e-13)
    assert d2 == pytest.approx(float(sympy.diff(y, x2).subs(at)), rel=1e-13)


def test_griewank_trace_is_the_published_one():
    trace = to_trace(GRIEWANK)
    lines = str(trace).splitlines()
    assert [ln.split("=", 1)[1].strip() for ln in lines] == [
        "x1", "x2", "v_-1 / v_0", "sin(v_1)", "exp(v_0)", "v_1 − v_3", "v_2 + v_4", "v_5 · v_4", "v_6"]
    assert [ln.split("=", 1)[0].strip() for ln in lines] == [
        "v_-1", "v_0", "v_1", "v_2", "v_3", "v_4", "v_5", "v_6", "y"]


def test_griewank_adjoint_table_values():
    """Every adjoint step of the published reverse table, in the published order
    (but for the first two lines, which the table gives in argument order)."""
    adjoint = vjp(to_trace(GRIEWANK))
    values = interpret(adjoint, {"x1": 1.5, "x2": 0.5, "y.bar": 1.0}, all_values=True)
    from exprcompiler.trace.printer import label_text
    steps = [(label_text(lab), float(values[i])) for i, lab in enumerate(adjoint.labels)
             if lab is not None and lab.kind == "bar"]
    published = [("v̄_6", 1.0), ("v̄_4", 1.4924), ("v̄_5", 1.3513), ("v̄_4", 2.8437), ("v̄_2", 1.3513),
                 ("v̄_3", -2.8437), ("v̄_1", 2.8437), ("v̄_0", -4.6884), ("v̄_1", 1.5059),
                 ("v̄_0", -13.7239), ("v̄_-1", 3.0118)]
    assert [s[0] for s in steps] == [p[0] for p in published]
    for (name, got), (_, want) in zip(steps, published):
        assert got == pytest.approx(want, abs=1.5e-4), name


def test_forward_tangent_for_x1(capsys):
    assert exprc(["trace", GRIEWANK, "--at", "x1=1.5,x2=0.5", "--mode", "forward", "--wrt", "x1"]) == 0
    out = capsys.readouterr().out
    last = [ln for ln in out.splitlines() if ln.startswith("v̇_6")][-1]
    assert last.endswith("3.0118")


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_log_product_sine(mode):
    value, (d1, d2) = compile_grad("log(x1) + x1*x2 - sin(x2)", mode=mode)(2.0, 5.0)
    assert value == pytest.approx(11.652, abs=5e-4)
    assert d1 == pytest.approx(5.5, abs=1e-12)
    assert d2 == pytest.approx(2.0 - math.cos(5.0), abs=1e-12)
    assert round(d2, 3) == 1.716


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_exp_log_example(mode):
    value, (dx, dz) = compile_grad("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", mode=mode)(2.0, 3.0)
    x, z = sympy.symbols("x z")
    y = sympy.exp(x * z) + x * z / sympy.log(x) + sympy.sin(sympy.log(x)) / (x * z)
    at = {x: 2.0, z: 3.0}
    assert value == pytest.approx(float(y.subs(at)), rel=1e-14)
    assert dx == pytest.approx(float(sympy.diff(y, x).subs(at)), rel=1e-13)
    assert dz == pytest.approx(float(sympy.diff(y, z).subs(at)), rel=1e-13)


def test_vanishing_gradient_of_tanh():
    assert round(compile_grad("tanh(x)")(4.0)[1][0], 4) == 0.0013


def test_check_grad_on_the_seeds():
    assert check_grad(GRIEWANK, {"x1": 1.5, "x2": 0.5}) < 1e-8
    assert check_grad("(sin(2*pi*w1/w2) + 3*w1/w2 - exp(2*w2)) * (3*w1/w2 - exp(2*w2))",
                      [0.3, 0.7]) < 1e-6


def test_batched_griewank_equals_pointwise():
    g = compile_grad(GRIEWANK)
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(0.5, 2, 50), rng.uniform(0.5, 2, 50)
    value, (d1, d2) = g(x1, x2)
    for k in range(50):
        v, (a, b) = g(float(x1[k]), float(x2[k]))
        # the same ufunc loops either way; allow a last-bit difference between SIMD paths
        assert (v, a, b) == pytest.approx((value[k], d1[k], d2[k]), rel=1e-15, abs=0)
