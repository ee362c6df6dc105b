"""A last finish that keeps the columns (finish._held_as_columns: the gradient of
reverse._COLUMNS_FROM instructions or more) holds the instructions after the first
one that moves as those columns (column_instrs.ColumnInstrs), not new tuples: the
same trace as the plain definition (test_builder_finish's reference), with columns
that say what its instructions say; a loaded trace's columns are not read again
(vjp hands them to the finish). The gradient (of the text and SymPy front ends'
primals) and its generated code are those of the finish that makes tuples."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.backends import numpy_backend
from exprcompiler.bench.suite_scaling import FAMILIES as SCALING
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, reverse, vjp
from exprcompiler.randexpr import random_program
from exprcompiler.trace import ir
from exprcompiler.trace.column_instrs import ColumnInstrs
from exprcompiler.trace.columns import kept, made

from test_builder_finish import _random_builder, _reference_finish


def _same_columns(trace: ir.Trace) -> bool:
    cols, want = kept(trace), made(trace.instrs)
    return all((got == wanted).all() and len(got) == len(wanted) for got, wanted in zip(cols, want))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**6), loaded=st.booleans(), number=st.booleans(), reorder=st.booleans())
def test_a_last_finish_held_as_columns_is_its_plain_definition(seed, loaded, number, reorder):
    rng = random.Random(seed)
    b, outputs = _random_builder(rng, loaded)
    order = sorted(b._inputs, reverse=True) if reorder else None
    expected = _reference_finish(b, outputs, order, number)
    n = len(b.instrs)
    trace = b.finish(outputs, input_order=order, number=number, last=True, keep_columns=True)
    # (where nothing moves, the builder's tuples as they are)
    assert isinstance(trace._instrs, ColumnInstrs) or len(trace) == n
    assert _same_columns(trace)
    assert (list(trace.instrs), list(trace.labels), list(trace.outputs), list(trace.inputs)) == \
        tuple(map(list, expected))
    assert b.instrs == [] and not b._inputs


def test_what_the_columns_cannot_say_is_held_as_tuples():
    # a matrix input, its sine and a sum over an axis (shapes, options), a constant
    # and an input declared late (options), a dead instruction first: every
    # instruction moves
    b = ir.Builder()
    m = b.input("m", (2, 3))
    b.cos(b.input("d"))   # (dead)
    s = b.sin(b.apply("sum", b.apply("sum", b.sin(m), axis=0)))
    y = b.input("y")
    out = b.add(b.mul(s, y), b.const(2.5))
    expected = _reference_finish(b, [("f", out)])
    trace = b.finish([("f", out)], last=True, keep_columns=True)
    assert isinstance(trace._instrs, ColumnInstrs) and trace._instrs.head == ()
    held = trace._instrs
    assert sorted(ins.op for ins in held.fixed.values()) == ["const", "input", "input", "input", "sin", "sum"]
    assert [held[i] for i in range(len(held))] == expected[0] == list(trace.instrs)
    assert list(trace.outputs) == expected[2] and list(trace.inputs) == expected[3] and _same_columns(trace)


def test_a_loaded_traces_columns_are_not_read_again(monkeypatch):
    primal = to_trace(random_program(200, seed=5))
    assert len(primal) >= reverse._COLUMNS_FROM and kept(primal) is not None
    read = []
    monkeypatch.setattr("exprcompiler.trace.finish.made", lambda instrs: read.append(len(instrs)) or made(instrs))
    grad = vjp(primal)   # (a cotangent input: something built after the loaded trace moves)
    assert isinstance(grad._instrs, ColumnInstrs) and _same_columns(grad)
    assert read == [] and kept(primal) is None   # (the load took them: not held on the primal)
    # a trace with no columns kept: read whole
    primal = to_trace(random_program(200, seed=5))
    object.__setattr__(primal, "_columns", None)
    read.clear()   # (the front end's finish read its own)
    grad = vjp(primal)
    assert isinstance(grad._instrs, ColumnInstrs) and _same_columns(grad) and len(read) == 1 and read[0] > len(primal)


def _primal(family: str, size: int) -> ir.Trace:
    if family == "sympy":   # (the SymPy front end's primal, held as columns itself)
        from exprcompiler.trace.to_sympy import to_sympy
        expr, = to_sympy(to_trace(SCALING["random DAG"](size)), evaluate=False)
        return to_trace(expr)
    return to_trace(SCALING[family](size))


@pytest.mark.parametrize("family, size", [("random DAG", 300), ("random DAG", 1000), ("deep", 400), ("sympy", 400)])
def test_the_gradient_held_as_columns_is_the_gradient(family, size, monkeypatch):
    monkeypatch.setattr(reverse, "_BULK_FROM", math.inf)   # (the per-instruction sweep)
    primal = _primal(family, size)
    assert len(primal) >= reverse._COLUMNS_FROM
    held = grad_reverse(primal)
    monkeypatch.setattr(reverse, "_COLUMNS_FROM", math.inf)
    tuples = grad_reverse(_primal(family, size))
    assert isinstance(held._instrs, ColumnInstrs) and type(tuples._instrs) is tuple
    # generate reads the columns (and takes them off the trace); the code is the same
    assert _same_columns(held)
    code = [str(numpy_backend.generated(grad, func_name="g")[0]) for grad in (held, tuples)]
    assert code[0] == code[1]
    assert held.instrs == tuples.instrs and list(held.labels) == list(tuples.labels)
    assert held.outputs == tuples.outputs and held.inputs == tuples.inputs
    # and a second differentiation of it
    assert vjp(held).instrs == vjp(tuples).instrs
