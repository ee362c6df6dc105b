"""to_sympy of comparisons and `where` inside conditions (trace/sympy_piecewise.py).

SymPy folds a Piecewise inside a Piecewise's condition and rewrites the fold as an ITE
through its inequality solver: ((sin(x) < 0.5) + x < 1) * x took 0.15-0.5 s, a sum of
six comparisons compared 4 s (the fold doubles with each one), a random recipe minutes;
with evaluation off it recursed without end (reported as "trace too deep"). Each case
here converts within a CPU budget, evaluated and not, and stays the trace's function:
its value at points, sympy.diff's derivative against reverse mode's gradient, and
g.latex() of it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import within

from exprcompiler import compile_grad
from exprcompiler.frontend import to_trace
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.trace import interpret
from exprcompiler.trace.ir import Builder, trace_from_builder
from exprcompiler.trace.sympy_piecewise import Piecewise as KeptPiecewise
from exprcompiler.trace.to_sympy import to_sympy

# CPU seconds per conversion: each case takes 1-20 ms (0.5 s at the DAG depth 80
# below); HEAD's fold took 0.15-4 s on the same cases, past this on the nastier ones.
BUDGET = 2.0


SIX = " + ".join(f"({f}({k} * x) < {c})" for k, (f, c) in enumerate(
    [("sin", 0.5), ("cos", 0.2), ("tan", 1.0), ("sin", 0.1), ("cos", 0.3), ("sin", -0.4)], 1))
NESTED = [
    "((sin(x) < 0.5) + x < 1) * x",                                       # the reproducer
    "((sin(x) < 0.5) + (cos(x) < 0.2) + (tan(x) < 1) < 2) * x",
    f"({SIX} < 3) * x + ({SIX} >= 2) * y",                                 # 2^6 pieces to fold
    "where(where(where(sin(x) < 0.5, cos(x), 1) < 0.3, sin(x), 2) > 0.1, x, 3) * y",
    "((((sin(x) < 0.5) * cos(x) < 0.2) + sin(x) > 0.1) * tan(x) < 0.5) * x + y",
    "where((sin(x) < 0.5) != (cos(y) > 0.2), x * y, sin(y))",
    "where(sin(x) < 0.5, where(cos(y) < 0.5, sin(x), cos(x)), tan(x)) + x < where(tan(y) > 1, x, sin(y))",
    "where((x < 1) * (sin(y) < 0.5), cbrt(where(x < y, sin(x) - 2, y)), x) < 0.5 * y",
    "where(sin(x + y) < 0.5, x, y) == where(cos(x) > 0.1, x, y)",
    # from an explore run: `!=` asked SymPy whether gamma(...) is zero, which on the
    # unevaluated tree recursed to Python's limit
    "t = sigmoid(x)\nu = (t < y) != gamma(0.5 + sigmoid(t))\n(t <= y) + logaddexp(u, u) - square(u)",
]
POINTS = [{"x": 0.3, "y": -1.1}, {"x": 1.7, "y": 0.45}, {"x": -0.8, "y": 1.9}, {"x": 2.6, "y": -0.35}]


def value(expr, point) -> float:
    """SymPy's value at `point`, 40-digit inputs (exact binary values)."""
    subs = {sp.Symbol(n, real=True): sp.Float(v, 40) for n, v in point.items()}
    return float(expr.xreplace(subs).evalf(30))


@pytest.mark.parametrize("evaluate", [True, False], ids=["evaluated", "unevaluated"])
@pytest.mark.parametrize("text", NESTED)
def test_nested_conditions_convert_promptly_to_the_same_function(text, evaluate):
    trace = to_trace(text)
    with within(BUDGET):
        expr, = to_sympy(trace, evaluate=evaluate)
    assert not expr.has(sp.ITE)
    back = from_sympy(expr)   # (and the forward bridge reads it back)
    for point in POINTS:
        env = {n: point[n] for n in trace.input_names}
        exact = float(interpret(trace, env)[0])
        assert value(expr, env) == pytest.approx(exact, rel=1e-12, abs=1e-300)
        assert float(interpret(back, env)[0]) == pytest.approx(exact, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("text", NESTED)
def test_sympy_diff_of_nested_conditions_is_reverse_modes_gradient(text):
    g = compile_grad(text)
    expr, = to_sympy(to_trace(text))
    with within(BUDGET):
        grads = [sp.diff(expr, sp.Symbol(n, real=True)) for n in g.wrt]
    for point in POINTS:   # (cbrt's sign(u)' is a DiracDelta, 0 away from u == 0)
        _, got = g(*(point[n] for n in g.trace.input_names))
        exact = [value(d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero), point)
                 for d in grads]
        np.testing.assert_allclose(np.ravel(got), exact, rtol=1e-10, atol=1e-300)


def test_latex_of_nested_comparisons_is_prompt_and_typeset():
    g = compile_grad("((sin(x) < 0.5) + (cos(x) < 0.2) < 1) * x")
    with within(BUDGET):
        shown = g.latex()
    text = str(shown)   # comparisons as numbers in Iverson's brackets, not cases in a condition
    assert r"y &= x \left[\left[\sin{\left(x \right)} < \frac{1}{2}\right] + " \
           r"\left[\cos{\left(x \right)} < 0.2\right] < 1\right] \\ " in text
    assert "cases" not in text and "ITE" not in text
    where, = compile_grad("where(x < y, x, 2) * (x < 1)").latex().rows[:1]
    assert where[1] == r"\left[x < 1\right] \left(\begin{cases} x & \text{for}\: x < y \\2 & " \
                       r"\text{otherwise} \end{cases}\right)"
    x = sp.Symbol("x", real=True)
    for point in (0.3, 1.0, 2.0):   # y = x·[s + c < 1]; dy/dx the bracket
        y, dy = (value(e, {"x": point}) for e in shown.exprs)
        bracket = float((np.sin(point) < 0.5) + (np.cos(point) < 0.2) < 1)
        assert (y, dy) == (point * bracket, bracket), x


def test_where_of_a_comparison_reads_its_condition_as_sympys_own_piecewise():
    x, y = sp.symbols("x y", real=True)
    for evaluate in (True, False):
        expr, = to_sympy(to_trace("where(x < y, x, 2 * y)"), evaluate=evaluate)
        assert type(expr) is sp.Piecewise and expr.args[0].cond == (x < y)
        expr, = to_sympy(to_trace("where((x < 1) * (y > 2), x, y)"), evaluate=evaluate)
        assert type(expr) is sp.Piecewise and expr.args[0].cond == sp.And(x < 1, y > 2)
    # a condition that holds a Piecewise keeps it as built (SymPy's class would fold it)
    expr, = to_sympy(to_trace("((sin(x) < 0.5) + x < 1) * x"))
    kept, = [a for a in expr.args if isinstance(a, sp.Piecewise)]
    assert type(kept) is KeptPiecewise and kept.args[0].cond.lhs.has(sp.Piecewise)
    assert sp.diff(kept, x) == 0 and sp.diff(expr, x) == kept


@pytest.mark.parametrize("op", ["lt", "eq", "where", "where_of_lt"])
def test_a_condition_on_a_deep_dag_converts_in_linear_time(op):
    # v doubles as a tree at each level: SymPy's `has` and `replace` on the condition
    # walk 2^40 nodes; the conversion walks the DAG once.
    b = Builder()
    x, y = b.input("x"), b.input("y")
    v = x
    for _ in range(40):
        v = b.div(b.sin(v), b.add(v, y))
    c = {"lt": lambda: b.lt(v, 1.0), "eq": lambda: b.eq(v, y), "where": lambda: b.where(v, x, y),
         "where_of_lt": lambda: b.where(b.lt(b.add(b.lt(x, y), v), 1.0), x, y)}[op]()
    trace = trace_from_builder(b, [("out", b.mul(c, x))])
    for evaluate in (True, False):
        with within(BUDGET):
            to_sympy(trace, evaluate=evaluate)
