"""Builder.plain_tuples: a builder whose last finish holds its new instructions as
columns (reverse.vjp) appends them as plain tuples, not Instr. The identities and
the general path read them by position and build what they build from Instr; every
instruction a finished trace keeps as a tuple is an Instr, whichever way the finish
goes (nothing moved, renumbered, held as columns after the first moved one)."""

from __future__ import annotations

import math

import pytest

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, reverse
from exprcompiler.randexpr import random_program
from exprcompiler.trace import ir
from exprcompiler.trace.column_instrs import ColumnInstrs


def _build(b: ir.Builder, plain: bool):
    """A few operations after the inputs, some through the identities (negations,
    a product by -1.0 or a power of two, copies), one dead; plain tuples after the
    inputs if `plain`."""
    x, y, z = b.input("x"), b.input("y"), b.input("z", (3,))
    if plain:
        b.plain_tuples()
    s = b.sin(x)
    m = b.mul(s, y)
    n = b.neg(m)
    nn = b.neg(n)                      # --m: the identity reads the plain negation
    c = b.name(b.mul(2.0, m), ir.Label("bar", 3))
    d = b.mul(0.5, c)                  # 0.5·(2·m): the identity reads the plain product
    e = b.add(b.mul(-1.0, d), nn)      # -d + m -> m - d
    f = b.sum(b.mul(e, b.broadcast_to(b.cos(x), z)))   # the general path reads the plain shapes
    b.exp(y)                           # dead
    return [("f", b.add(f, b.cos(n)))]


@pytest.mark.parametrize("last, keep_columns", [(False, False), (True, False), (True, True)])
def test_plain_tuples_finish_as_the_instrs_would(last, keep_columns):
    plain = ir.Builder(pull_negations=True)
    outputs = _build(plain, True)
    assert type(plain.instrs[-1]) is tuple and type(plain.instrs[3]) is tuple   # (appended as plain tuples)
    assert all(type(ins) is ir.Instr for ins in plain.instrs[:3])
    instr = ir.Builder(pull_negations=True)
    assert _build(instr, False) == outputs
    assert all(type(ins) is ir.Instr for ins in instr.instrs)
    assert plain.instrs == instr.instrs and plain.labels == instr.labels
    traces = [b.finish(outputs, last=last, keep_columns=keep_columns) for b in (plain, instr)]
    got = list(traces[0].instrs)
    assert got == list(traces[1].instrs) and all(type(ins) is ir.Instr for ins in got)
    assert list(traces[0].labels) == list(traces[1].labels) and traces[0].outputs == traces[1].outputs


def test_plain_tuples_nothing_moved_are_made_instr():
    b = ir.Builder()
    x = b.input("x")
    b.plain_tuples()
    out = b.sin(b.mul(x, x))
    assert type(b.instrs[out]) is tuple
    trace = b.finish([("f", out)], last=True, keep_columns=True)
    assert type(trace._instrs) is tuple and all(type(ins) is ir.Instr for ins in trace.instrs)


@pytest.mark.parametrize("family", ["text", "sympy"])
def test_the_gradient_is_the_same_with_and_without_plain_tuples(family, monkeypatch):
    monkeypatch.setattr(reverse, "_BULK_FROM", math.inf)   # (the per-instruction sweep)
    primal = to_trace(random_program(200, seed=3))
    if family == "sympy":
        from exprcompiler.trace.to_sympy import to_sympy
        expr, = to_sympy(primal, evaluate=False)
        primal = to_trace(expr)
    assert len(primal) >= reverse._COLUMNS_FROM
    made = []
    plain_tuples = ir.Builder.plain_tuples
    monkeypatch.setattr(ir.Builder, "plain_tuples", lambda b: made.append(len(b.instrs)) or plain_tuples(b))
    held = grad_reverse(primal)
    assert made and isinstance(held._instrs, ColumnInstrs)
    # the kept head (the primal and the sweep's first live instructions) all Instr
    assert len(held._instrs.head) > made[0] and all(type(ins) is ir.Instr for ins in held._instrs.head)
    monkeypatch.setattr(ir.Builder, "plain_tuples", lambda b: None)
    tuples = grad_reverse(primal)
    assert all(type(ins) is ir.Instr for ins in held.instrs)
    assert held.instrs == tuples.instrs and list(held.labels) == list(tuples.labels)
    assert held.outputs == tuples.outputs and held.inputs == tuples.inputs
