"""The SymPy bridge both ways: from_sympy (SymPy -> Trace) and to_sympy (Trace -> SymPy).

Values are checked against SymPy itself (evalf, lambdify) and against the
reference interpreter; structure is checked on the instructions.
"""

import importlib
import math

import numpy as np
import pytest
import sympy as sp
from sympy.core.parameters import evaluate

from exprcompiler import ops
from exprcompiler.errors import ConversionError, ExprcError
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.trace import Builder, interpret, verify
from exprcompiler.trace.ir import trace_from_builder
from exprcompiler.trace.to_sympy import sympy_number, to_sympy

# The module, not the function (a package __init__ may re-export the function).
from_sympy_module = importlib.import_module("exprcompiler.parse.from_sympy")

x, y, z = sp.symbols("x y z", real=True)
POINT = {"x": 0.7, "y": 1.3, "z": -0.4}


def render(trace):
    """The output as nested calls, e.g. 'sub(x, mul(3, y))' (loop: traces are ordered)."""
    text = []
    for ins in trace.instrs:
        if ins.op == "input":
            text.append(ins.name)
        elif ins.op == "const":
            text.append(f"{ins.value:g}")
        else:
            text.append(f"{ins.op}({', '.join(text[a] for a in ins.args)})")
    return text[trace.outputs[0][1]]


def sympy_value(expr, point):
    """SymPy's own numeric value (30 digits), with no NumPy involved."""
    subs = {sp.Symbol(n, real=True): sp.Float(v, 30) for n, v in point.items()}
    return float(expr.evalf(30, subs=subs))


# Every supported node: structural ones, numbers, and each function with a SymPy head.
TABLE = [
    x,
    x + 3,
    sp.Rational(2, 3) * x + sp.Rational(-5, 7),
    2.5 * x - 0.25 * y,
    sp.pi * x + sp.E,
    sp.Add(x, sp.oo, evaluate=False),
    sp.Add(x, -sp.oo, evaluate=False),
    sp.Add(x, sp.nan, evaluate=False),
    x + y + z + 1,
    x - 3 * y,
    -x + y,
    -x - y - z,
    x * y * z,
    x / y,
    x / (y * z),
    1 / (x * y),
    -1 / x,
    -x * y,
    -3 * x * y / (2 * z),
    x * y ** -2,
    sp.sqrt(x),
    1 / sp.sqrt(x),
    x / sp.sqrt(y),
    x ** y,
    x ** 3,
    x ** -2,
    x ** sp.Rational(3, 2),
    x ** 0.5,
    2 ** x,
    sp.Pow(sp.E, x, evaluate=False),
    sp.exp(x) + sp.log(y),
    sp.sin(x) * sp.cos(y) + sp.tan(z),
    sp.asin(x) + sp.acos(x) * sp.atan(y),
    sp.sinh(x) - sp.cosh(y) / sp.tanh(z),
    sp.Abs(z) + sp.sign(z),
    sp.Max(x, y, z) - sp.Min(x, z),
    sp.Heaviside(z) + 2 * sp.Heaviside(x, 0.3) + sp.Heaviside(y, x),
    sp.sin(x * y) + sp.cos(x * y) * sp.exp(-x * y),
    (sp.sin(x / y) + x / y - sp.exp(y)) * (x / y - sp.exp(y)),
]


@pytest.mark.parametrize("expr", TABLE, ids=[str(e) for e in TABLE])
def test_value_matches_sympy(expr):
    trace = verify(from_sympy(expr))
    got = interpret(trace, {n: POINT[n] for n in trace.input_names})[0]
    np.testing.assert_allclose(got, sympy_value(expr, POINT), rtol=1e-12)


@pytest.mark.parametrize("expr", TABLE, ids=[str(e) for e in TABLE])
def test_value_matches_lambdify_on_arrays(expr):
    rng = np.random.default_rng(1)
    env = {"x": rng.uniform(0.2, 0.9, 7), "y": rng.uniform(0.5, 2.0, 7),
           "z": rng.uniform(-1.0, 1.0, 7)}
    trace = from_sympy(expr)
    f = sp.lambdify((x, y, z), expr, "numpy")
    with np.errstate(all="ignore"):
        want = np.broadcast_to(f(env["x"], env["y"], env["z"]), (7,))
    np.testing.assert_allclose(interpret(trace, env)[0], want, rtol=1e-12)


# Nodes SymPy's NumPy printer cannot lambdify (it needs SciPy for them): checked
# against evalf only.
SPECIAL = [
    sp.erf(x) - sp.erfc(y) * sp.gamma(x) + sp.loggamma(y),
    sp.polygamma(0, x) + sp.polygamma(1, y) - sp.polygamma(3, x),
    sp.atan2(y, z) + sp.asinh(z) + sp.acosh(y) + sp.atanh(x),
    sp.floor(3 * x) + sp.ceiling(z) + sp.frac(y) + sp.sinc(y),
    sp.Piecewise((x, z > 0), (y ** 2, sp.And(x < 1, sp.Not(y > 2))), (3, True)),
]


@pytest.mark.parametrize("expr", SPECIAL, ids=[str(e) for e in SPECIAL])
def test_special_value_matches_sympy(expr):
    trace = verify(from_sympy(expr))
    got = interpret(trace, {n: POINT[n] for n in trace.input_names})[0]
    np.testing.assert_allclose(got, sympy_value(expr, POINT), rtol=1e-12)


def test_table_covers_every_op_with_a_sympy_class():
    heads = {op.name for op in ops.OPS.values()
             if op.sympy_head and isinstance(getattr(sp, op.sympy_head, None), type)}
    structural = {"input", "const", "add", "sub", "mul", "div", "neg", "pow", "sqrt", "exp"}
    seen = set()
    for expr in TABLE + SPECIAL:
        seen |= {ins.op for ins in from_sympy(expr).instrs}
    assert heads | structural <= seen, f"not covered: {sorted((heads | structural) - seen)}"


# SymPy >= 1.9 stores Heaviside(x) as Heaviside(x, 1/2); the one-argument node of
# older versions (made here by hand) is neither printable nor evalf-able in 1.14.
HEAVISIDE_1 = sp.Basic.__new__(sp.Heaviside, x)


@pytest.mark.parametrize("expr, shape", [
    (x / y, "div(x, y)"),
    (x - y, "sub(x, y)"),
    (-x + y, "sub(y, x)"),
    (x - 3 * y, "sub(x, mul(3, y))"),
    (x + 1, "add(x, 1)"),
    (x - 1, "sub(x, 1)"),
    (-x - y, "sub(neg(x), y)"),
    (-x * y, "neg(mul(x, y))"),
    (-3 * y, "mul(-3, y)"),
    (x / 3, "div(x, 3)"),
    (1 / (x * y), "div(1, mul(x, y))"),
    (-1 / x, "div(-1, x)"),
    (x * y ** -2, "div(x, pow(y, 2))"),
    (x ** -2, "div(1, pow(x, 2))"),
    (x / sp.sqrt(y), "div(x, sqrt(y))"),
    (1 / sp.sqrt(x), "div(1, sqrt(x))"),
    (sp.sqrt(x), "sqrt(x)"),
    (x ** y, "pow(x, y)"),
    (sp.Pow(sp.E, x, evaluate=False), "exp(x)"),
    (sp.Max(x, y, z), "maximum(maximum(x, y), z)"),
    (sp.Heaviside(x), "heaviside(x, 0.5)"),
    (HEAVISIDE_1, "heaviside(x, 0.5)"),
    (sp.asin(x), "arcsin(x)"),
    (sp.Abs(x), "abs(x)"),
    # the converter's plain cases (two terms or factors; chains; -1 and numbers first)
    (sp.Add(1, x, evaluate=False), "add(x, 1)"),
    (sp.Add(-2, x, evaluate=False), "sub(x, 2)"),
    (sp.Add(sp.pi, x, evaluate=False), "add(x, 3.14159)"),
    (x - y * z, "sub(x, mul(y, z))"),
    (sp.Add(-y * z, x, evaluate=False), "sub(x, mul(y, z))"),
    (sp.Add(-y, -z, evaluate=False), "sub(neg(y), z)"),
    (sp.Mul(x, sp.Rational(1, 2), evaluate=False), "mul(x, 0.5)"),
    (x * y * z, "mul(mul(x, y), z)"),
    (-x * y * z, "neg(mul(mul(x, y), z))"),
    (sp.Mul(-1, x, evaluate=False), "neg(x)"),
    (sp.Mul(x, sp.Pow(y, -1), z, evaluate=False), "div(mul(x, z), y)"),
    (x + y + z, "add(add(x, y), z)"),
    (sp.Pow(sp.E, -x, evaluate=False), "exp(neg(x))"),
    (sp.Mul(x, sp.Pow(sp.E, -1, evaluate=False), evaluate=False), "mul(x, 0.367879)"),
    (sp.Mul(x, sp.Pow(y, sp.Rational(-3, 2)), evaluate=False), "div(x, pow(y, 1.5))"),
    (sp.Mul(sp.pi, x, evaluate=False), "mul(3.14159, x)"),
    (sp.Pow(x, sp.Float("-1e-400"), evaluate=False), "div(1, pow(x, 0))"),
])
def test_structure(expr, shape):
    assert render(from_sympy(expr)) == shape


def test_heaviside_at_zero_follows_sympy():
    for expr, want in [(sp.Heaviside(x), 0.5), (sp.Heaviside(x, 0.3), 0.3),
                       (HEAVISIDE_1, 0.5)]:
        assert interpret(from_sympy(expr), {"x": 0.0})[0] == want == float(expr.subs(x, 0))


def test_shared_subtree_built_once():
    trace = from_sympy(sp.sin(x * y) + sp.cos(x * y))
    assert trace.op_counts() == {"input": 2, "mul": 1, "sin": 1, "cos": 1, "add": 1}


def test_shared_nodes_visited_once(monkeypatch):
    # A DAG 20 levels deep whose tree has 2**20 leaves: each distinct node must be
    # visited once (x, 1, and a Mul and an Add per level).
    e = x
    with evaluate(False):
        for _ in range(20):
            e = sp.Add(sp.Mul(e, e), 1)
    visits = []   # the nodes built, each once it is expanded (its children pushed)
    real_how = from_sympy_module._how_to_build
    monkeypatch.setattr(from_sympy_module, "_BUILD_BY_CLASS", {})
    monkeypatch.setattr(from_sympy_module, "_how_to_build",
                        lambda n, builder: (lambda conv, node: (visits.append(node), real_how(n, builder)(conv, node))[1]))
    trace = from_sympy(e)
    assert len(visits) == 2 + 2 * 20
    assert trace.size == 2 * 20
    want = 0.3
    for _ in range(20):
        want = want * want + 1
    assert interpret(trace, {"x": 0.3})[0] == pytest.approx(want)


def test_griewank_example():
    x1, x2 = sp.symbols("x1 x2")
    trace = from_sympy((sp.sin(x1 / x2) + x1 / x2 - sp.exp(x2)) * (x1 / x2 - sp.exp(x2)))
    assert trace.size == 6
    assert sorted(ins.op for ins in trace.instrs if ins.op != "input") == \
        ["add", "div", "exp", "mul", "sin", "sub"]
    assert trace.input_names == ("x1", "x2")
    assert interpret(trace, {"x1": 1.5, "x2": 0.5})[0] == pytest.approx(2.016646669, abs=1e-9)


@pytest.mark.slow
def test_deep_expression_converts():
    e = x
    for _ in range(100_000):
        e = sp.sin(e, evaluate=False)
    trace = from_sympy(e)
    assert len(trace.instrs) == 100_001 and trace.size == 100_000
    want = 0.7
    for _ in range(100_000):
        want = math.sin(want)
    assert interpret(trace, {"x": 0.7})[0] == pytest.approx(want, rel=1e-12)


def test_unsupported_node_message():
    with pytest.raises(ConversionError) as err:
        from_sympy(sp.zeta(x + 1))
    assert str(err.value) == "unsupported SymPy node 'zeta' (in zeta(x + 1))"
    assert isinstance(err.value, ExprcError)


f = sp.Function("f")


@pytest.mark.parametrize("expr, node", [
    (sp.sin(1 + sp.Piecewise((x, x > 0), (sp.zeta(x), True))), "zeta"),
    (sp.Integral(x ** 2, x), "Integral"),
    (sp.Derivative(f(x), x), "Derivative"),
    (f(x) + 1, "f"),
    (sp.I * x, "ImaginaryUnit"),
    (sp.zoo, "ComplexInfinity"),
    (sp.besselj(0, x), "besselj"),
    (sp.LambertW(x), "LambertW"),
])
def test_unsupported_nodes_are_named(expr, node):
    with pytest.raises(ConversionError, match=f"unsupported SymPy node '{node}' \\(in "):
        from_sympy(expr)


def test_shown_expression_is_truncated():
    big = sp.Integral(sum(sp.sin(k * x) for k in range(1, 40)), x)
    with pytest.raises(ConversionError) as err:
        from_sympy(big)
    shown = str(err.value).split("(in ", 1)[1]
    assert len(shown) <= 82 and shown.endswith("...)")


def test_unsupported_node_too_deep_to_print():
    e = x
    for _ in range(5000):
        e = sp.sin(e, evaluate=False)
    with pytest.raises(ConversionError, match=r"'zeta' \(in zeta\(\.\.\.\), nested too deeply"):
        from_sympy(sp.zeta(e, evaluate=False))


@pytest.mark.parametrize("obj, message", [
    ("x + 1", "expected a SymPy expression, got str; parse strings"),
    (3.0, "expected a SymPy expression, got float"),
    ([x], "expected a SymPy expression, got list"),
    (sp.Matrix([[x, y]]), "explicit SymPy matrices are not supported"),
    (sp.ImmutableMatrix([[x]]), "explicit SymPy matrices are not supported"),
    (sp.MatrixSymbol("A", 2, 2).I, "unsupported SymPy matrix node 'Inverse'"),
    (x > 0, "relationals and booleans are not supported: x > 0"),
    (sp.And(x > 0, y < 1), "relationals and booleans are not supported"),
    (sp.true, "relationals and booleans are not supported"),
    (sp.log(x, 2, evaluate=False), "log with 2 arguments cannot become log"),
    (sp.Integer(10) ** 400 * x, "number too large for a float"),
])
def test_other_errors(obj, message):
    with pytest.raises(ConversionError, match=message.replace("(", "\\(").replace("+", "\\+")):
        from_sympy(obj)


def test_names_and_source():
    x2, x10 = sp.symbols("x2 x10")
    assert from_sympy(x10 + x2).input_names == ("x2", "x10")
    assert from_sympy(x + z).output_names == ("y",)
    assert from_sympy(x + y).output_names == ("f",)
    assert from_sympy(y * sp.Symbol("f")).output_names == ("out",)
    assert from_sympy(x, source="x").source == "x"
    assert from_sympy(sp.pi).input_names == ()


# -- to_sympy -------------------------------------------------------------------

ROUND_TRIP_OPS = [name for name, op in ops.OPS.items()
                  if name not in ("input", "const", "copy") and op.elementwise]
FRACTIONS = (0.3, 0.55, 0.85)   # where in each domain interval to sample (avoids 0 kinks)


@pytest.mark.parametrize("name", ROUND_TRIP_OPS)
def test_one_op_round_trip(name):
    op = ops.OPS[name]
    b = Builder()
    args = [b.input(f"a{k}") for k in range(op.arity)]
    trace = trace_from_builder(b, [("out", b.apply(name, *args))])
    (expr,) = to_sympy(trace)
    assert {s.name for s in expr.free_symbols} <= set(trace.input_names)
    for i in range(len(FRACTIONS)):
        point = {}
        for k in range(op.arity):
            # add/sub/mul give one interval for both arguments: reuse the last one.
            lo, hi = op.domain[min(k, len(op.domain) - 1)]
            frac = FRACTIONS[(i + k) % len(FRACTIONS)]   # args differ: no ties in maximum
            point[f"a{k}"] = lo + frac * (hi - lo)
        got = interpret(trace, point)[0]
        np.testing.assert_allclose(got, sympy_value(expr, point), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("expr", TABLE, ids=[str(e) for e in TABLE])
def test_from_sympy_then_to_sympy(expr):
    (back,) = to_sympy(from_sympy(expr))
    np.testing.assert_allclose(sympy_value(back, POINT), sympy_value(expr, POINT), rtol=1e-12)


def test_constants():
    assert sympy_number(2.0) == 2 and isinstance(sympy_number(2.0), sp.Integer)
    assert sympy_number(-1.5) == sp.Rational(-3, 2)
    assert isinstance(sympy_number(0.1), sp.Float) and float(sympy_number(0.1)) == 0.1
    assert float(sympy_number(1 / 3)) == 1 / 3
    assert sympy_number(1e300) == sp.Float(1e300) and float(sympy_number(1e300)) == 1e300
    assert sympy_number(math.inf) is sp.oo and sympy_number(-math.inf) == -sp.oo
    assert sympy_number(math.nan) is sp.nan


def test_diff_of_converted_trace_is_clean():
    b = Builder()
    xv = b.input("x")
    trace = trace_from_builder(b, [("y", b.add(b.pow(xv, 2.0), b.pow(xv, 0.5)))])
    (expr,) = to_sympy(trace)
    assert sp.diff(expr, x) == 2 * x + 1 / (2 * sp.sqrt(x))


def test_griewank_derivative_oracle():
    x1, x2 = sp.symbols("x1 x2", real=True)
    g = (sp.sin(x1 / x2) + x1 / x2 - sp.exp(x2)) * (x1 / x2 - sp.exp(x2))
    (back,) = to_sympy(from_sympy(g))
    assert sp.simplify(sp.diff(back, x1) - sp.diff(g, x1)) == 0


def test_dotted_names_and_several_outputs():
    b = Builder()
    u, v = b.input("x1.dot"), b.input("x1")
    trace = trace_from_builder(b, [("y", b.mul(u, b.cos(v))), ("y.dot", b.copy(u))])
    first, second = to_sympy(trace)
    dot, plain = sp.Symbol("x1.dot", real=True), sp.Symbol("x1", real=True)
    assert first == dot * sp.cos(plain)
    assert second == dot


def test_array_traces_are_refused():
    b = Builder()
    trace = b.finish([("y", b.sin(b.input("v", shape=(3,))))])
    with pytest.raises(ConversionError, match="scalar traces only"):
        to_sympy(trace)


def test_deep_trace_converts_unevaluated():
    b = Builder()
    v = b.input("x")
    for _ in range(10_000):
        v = b.sin(v)
    (expr,) = to_sympy(trace_from_builder(b, [("y", v)]), evaluate=False)
    depth = 0
    while expr.args:
        assert expr.func is sp.sin
        expr, depth = expr.args[0], depth + 1
    assert depth == 10_000 and expr == sp.Symbol("x", real=True)


def test_a_long_list_of_sympy_expressions_prints_only_what_a_header_shows():
    """frontend.SOURCE_SHOWN: entries past it are converted without being printed (the
    printer was most of the front end's time on the pendulum) and shown as "..."."""
    from exprcompiler import frontend
    exprs = [sp.sin(x) ** k + sp.cos(y) * (x + k) for k in range(1, 40)]
    trace = frontend.to_trace(exprs)
    parts = trace.source.split("; ")
    assert parts[-1] == "..." and 1 < len(parts) < len(exprs)
    assert parts[:-1] == [sp.sstr(e, order="none") for e in exprs[:len(parts) - 1]]   # (unsorted)
    assert frontend.SOURCE_SHOWN < len("; ".join(parts[:-1])) <= frontend.SOURCE_SHOWN + len(parts[-2]) + 2
    assert len(trace.outputs) == len(exprs)   # every entry is still compiled
    short = frontend.to_trace(exprs[:2])
    assert short.source == "; ".join(sp.sstr(e, order="none") for e in exprs[:2])
