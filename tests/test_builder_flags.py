"""The builder's per-variable flags (identities.CONST, NEG, COPY, SHAPED), which let its
fast path skip constant folding and the identities, say what the builder's instructions
say; the bulk labels of a sweep (replay.derived_labels) are `derived`'s; and the
adjoint sweep builds the same trace whether its caller passes `taken` or not."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp, jacobian
from exprcompiler.passes.replay import derived, derived_labels, labels_of
from exprcompiler.randexpr import random_program
from exprcompiler.trace import ir
from exprcompiler.trace.identities import CONST, COPY, NEG, SHAPED


def _flags_as_instructions_say(b: ir.Builder) -> list[int]:
    out = []
    for v, ins in enumerate(b.instrs):
        src = b.source_of(v)
        expected = (CONST if b.const_value(v) is not None else 0) | (COPY if src != v else 0) \
            | (NEG if b.instrs[src].op == "neg" else 0) | (SHAPED if ins.shape else 0)
        out.append(expected)
    return out


def _check_flags(b: ir.Builder) -> None:
    assert len(b._flags) == len(b.instrs) == len(b.labels)
    assert list(b._flags) == _flags_as_instructions_say(b)
    # sources and constants are what copies and constant instructions name
    for v, ins in enumerate(b.instrs):
        if ins.op == "copy":
            assert b.source_of(v) == b.source_of(ins.args[0])
            assert b.const_value(v) == b.const_value(ins.args[0]) or b.const_value(v) != b.const_value(v)
        elif ins.op == "const":
            assert b.source_of(v) == v and repr(b.const_value(v)) == repr(ins.value)
        else:
            assert b.source_of(v) == v and b.const_value(v) is None


def test_flags_of_leaves_copies_negations_and_tensors():
    b = ir.Builder(pull_negations=True)
    x, y = b.input("x"), b.input("y")
    m = b.input("m", (2, 3))
    c = b.const(2.0)
    nx = b.neg(x)
    named = b.name(nx, ir.Label("v", 7))          # a copy of a negation
    named_c = b.name(c, ir.Label("v", 8))         # a copy of a constant
    s = b.sin(b.mul(named, y))                    # -(x*y) pulled out, then sin
    b.add(named_c, x)
    b.mul(m, x)
    b.add(b.sum(m), named)
    _check_flags(b)
    assert b._flags[named] == NEG | COPY and b._flags[named_c] == CONST | COPY
    assert b._flags[m] == SHAPED and b._flags[s] == 0


@contextmanager
def _finished_builders():
    """The list of every builder finished inside the block."""
    builders = []
    original = ir.Builder.finish

    def finish(self, *args, **kwargs):
        builders.append(self)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(ir.Builder, "finish", finish)
        yield builders


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(5, 60))
def test_flags_stay_in_step_through_a_gradient_and_an_hvp(seed, size):
    # every builder a front end and the derivative passes make, checked at its finish
    with _finished_builders() as builders:
        trace = to_trace(random_program(size, seed=seed))
        if trace.input_names:
            grad_reverse(trace)
            hvp(trace)
    assert builders
    for b in builders:
        _check_flags(b)


def test_flags_of_a_tensor_jacobian():
    with _finished_builders() as builders:
        trace = to_trace("sum(sin(x) * -x) + sum(stack(u, -u * v, axis=1)) * 2.0",
                         shapes={"x": (3,), "u": (3,), "v": (3,)})
        grad_reverse(trace)
        jacobian(to_trace("sin(x) * -u + v", shapes={"x": (3,), "u": (3,), "v": (3,)}), mode="reverse")
    for b in builders:
        _check_flags(b)


@pytest.mark.parametrize("tag", [None, "", "x1"])
def test_derived_labels_are_derived(tag):
    grad = grad_reverse(to_trace("sin(x*y) + exp(-x) / y"))
    labels = list(grad.labels) + [None, ir.Label("v", 0, base="x"), ir.Label("v", 3, tag="t"),
                                  ir.Label("bar", 2), ir.Label("v", -1, base="y")]
    for taken in (set(), labels_of(grad), {("bar", 3, tag or None)}):
        assert derived_labels(labels, "bar", tag, taken) == [derived(lb, "bar", tag, taken) for lb in labels]
        assert derived_labels(labels, "dot", tag, taken) == [derived(lb, "dot", tag, taken) for lb in labels]


def test_labels_of_holds_what_a_derived_label_could_clash_with():
    primal = to_trace("sin(x*y) + exp(-x) / y")
    assert labels_of(primal) == set()   # primal labels only: no tangent or adjoint is named v_k
    grad = grad_reverse(primal)
    taken = labels_of(grad)
    assert taken and all(kind != "v" for kind, _, _ in taken)
    assert {("bar", lb.index, lb.tag) for lb in grad.labels if lb is not None and lb.kind == "bar"} <= taken


def test_a_stage_leaves_its_trace_in_the_oldest_generation():
    # gc_paused hands a stage's survivors to the oldest generation, so the young
    # collections after it do not walk (and promote) every instruction of the trace
    from exprcompiler.trace.ir import gc_paused

    @gc_paused()
    def stage():
        b = ir.Builder()
        x = b.input("x")
        for k in range(2000):
            x = b.sin(b.mul(x, b.input(f"y{k}")))
        return b.finish([("f", x)])

    was_enabled = gc.isenabled()
    gc.enable()   # (as a program runs: the stage pauses it and gives it back)
    try:
        trace = stage()
    finally:
        if not was_enabled:
            gc.disable()
    young = {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}
    assert not any(id(ins) in young for ins in trace.instrs)
    assert any(id(ins) in {id(o) for o in gc.get_objects(2)} for ins in trace.instrs)
