"""The front end's small-size paths make what the general ones make (issue 14's fixed
costs at 10-10³ operations):

* parse/sympy_columns.ColumnBuilder.trace below its SMALL instructions reads the
  converted expression in Python (_small_trace) and holds the trace's instructions as
  tuples: the same instructions, labels, outputs, inputs and columns (dtypes, values,
  read-only) as its NumPy finish, whose instructions are columns (ColumnInstrs);
* trace/builder_load.load below its SMALL instructions (now 400) keys the ops in
  Python: the same builder as its NumPy path, on front-end traces of 150-400
  instructions, which took the NumPy path before.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_random import SETTINGS, build, recipes

from exprcompiler.bench.suite_scaling import deep_program, random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.parse import from_sympy as fs
from exprcompiler.parse import sympy_columns
from exprcompiler.passes import grad_reverse
from exprcompiler.trace import builder_load, ir
from exprcompiler.trace.column_instrs import ColumnInstrs
from exprcompiler.trace.ir_trace import instructions
from exprcompiler.trace.to_sympy import to_sympy

x, y, z = sp.symbols("x y z")
x2, x10 = sp.symbols("x2 x10")


def _converted(expr, small: bool):
    """from_sympy(expr) with the ColumnBuilder's small path (or its NumPy finish) at
    every size; None where the converter declines to the Builder."""
    saved = sympy_columns.SMALL
    sympy_columns.SMALL = 1 << 40 if small else 0
    made = []
    real = sympy_columns.ColumnBuilder.trace

    def spy(self, *args, **kwargs):
        made.append(True)
        return real(self, *args, **kwargs)
    sympy_columns.ColumnBuilder.trace = spy
    try:
        trace = fs.from_sympy(expr, source="s")
    finally:
        sympy_columns.SMALL = saved
        sympy_columns.ColumnBuilder.trace = real
    return trace if made else None


def _same_trace(small, general) -> None:
    assert type(instructions(small)) is tuple and type(instructions(general)) is ColumnInstrs
    assert repr(small.instrs) == repr(general.instrs)   # (repr: a NaN constant is not equal to itself)
    assert [tuple(map(type, ins)) for ins in small.instrs] == [tuple(map(type, ins)) for ins in general.instrs]
    assert list(small.labels) == list(general.labels)
    assert small.outputs == general.outputs and small.inputs == general.inputs
    assert small.source == general.source and small._all_live and general._all_live
    assert small._columns is not None
    for a, b in zip(small._columns, general._columns):
        assert a.dtype == b.dtype and np.array_equal(a, b)
        assert not a.flags.writeable and a.flags.owndata


def _check(expr) -> None:
    small, general = _converted(expr, True), _converted(expr, False)
    assert (small is None) == (general is None)
    if small is not None:
        _same_trace(small, general)


@pytest.mark.parametrize("expr", [
    x,                                          # an input alone
    sp.Float(2.5) + 0 * x,                      # (SymPy: a constant)
    sp.sin(x) * y + 1,
    x10 * x2 + sp.exp(x2 - x10) / (1 + x10 ** 2),   # inputs in natural order, not built order
    sp.Piecewise((x * y, x < y), (sp.sin(y), True)) + z,   # where: three arguments
    sp.Piecewise((x, x > 0), (-x, True)),
    sp.Max(x, y, z) - sp.Min(x, 2 * y),
    (x - y) ** 2 + (x - y) ** 3 - sp.Rational(1, 3) * sp.cos(x - y),
    x * y - x * y + z,                          # (SymPy: z)
    sp.sqrt(x ** 2 + y ** 2) * sp.log(1 + x) - 3 * x ** -2,
], ids=str)
def test_small_trace_is_the_columns_trace_on_node_kinds(expr):
    _check(expr)


def test_small_trace_leaves_dead_code_out():
    # (the converter builds 7 instructions for this one, of which the trace keeps 5;
    # on the bench's DAGs above, 2-11 of 16-136 are dead)
    expr = x - y + sp.sin(x - y)
    _check(expr)
    small = _converted(expr, True)
    assert len(small) == 5 and [ins.op for ins in small.instrs].count("neg") == 0


@pytest.mark.parametrize("n_ops", [5, 10, 30, 60, 100])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_trace_on_the_bench_dags(n_ops, seed):
    expr, = to_sympy(to_trace(random_dag(n_ops, seed)), evaluate=False)
    _check(expr)


@settings(max_examples=60, **SETTINGS)
@given(recipe=recipes(max_steps=16))
def test_small_trace_on_random_recipes(recipe):
    trace = build(recipe)
    for flag in (True, False):
        try:
            expr, = to_sympy(trace, evaluate=flag)
            small = _converted(expr, True)
        except Exception:   # (SymPy's evaluation, a head not converted: test_sympy_columns')
            continue
        general = _converted(expr, False)
        assert (small is None) == (general is None)
        if small is not None:
            _same_trace(small, general)


def test_small_trace_is_taken_below_small_only():
    expr, = to_sympy(to_trace(random_dag(10, 1)), evaluate=False)
    assert type(instructions(fs.from_sympy(expr))) is tuple
    expr, = to_sympy(to_trace(random_dag(600, 1)), evaluate=False)
    assert type(instructions(fs.from_sympy(expr))) is ColumnInstrs


@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 10_000), n_ops=st.integers(2, 80))
def test_small_sympy_gradients_are_the_general_ones(seed, n_ops):
    """Downstream of the small path: the gradient of its trace is the gradient of the
    columns' trace (the same instructions, labels, outputs)."""
    expr, = to_sympy(to_trace(random_dag(n_ops, seed)), evaluate=False)
    small, general = _converted(expr, True), _converted(expr, False)
    a, b = grad_reverse(small), grad_reverse(general)
    assert repr(a.instrs) == repr(b.instrs) and list(a.labels) == list(b.labels) and a.outputs == b.outputs


# -- builder_load.SMALL: the loop now reads traces of 150-400 instructions --------------

def _builder_state(b):
    return (list(b.instrs), list(b.labels), bytes(b._flags), list(b._memo.items()), dict(b._inputs),
            dict(b._copies), dict(b._consts), dict(b._scalar_consts), b._loaded, b._loaded_outputs)


@pytest.mark.parametrize("text", [random_dag(200, 4), random_dag(330, 5), deep_program(300)],
                         ids=["dag200", "dag330", "deep300"])
def test_load_of_mid_sized_traces_is_the_numpy_load(text):
    states = []
    for small in (True, False):
        trace = to_trace(text)
        assert 150 <= len(trace) < builder_load.SMALL
        saved = builder_load.SMALL
        builder_load.SMALL = saved if small else 0
        try:
            b = ir.Builder(pull_negations=True)
            assert builder_load.load(b, trace)
        finally:
            builder_load.SMALL = saved
        states.append(_builder_state(b))
    assert states[0] == states[1]
