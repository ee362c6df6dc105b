"""The per-instruction gradient's shortcuts build what they stand for.

passes.reverse keeps each op's edges for the process (by op object) and counts a
trace's op kinds from its columns; finish reads a builder's new instructions into
columns of the length their ops' arities say; a loaded builder's label list is made
from the label columns. Each gives what the plain computation gives, and falls back
where its assumption fails (an op replaced in the table, an instruction with more or
fewer arguments than its op takes)."""

from __future__ import annotations

import dataclasses

import numpy as np

from exprcompiler import ops
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, reverse
from exprcompiler.passes.replay import replay
from exprcompiler.trace import finish
from exprcompiler.trace.columns import made
from exprcompiler.trace.ir import Builder, Instr, Label, Trace
from exprcompiler.trace.labels import LOADED, NONE, as_labels


def test_edges_are_kept_per_op_and_a_replaced_op_gets_its_own():
    mul = ops.OPS["mul"]
    first = reverse._edges(mul, True, 2)
    assert reverse._edges(mul, True, 2) is first   # (kept: made once a process)
    assert [j for j, _, _ in first] == [1, 0] and all(vjp is None for _, _, vjp in first)
    general = reverse._edges(mul, False, 2)   # (every edge through the VJP)
    assert [(j, p, v) for j, p, v in general] == [(1, None, mul.vjp), (0, None, mul.vjp)]
    # an op replaced in the table is another object: its own partials, not the kept ones
    swapped = dataclasses.replace(mul, partials=(mul.partials[1], mul.partials[0]))
    edges = reverse._edges(swapped, True, 2)
    assert [p for _, p, _ in edges] == [mul.partials[0], mul.partials[1]]
    assert reverse._edges(mul, True, 2) is first
    assert reverse._edges(ops.OPS["input"], True, 0) == ()


def test_a_gradient_with_a_replaced_op_uses_its_partials(monkeypatch):
    trace = to_trace("sin(x) * y")
    before = grad_reverse(trace)
    # sin's partial doubled: the sweep must not use the edges it kept for the old op
    sin = ops.OPS["sin"]
    monkeypatch.setitem(ops.OPS, "sin", dataclasses.replace(
        sin, partials=(lambda b, g, x, out: b.mul(2.0, sin.partials[0](b, g, x, out)),)))
    doubled = grad_reverse(to_trace("sin(x) * y"))
    def twos(trace):
        return [ins for ins in trace.instrs if ins.op == "const" and ins.attrs == (("value", 2.0),)]
    assert len(doubled.instrs) > len(before.instrs) and twos(doubled) and not twos(before)


def test_op_kinds_from_columns_and_from_tuples():
    for text in ("sin(x) * y + exp(x * y)", "x + 1", "x"):
        trace = to_trace(text)   # (a front end's trace keeps its columns)
        expected = len({ins.op for ins in trace.instrs})
        assert reverse._kinds(trace) == expected
        bare = Trace(tuple(trace.instrs), tuple(trace.labels), trace.outputs)   # (no columns kept)
        assert reverse._kinds(bare) == expected


def _builder_with(instrs: list) -> list:
    """Inputs x, y, then `instrs` as the builder's plain tuples."""
    b = Builder()
    b.input("x"), b.input("y")
    return list(b.instrs) + instrs


def test_built_columns_are_the_instructions_columns():
    instrs = _builder_with([("mul", (0, 1), (), ()), ("sin", (2,), (), ()), ("copy", (3,), (), ()),
                            ("add", (3, 4), (), ())])
    for start in (0, 2, 4, 6):
        got, want = finish._built_columns(instrs, start), made(instrs[start:])
        for column in ("code", "counts", "flat"):
            assert np.array_equal(getattr(got, column), getattr(want, column))


def test_built_columns_fall_back_where_an_instruction_has_another_arity():
    # more arguments than the op's arity (the length the counts say would drop the
    # last ones) or fewer: made() reads every instruction as it is. (The Builder makes
    # every instruction of its op's arity: finish checks the total only.)
    for extra in ([("sin", (0, 1), (), ())], [("mul", (0,), (), ())], [("mul", (0, 1, 1), (), ())]):
        instrs = _builder_with([("mul", (0, 1), (), ())] + extra)
        got, want = finish._built_columns(instrs, 2), made(instrs[2:])
        for column in ("code", "counts", "flat"):
            assert np.array_equal(getattr(got, column), getattr(want, column))


def test_placeholders_mark_the_labelled():
    labels = as_labels([Label("v", -1, base="x"), None, Label("v", 1), Label("bar", 2), None,
                        Label("v", 3, tag="t")])
    held = labels.placeholders()
    assert held == [None if k == NONE else LOADED for k in labels.kinds]
    assert [lab is LOADED for lab in held] == [True, False, True, True, False, True]
    assert as_labels([]).placeholders() == []
    primal = to_trace("sin(x) * 2.0 + x")
    b = Builder(pull_negations=True)
    replay(b, primal)
    assert b.labels == [None if lab is None else LOADED for lab in primal.labels]
    assert isinstance(b.instrs[0], Instr)
