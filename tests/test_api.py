"""The Python front door: compile_grad, compile_expr, compile_jvp, compile_vjp, check_grad.

Argument binding, broadcasting, argument checks, wrt handling, the generated
source (names, constants, determinism, inspect), SymPy input, result types and
IEEE special values.
"""

from __future__ import annotations

import ast
import inspect
import math
import os
import re
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from exprcompiler import (ParseError, check_grad, compile_expr, compile_grad, compile_jvp, explain,
                          compile_vjp)
from exprcompiler.trace.ir import Builder, trace_from_builder

REPO = Path(__file__).resolve().parents[1]
GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
GRIEWANK_GRAD = (3.011843327673907, -13.723961509314076)
MODES = ["reverse", "forward"]


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- argument binding --------------------------------------------------------------------

@pytest.fixture(scope="module")
def xyz():
    return compile_grad("x*y**2 + sin(z)")


def _xyz_expected(x, y, z):
    return x * y ** 2 + math.sin(z), (y ** 2, 2 * x * y, math.cos(z))


@pytest.mark.parametrize("call", [
    lambda g: g(1.5, 2.0, 0.5),
    lambda g: g(x=1.5, y=2.0, z=0.5),
    lambda g: g(z=0.5, x=1.5, y=2.0),
    lambda g: g(1.5, z=0.5, y=2.0),
    lambda g: g(1.5, 2.0, z=0.5),
], ids=["positional", "keyword", "keyword-reordered", "mixed", "mixed2"])
def test_binding(xyz, call):
    value, grad = call(xyz)
    want_value, want_grad = _xyz_expected(1.5, 2.0, 0.5)
    assert value == pytest.approx(want_value, rel=1e-15)
    assert grad == pytest.approx(want_grad, rel=1e-15)
    assert isinstance(grad, tuple) and len(grad) == 3


def test_missing_argument_is_named(xyz):
    with pytest.raises(TypeError, match="'z'"):
        xyz(1.0, 2.0)
    with pytest.raises(TypeError, match=r"'y'.*'z'|'y', 'z'"):
        xyz(x=1.0)


def test_extra_positional_argument(xyz):
    with pytest.raises(TypeError, match="at most 3"):
        xyz(1.0, 2.0, 3.0, 4.0)


def test_unknown_keyword_is_named(xyz):
    with pytest.raises(TypeError, match="'w'"):
        xyz(1.0, 2.0, 3.0, w=4.0)


def test_argument_given_twice(xyz):
    with pytest.raises(TypeError, match="'x'.*twice"):
        xyz(1.0, 2.0, 3.0, x=4.0)


def test_repr_names_inputs_and_wrt(xyz):
    text = repr(xyz)
    assert "inputs x, y, z" in text and "wrt x, y, z" in text and "reverse" in text


# -- broadcasting and argument checks -----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_scalar_with_array(mode):
    g = compile_grad("x*y + exp(x)", mode=mode)
    y = np.array([0.5, 1.0, 2.0])
    value, (dx, dy) = g(0.3, y)
    assert value.shape == dx.shape == dy.shape == (3,)
    assert np.allclose(value, 0.3 * y + math.exp(0.3), rtol=1e-15)
    assert np.allclose(dx, y + math.exp(0.3), rtol=1e-15)
    assert np.array_equal(dy, np.full(3, 0.3))  # a gradient entry constant in y still has the batch shape


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_3x1_with_4(mode):
    g = compile_grad(GRIEWANK, mode=mode)
    x1 = np.linspace(0.5, 2.0, 3).reshape(3, 1)
    x2 = np.linspace(0.4, 1.5, 4)
    value, (d1, d2) = g(x1, x2)
    assert value.shape == d1.shape == d2.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            v, (a, b) = g(float(x1[i, 0]), float(x2[j]))
            assert (v, a, b) == (value[i, j], d1[i, j], d2[i, j])


def test_non_broadcastable_shapes_name_the_inputs():
    g = compile_grad("x*y")
    with pytest.raises(ValueError) as info:
        g(np.ones(3), np.ones(4))
    message = str(info.value)
    assert "x" in message and "y" in message and "(3,)" in message and "(4,)" in message


@pytest.mark.parametrize("bad", ["abc", object(), {"a": 1}, [1.0, "a"], [[1.0, 2.0], [3.0]], 1j],
                         ids=["str", "object", "dict", "mixed-list", "ragged", "complex"])
def test_non_numeric_argument_names_the_variable(bad):
    g = compile_grad("x*y")
    with pytest.raises(TypeError, match="'y'"):
        g(1.0, bad)
    with pytest.raises(TypeError, match="'y'"):
        g(x=1.0, y=bad)


def test_none_argument_is_a_type_error():
    with pytest.raises(TypeError, match="'y'"):
        compile_grad("x*y")(1.0, None)


def test_numeric_string_is_a_type_error():
    with pytest.raises(TypeError, match="'y'"):
        compile_grad("x*y")(1.0, "1.5")


def test_complex_array_is_a_type_error_without_warning(no_warnings):
    with pytest.raises(TypeError, match="'y'"):
        compile_grad("x*y")(1.0, np.array([1 + 1j]))


def test_integer_and_bool_like_arrays_become_float64():
    value, (dx,) = compile_grad("x**2")(np.array([1, 2, 3]))
    assert value.dtype == np.float64 and dx.dtype == np.float64
    assert value.tolist() == [1.0, 4.0, 9.0] and dx.tolist() == [2.0, 4.0, 6.0]


# -- result types -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_scalar_inputs_give_python_floats(mode):
    value, grad = compile_grad(GRIEWANK, mode=mode)(1.5, 0.5)
    assert type(value) is float and all(type(d) is float for d in grad)
    assert type(compile_expr(GRIEWANK)(1.5, 0.5)) is float
    assert type(compile_grad("x + y")(1, 2)[1][0]) is float  # constant gradient entries too


@pytest.mark.parametrize("mode", MODES)
def test_array_inputs_give_arrays(mode):
    value, grad = compile_grad(GRIEWANK, mode=mode)(np.array([1.5]), 0.5)
    assert isinstance(value, np.ndarray) and value.shape == (1,)
    assert all(isinstance(d, np.ndarray) and d.shape == (1,) for d in grad)
    assert value[0] == compile_grad(GRIEWANK, mode=mode)(1.5, 0.5)[0]


def test_constant_expression():
    assert compile_expr("2*3 + 1")() == 7.0
    assert compile_grad("2*3 + 1")() == (7.0, ())


# -- wrt ----------------------------------------------------------------------------------

def test_default_input_order_is_natural():
    g = compile_grad("x10 + 2*x2 + 3*x1")
    assert g.inputs == ("x1", "x2", "x10") and g.wrt == ("x1", "x2", "x10")
    value, grad = g(1.0, 10.0, 100.0)
    assert value == 123.0 and grad == (3.0, 2.0, 1.0)


@pytest.mark.parametrize("mode", MODES)
def test_wrt_subset_and_order(mode):
    g = compile_grad("x * y**2 * exp(z)", wrt=["z", "x"], mode=mode)
    assert g.inputs == ("x", "y", "z") and g.wrt == ("z", "x")
    value, grad = g(2.0, 3.0, 0.0)
    assert value == 18.0 and grad == pytest.approx((18.0, 9.0), rel=1e-15)
    assert "y_bar" not in g.source  # y is data: no adjoint for it


def test_wrt_as_comma_string_and_sympy_symbols():
    x, y = sp.symbols("x y")
    a = compile_grad("x*y", wrt="y, x")
    b = compile_grad(x * y, wrt=[y])
    assert a.wrt == ("y", "x") and a(2.0, 3.0) == (6.0, (2.0, 3.0))
    assert b.wrt == ("y",) and b(2.0, 3.0) == (6.0, (2.0,))


def test_empty_wrt():
    g = compile_grad("x*y", wrt=[])
    assert g.wrt == () and g(2.0, 3.0) == (6.0, ())


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_wrt_name_the_expression_does_not_use_has_zero_derivatives(backend):
    """As in JAX, CasADi and SymPy: the variable is an input no operation reads."""
    g = compile_grad("x*y", wrt=["z", "x"], backend=backend)
    assert g.inputs == ("x", "y", "z") and g(2.0, 3.0, 5.0) == (6.0, (0.0, 3.0))
    assert g.at([5.0, 2.0], y=3.0)[1].tolist() == [0.0, 3.0]
    _, tangent = compile_jvp("x*y", wrt=["x", "z"], backend=backend)(2.0, 3.0, 5.0, 1.0, 1.0)
    assert tangent == 3.0
    assert compile_vjp("x*y", wrt="z", backend=backend)(2.0, 3.0, 5.0, 1.0) == (6.0, (0.0,))
    assert "with respect to them is 0: z" in explain("x*y", wrt=["x", "z"])


def test_duplicate_wrt_is_a_value_error():
    with pytest.raises(ValueError, match="twice"):
        compile_grad("x*y", wrt=["x", "x"])


def test_bad_mode_and_backend():
    with pytest.raises(ValueError, match="mode"):
        compile_grad("x", mode="sideways")
    with pytest.raises(ValueError, match="backend"):
        compile_grad("x", backend="fortran")


def test_bad_expression_type():
    with pytest.raises(TypeError, match="int"):
        compile_grad(42)


def test_parse_error_propagates_with_caret():
    with pytest.raises(ParseError) as info:
        compile_grad("sinn(x)")
    assert "did you mean 'sin'" in str(info.value)
    assert "^" in str(info.value)


# -- forward mode = reverse mode -----------------------------------------------------------

EXPRESSIONS = [
    (GRIEWANK, {"x1": 1.5, "x2": 0.5}),
    ("log(x1) + x1*x2 - sin(x2)", {"x1": 2.0, "x2": 5.0}),
    ("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", {"x": 2.0, "z": 3.0}),
    ("tanh(a*b + c) * sigmoid(a - b) / sqrt(c**2 + 1)", {"a": 0.3, "b": -1.2, "c": 0.7}),
    ("x**3 - 3*x", {"x": 1.0}),
    ("(x**2 + 1)**2", {"x": 1.0}),
    ("cos(u)**2 + u**v - log(1 + v**2)", {"u": 1.3, "v": 0.6}),
]


@pytest.mark.parametrize("expr, at", EXPRESSIONS)
def test_forward_equals_reverse(expr, at):
    r = compile_grad(expr, mode="reverse")(**at)
    f = compile_grad(expr, mode="forward")(**at)
    assert f[0] == r[0]
    assert f[1] == pytest.approx(r[1], rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("expr, at", EXPRESSIONS)
def test_gradient_matches_sympy(expr, at):
    sym = {n: sp.Symbol(n) for n in at}
    e = sp.sympify(expr, locals={**sym, "sigmoid": lambda t: 1 / (1 + sp.exp(-t))})  # test oracle only
    g = compile_grad(expr)
    subs = {sym[n]: v for n, v in at.items()}
    _, grad = g(**at)
    assert grad == pytest.approx([float(sp.diff(e, sym[n]).subs(subs)) for n in g.wrt], rel=1e-12)


# -- check_grad ------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, at", EXPRESSIONS)
def test_check_grad_small(expr, at):
    assert check_grad(expr, at) < 1e-7


def test_check_grad_positional_and_arrays():
    assert check_grad(GRIEWANK, [1.5, 0.5]) < 1e-8
    rng = np.random.default_rng(3)
    at = {"x1": rng.uniform(0.5, 2, 20), "x2": rng.uniform(0.5, 2, 20)}
    assert check_grad(GRIEWANK, at) < 1e-7
    assert check_grad(GRIEWANK, at, wrt=["x2"]) < 1e-7


def test_check_grad_missing_value():
    with pytest.raises(TypeError, match="x2"):
        check_grad(GRIEWANK, {"x1": 1.5})


def test_check_grad_does_not_hide_nan():
    err = check_grad("log(x)", {"x": -1.0})
    assert not err < 1e-3, err


def test_check_grad_does_not_hide_nan_in_batch():
    err = check_grad("sqrt(x)", {"x": np.array([-1.0, 4.0])})
    assert not err < 1e-3, err


# -- multi-output, compile_expr, compile_jvp, compile_vjp -------------------------------------

@pytest.fixture(scope="module")
def two_outputs():
    b = Builder()
    x, y = b.input("x"), b.input("y")
    return trace_from_builder(b, [("u", b.mul(x, y)), ("w", b.sin(x))])


def test_compile_grad_rejects_multi_output(two_outputs):
    with pytest.raises(ValueError) as info:
        compile_grad(two_outputs)
    message = str(info.value)
    assert "single-output" in message and "2 outputs" in message and "compile_vjp" in message


def test_compile_expr_multi_output(two_outputs):
    f = compile_expr(two_outputs)
    assert f.inputs == ("x", "y") and f.wrt == ()
    assert f(2.0, 3.0) == (6.0, math.sin(2.0))


def test_compile_expr_value_only():
    f = compile_expr(GRIEWANK)
    assert f.kind == "value"
    assert f(1.5, 0.5) == compile_grad(GRIEWANK)(1.5, 0.5)[0]
    assert "_bar" not in f.source and "_dot" not in f.source


def test_compile_jvp_signature_and_values():
    j = compile_jvp(GRIEWANK)
    assert j.inputs == ("x1", "x2", "x1_dot", "x2_dot")
    assert j.wrt == ("x1", "x2")
    assert "def f_jvp(x1, x2, x1_dot, x2_dot):" in j.source
    value, tangent = j(1.5, 0.5, 2.0, -1.0)
    assert value == pytest.approx(2.016646669428201, rel=1e-15)
    assert tangent == pytest.approx(2 * GRIEWANK_GRAD[0] - GRIEWANK_GRAD[1], rel=1e-14)
    assert j(x1=1.5, x2=0.5, x2_dot=-1.0, x1_dot=2.0) == (value, tangent)


def test_compile_jvp_wrt_subset_order():
    j = compile_jvp("x*y*z", wrt=["z", "x"])
    assert j.inputs == ("x", "y", "z", "z_dot", "x_dot")
    assert j(2.0, 3.0, 5.0, 1.0, 0.0) == (30.0, 6.0)
    assert j(2.0, 3.0, 5.0, z_dot=0.0, x_dot=1.0) == (30.0, 15.0)


def test_compile_jvp_multi_output(two_outputs):
    j = compile_jvp(two_outputs)
    assert j.inputs == ("x", "y", "x_dot", "y_dot")
    values, tangents = j(2.0, 3.0, 1.0, 0.0)
    assert values == (6.0, math.sin(2.0))
    assert tangents == (3.0, math.cos(2.0))


def test_compile_vjp_signature_and_values():
    v = compile_vjp(GRIEWANK)
    assert v.inputs == ("x1", "x2", "y_bar")
    value, grad = v(1.5, 0.5, 2.0)
    assert value == pytest.approx(2.016646669428201, rel=1e-15)   # one output: bare value
    assert grad == pytest.approx(tuple(2 * d for d in GRIEWANK_GRAD), rel=1e-15)
    assert v(y_bar=2.0, x2=0.5, x1=1.5) == (value, grad)


def test_compile_vjp_cotangent_named_after_output():
    v = compile_vjp("x*y", wrt=["y"])   # y is an input, so the output is f
    assert v.inputs == ("x", "y", "f_bar")
    assert v(2.0, 3.0, f_bar=1.0) == (6.0, (2.0,))


def test_compile_vjp_multi_output(two_outputs):
    v = compile_vjp(two_outputs)
    assert v.inputs == ("x", "y", "u_bar", "w_bar")
    values, grad = v(2.0, 3.0, 1.0, 10.0)
    assert values == (6.0, math.sin(2.0))
    assert grad == pytest.approx((3.0 + 10 * math.cos(2.0), 2.0), rel=1e-15)


def test_vjp_and_jvp_agree_with_grad_on_arrays():
    rng = np.random.default_rng(7)
    x1, x2 = rng.uniform(0.5, 2, 10), rng.uniform(0.5, 2, 10)
    _, (d1, d2) = compile_grad(GRIEWANK)(x1, x2)
    _, t = compile_jvp(GRIEWANK)(x1, x2, 1.0, 0.0)
    _, (b1, b2) = compile_vjp(GRIEWANK)(x1, x2, 1.0)
    assert np.allclose(t, d1, rtol=1e-14) and np.allclose(b1, d1, rtol=1e-15)
    assert np.allclose(b2, d2, rtol=1e-15)


# -- generated source: names ---------------------------------------------------------------

def test_source_names_follow_the_convention():
    g = compile_grad(GRIEWANK)
    assert "def f_grad(x1, x2):" in g.source
    assert "    v1 = x1 / x2\n" in g.source
    assert "x1_bar" in g.source and "v4_bar" in g.source
    assert "return v6, (x1_bar, x2_bar)" in g.source
    f = compile_grad(GRIEWANK, mode="forward")
    assert "_dot" in f.source
    body = [ln.strip() for ln in g.source.splitlines() if ln.startswith("    ")]
    assert all(" = " in ln for ln in body[:-1]) and body[-1].startswith("return ")


# Names that clash with Python, NumPy's alias, generated names or helpers. The string
# parser treats `sigmoid` as a function, so that one comes through SymPy.
CLASHING = ["v1", "lambda", "np", "x_bar", "t1", "sigmoid", "f_grad", "x_dot", "v3_bar", "None",
            "True", "def", "f_jvp", "f_vjp", "vm1"]


def _clash_expr(name):
    """(sympy expression, value function, gradient function) using `name` with x and v2."""
    s, x, v2 = sp.Symbol(name), sp.Symbol("x"), sp.Symbol("v2")
    return s * x + sp.exp(s) * v2 - v2 / s, s, x, v2


@pytest.mark.parametrize("name", CLASHING)
@pytest.mark.parametrize("mode", MODES)
def test_mangled_names_give_correct_numbers(name, mode):
    e, s, x, v2 = _clash_expr(name)
    at = {name: 0.7, "x": 1.3, "v2": -0.4}
    subs = {s: 0.7, x: 1.3, v2: -0.4}
    g = compile_grad(e, mode=mode)
    assert set(g.inputs) == {name, "x", "v2"}          # the user's names, not the mangled ones
    ast.parse(g.source)
    compile(g.source, "<check>", "exec")
    value, grad = g(**at)
    assert value == pytest.approx(float(e.subs(subs)), rel=1e-14)
    assert grad == pytest.approx([float(sp.diff(e, sp.Symbol(n)).subs(subs)) for n in g.wrt], rel=1e-13)
    by_position = g(*[at[n] for n in g.inputs])
    assert by_position == (value, grad)


@pytest.mark.parametrize("name", ["v1", "lambda", "np", "x_bar", "t1", "f_grad", "x_dot"])
def test_mangled_names_from_text(name):
    g = compile_grad(f"{name} * x + exp({name}) * v2 - v2 / {name}")
    value, grad = g(**{name: 0.7, "x": 1.3, "v2": -0.4})
    assert value == pytest.approx(0.7 * 1.3 + math.exp(0.7) * -0.4 + 0.4 / 0.7, rel=1e-14)
    want = {name: 1.3 + math.exp(0.7) * -0.4 - 0.4 / 0.49, "x": 0.7, "v2": math.exp(0.7) - 1 / 0.7}
    assert grad == pytest.approx([want[n] for n in g.wrt], rel=1e-13)
    params = inspect.signature(g._fn).parameters
    assert "x" in params                                # a harmless name is kept as is


@pytest.mark.parametrize("name", ["x_bar", "v1", "y"])
def test_mangled_names_in_jvp_and_vjp(name):
    s, x = sp.Symbol(name), sp.Symbol("x")
    e = s * sp.sin(x)
    j = compile_jvp(e)
    v = compile_vjp(e)
    assert len(set(j.inputs)) == len(j.inputs) and len(set(v.inputs)) == len(v.inputs)
    point = {name: 0.7, "x": 1.3}
    tangent_names = j.inputs[len(point):]
    assert len(tangent_names) == len(j.wrt) == 2
    seeds = {t: float(w == name) for t, w in zip(tangent_names, j.wrt)}
    _, t = j(**point, **seeds)
    assert t == pytest.approx(math.sin(1.3), rel=1e-15)
    value, grad = v(**{name: 0.7, "x": 1.3}, **{v.inputs[-1]: 1.0})
    want = {name: math.sin(1.3), "x": 0.7 * math.cos(1.3)}
    assert grad == pytest.approx([want[n] for n in v.wrt], rel=1e-15)


def test_user_names_that_mangle_alike_stay_distinct():
    g = compile_grad(sp.Symbol("lambda") + 2 * sp.Symbol("lambda_") + 3 * sp.Symbol("np"))
    assert g.inputs == ("lambda", "lambda_", "np")
    assert g(1.0, 10.0, 100.0) == (321.0, (1.0, 2.0, 3.0))
    assert g(lambda_=10.0, np=100.0, **{"lambda": 1.0}) == (321.0, (1.0, 2.0, 3.0))


def test_public_names_are_unique():
    g = compile_grad(2 * sp.Symbol("x y") + 3 * sp.Symbol("x_y"))
    assert len(set(g.inputs)) == len(g.inputs), g.inputs
    assert g(**dict(zip(g.inputs, (1.0, 2.0)))) == (8.0, (2.0, 3.0))


# -- generated source: constants, determinism, inspect ------------------------------------------

def test_constants_round_trip():
    f = compile_expr("0.1*x + 0.3333333333333333*y")
    assert "0.1 * x" in f.source and "0.3333333333333333 * y" in f.source
    assert f(1.0, 0.0) == 0.1
    assert f(0.0, 1.0) == 1 / 3
    g = compile_expr("x * (1/3)")
    assert "0.3333333333333333" in g.source
    assert g(1.0) == 1 / 3


@pytest.mark.parametrize("text", ["0.1", "0.3333333333333333", "2.5e-08", "1e-300", "5e-324",
                                  "1.7976931348623157e308", "123456789.123456789", "6.02214076e23"])
def test_constant_is_exact(text):
    f = compile_expr(f"{text} * x")
    assert f(1.0) == float(text)
    ns: dict = {}
    exec(compile(f.source, "<check>", "exec"), ns)   # the printed text itself round-trips
    assert ns["f"](1.0) == float(text)


def test_division_by_constant_is_not_rewritten():
    xs = np.random.default_rng(0).uniform(-10, 10, 10000)
    assert np.array_equal(compile_expr("x/3")(xs), xs / 3)
    assert np.array_equal(compile_expr("x/10")(xs), xs / 10)


def test_overflowing_constant_is_inf():
    f = compile_expr("1e400 * x")
    assert f(1.0) == math.inf and "np.inf" in f.source


@pytest.mark.parametrize("compile_fn", [compile_expr, compile_grad, compile_jvp, compile_vjp,
                                        lambda e: compile_grad(e, mode="forward")])
def test_two_compiles_give_identical_source(compile_fn):
    expr = GRIEWANK + " + tanh(a*b + c)*sigmoid(a - b)/sqrt(c**2 + 1) + log(1 + x1**2)*a*b*c"
    assert compile_fn(expr).source == compile_fn(expr).source


def test_source_identical_across_processes():
    script = ("from exprcompiler import compile_grad, compile_vjp\n"
              f"e = {GRIEWANK!r} + ' + tanh(a*b + c)*sigmoid(a - b) + log(1 + x1**2)*a*b*c'\n"
              "print(compile_grad(e).source + compile_grad(e, mode='forward').source"
              " + compile_vjp(e).source)\n")
    outs = set()
    for seed in ("0", "1", "999"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        outs.add(done.stdout)
    assert len(outs) == 1
    e = GRIEWANK + " + tanh(a*b + c)*sigmoid(a - b) + log(1 + x1**2)*a*b*c"
    here = compile_grad(e).source + compile_grad(e, mode="forward").source + compile_vjp(e).source
    assert outs.pop() == here + "\n"  # and the same as in this process


def test_header_names_the_expression_without_timestamp():
    src = compile_grad(GRIEWANK).source
    head = src.splitlines()[:2]
    assert head[0].startswith("# Generated by exprcompiler")
    assert GRIEWANK in head[1] and "reverse" in head[1]
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", src)


def test_inspect_getsource():
    g = compile_grad(GRIEWANK)
    text = inspect.getsource(g._fn)
    assert text.startswith("def f_grad(x1, x2):")
    assert g.source.endswith(text)


def test_traceback_shows_generated_line():
    g = compile_grad(GRIEWANK)
    try:
        g._fn(np.ones(3), np.ones(4))   # bypass the shape check to fail inside generated code
    except ValueError:
        shown = traceback.format_exc()
    else:
        pytest.fail("expected a broadcasting error")
    assert "v1 = x1 / x2" in shown
    assert "exprcompiler f_grad" in shown


def test_trace_is_printable():
    g = compile_grad(GRIEWANK)
    text = str(g.trace)
    assert "v_1  = v_-1 / v_0" in text and "x̄1" in text
    assert str(g.primal).splitlines()[-1].startswith("y")


# -- SymPy input -------------------------------------------------------------------------------

x1, x2 = sp.symbols("x1 x2")
SYMPY_PAIRS = [
    ((sp.sin(x1 / x2) + x1 / x2 - sp.exp(x2)) * (x1 / x2 - sp.exp(x2)), GRIEWANK),
    (sp.log(x1) + x1 * x2 - sp.sin(x2), "log(x1) + x1*x2 - sin(x2)"),
    (sp.Rational(1, 3) * x1 ** 2 + sp.pi * x2, "1/3*x1**2 + pi*x2"),
    (sp.sqrt(x1) * sp.tanh(x2), "sqrt(x1)*tanh(x2)"),
    (sp.exp(x1 * x2) + x1 * x2 / sp.log(x1) + sp.sin(sp.log(x1)) / (x1 * x2),
     "exp(x1*x2) + x1*x2/log(x1) + sin(log(x1))/(x1*x2)"),
]


@pytest.mark.parametrize("sym, text", SYMPY_PAIRS)
@pytest.mark.parametrize("mode", MODES)
def test_sympy_input_same_numbers_as_string(sym, text, mode):
    a, b = compile_grad(sym, mode=mode), compile_grad(text, mode=mode)
    assert a.inputs == b.inputs == ("x1", "x2")
    rng = np.random.default_rng(11)
    pts = rng.uniform(0.5, 2.5, (2, 200))
    (va, ga), (vb, gb) = a(*pts), b(*pts)
    assert np.allclose(va, vb, rtol=1e-13, atol=1e-13)
    for p, q in zip(ga, gb):
        assert np.allclose(p, q, rtol=1e-13, atol=1e-13)


def test_sympy_griewank_bit_identical():
    sym, text = SYMPY_PAIRS[0]
    assert compile_grad(sym)(1.5, 0.5) == compile_grad(text)(1.5, 0.5)


def test_sympy_expr_and_vjp():
    assert compile_expr(SYMPY_PAIRS[1][0])(2.0, 5.0) == pytest.approx(11.652071455223084, rel=1e-15)
    _, grad = compile_vjp(SYMPY_PAIRS[1][0])(2.0, 5.0, 1.0)
    assert grad == pytest.approx((5.5, 2.0 - math.cos(5.0)), rel=1e-15)


# -- IEEE special values -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expr, at, value, deriv", [
    ("log(x)", 0.0, -math.inf, math.inf),
    ("1/x", 0.0, math.inf, -math.inf),
    ("sqrt(x)", -1.0, math.nan, math.nan),
    ("sqrt(x)", 0.0, 0.0, math.inf),
    ("log(x)", -1.0, math.nan, -1.0),
    ("exp(x)", 1000.0, math.inf, math.inf),
    ("x/x", 0.0, math.nan, None),
])
def test_ieee_results_without_warnings(no_warnings, mode, expr, at, value, deriv):
    g = compile_grad(expr, mode=mode)
    v, (d,) = g(at)
    assert v == value or (math.isnan(value) and math.isnan(v))
    if deriv is not None:
        assert d == deriv or (math.isnan(deriv) and math.isnan(d))
    batch_v, (batch_d,) = g(np.array([at, 1.0]))
    assert batch_v[0] == v or (math.isnan(v) and math.isnan(batch_v[0]))


def test_ieee_results_without_warnings_all_entry_points(no_warnings):
    assert compile_expr("log(x)")(0.0) == -math.inf
    assert compile_jvp("log(x)")(0.0, 1.0) == (-math.inf, math.inf)
    assert compile_vjp("1/x")(0.0, 1.0) == (math.inf, (-math.inf,))
    v, (d,) = compile_grad("sqrt(x)")(np.array([-1.0, 0.0, 4.0]))
    assert np.isnan(v[0]) and v[1] == 0.0 and v[2] == 2.0
    assert np.isnan(d[0]) and d[1] == math.inf and d[2] == 0.25


def test_ieee_results_do_not_change_global_errstate():
    before = np.geterr()
    compile_grad("log(x)")(0.0)
    assert np.geterr() == before


# -- further findings ----------------------------------------------------------------------------

@pytest.mark.parametrize("compile_fn, expr, user_name", [
    (compile_vjp, "x*y_bar", "y_bar"),
    (compile_jvp, "x*x_dot", "x_dot"),
], ids=["vjp-y_bar", "jvp-x_dot"])
def test_derivative_entry_points_keep_the_users_input_name(compile_fn, expr, user_name):
    c = compile_fn(expr)
    assert c.inputs[:2] == tuple(sorted(("x", user_name)))   # the user's inputs, by their own names
    extra = {name: 1.0 for name in c.inputs[2:]}
    value, _ = c(x=2.0, **{user_name: 3.0}, **extra)
    assert value == 6.0


def test_check_grad_emits_no_warning(no_warnings):
    check_grad("xlogy(x, y)", {"x": 0.0, "y": 0.0})


def test_no_double_negation_in_generated_code():
    src = compile_grad("a - b/c").source
    assert "-(-" not in src


def test_header_names_sympy_expression():
    src = compile_grad(sp.Symbol("x1") * sp.sin(sp.Symbol("x2"))).source
    assert "x1*sin(x2)" in src.splitlines()[1]


def test_large_batches_are_evaluated_in_blocks_with_the_same_numbers():
    """Above 2·BLOCK points the wrapper evaluates block by block; each number must be
    the one the generated function gives on the whole arrays at once."""
    from exprcompiler.api import BLOCK
    g = compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2)) + 0*c")
    rng = np.random.default_rng(3)
    rows = 2 * BLOCK // 50 + 7                      # not a multiple of the block size
    x1 = rng.uniform(0.5, 2.0, (rows, 50))
    x2 = rng.uniform(0.5, 2.0, (50,))               # broadcast along rows
    value, grads = g(x1, x2, 1.5)
    assert value.shape == (rows, 50) and all(d.shape == (rows, 50) for d in grads)
    with np.errstate(all="ignore"):
        ref_value, ref_grads = g._fn(x1, x2, np.float64(1.5))
    assert np.array_equal(value, ref_value)
    for got, want in zip(grads, ref_grads):
        assert np.array_equal(got, np.broadcast_to(want, (rows, 50)))


def test_power_of_two_constants_fold_in_derivatives_only():
    """A derivative's 0.5·(2·r) (of ½‖r‖²) is r: scaling by a power of two is exact,
    so folding c·(k·x) into (c·k)·x gives the same bits. The primal keeps what the
    user wrote (0.25·(4·y) stays in its trace and tables); 3·(5·x) is not folded
    (3·5 rounds differently from 3·(5·x))."""
    g = compile_grad("0.5*sum((X@w - y)**2)", wrt="w", shapes={"X": ("n", 3), "y": ("n",), "w": (3,)})
    assert "0.5 * (2.0" not in g.source and "v2_bar = v2" in g.source
    h = compile_grad("0.25*(4*y) + 3*(5*x)")
    assert [ins.op for ins in h.primal.instrs].count("mul") == 4
    assert "3.0 * (5.0" in h.source or "3.0 * v" in h.source
    assert h(0.1, 0.3) == (0.25 * (4 * 0.3) + 3 * (5 * 0.1), (15.0, 1.0))
