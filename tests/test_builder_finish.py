"""Builder.finish (dead-code elimination by use counts, renumbering, sharing what a
bulk load took from a finished trace) and ir_trace.primal_labels give what their
plain definitions give: a reverse liveness sweep and a renumbering instruction by
instruction, Griewank numbers counted one by one."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.passes.replay import replay
from exprcompiler.randexpr import random_program
from exprcompiler.trace import finish as finish_module
from exprcompiler.trace import ir


def _reference_finish(b: ir.Builder, outputs, input_order=None, number=False):
    """Builder.finish as first written: a reverse sweep marks the live variables."""
    n = len(b.instrs)
    live = [False] * n
    for _, v in outputs:
        live[v] = True
    for i in range(n - 1, -1, -1):
        if live[i]:
            for a in b.instrs[i].args:
                live[a] = True
    names = list(b._inputs) if input_order is None else [nm for nm in input_order if nm in b._inputs]
    order = [b._inputs[nm] for nm in names]
    order += [i for i in range(n) if live[i] and i not in order]
    new_index = {old: new for new, old in enumerate(order)}
    instrs = [ir.Instr(ins.op, tuple(new_index[a] for a in ins.args), ins.attrs, ins.shape)
              for ins in map(b.instrs.__getitem__, order)]
    # (label_list: a loaded trace's labels are columns, placeholders in b.labels)
    labels = _reference_primal_labels(instrs) if number else [b.label_list()[i] for i in order]
    return instrs, labels, [(nm, new_index[v]) for nm, v in outputs], [(nm, new_index[b._inputs[nm]]) for nm in names]


def _reference_primal_labels(instrs):
    labels, k_in, k = [], 1 - sum(ins.op == "input" for ins in instrs), 0
    for ins in instrs:
        if ins.op == "input":
            labels.append(ir.Label("v", k_in, base=ins.name))
            k_in += 1
        elif ins.op == "const":
            labels.append(None)
        else:
            k += 1
            labels.append(ir.Label("v", k))
    return labels


def _random_builder(rng: random.Random, loaded: bool) -> tuple[ir.Builder, list]:
    """A builder with dead code, inputs declared late, constants and copies; its
    first part loaded from a finished trace when `loaded`."""
    b = ir.Builder(pull_negations=True)
    if loaded:
        replay(b, to_trace(random_program(rng.randint(1, 12), n_vars=3, seed=rng.randint(0, 999))))
    names = [f"z{k}" for k in range(rng.randint(0, 3))]
    made = list(range(len(b.instrs)))
    for _ in range(rng.randint(1, 40)):
        roll = rng.random()
        if roll < 0.1 or not made:
            made.append(b.input(rng.choice(names + ["w"])))
        elif roll < 0.2:
            made.append(b.const(rng.choice([0.0, -1.0, 2.0, 0.5, 3.0])))
        elif roll < 0.3:
            made.append(b.name(rng.choice(made), ir.Label("v", rng.randint(1, 99))))
        elif roll < 0.6:
            made.append(getattr(b, rng.choice(["sin", "neg", "exp"]))(rng.choice(made)))
        else:
            made.append(getattr(b, rng.choice(["add", "mul", "sub"]))(rng.choice(made), rng.choice(made)))
    outputs = [(f"y{k}", rng.choice(made)) for k in range(rng.randint(1, 3))]
    return b, outputs


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**6), loaded=st.booleans(), number=st.booleans(), reorder=st.booleans())
def test_finish_is_its_plain_definition(seed, loaded, number, reorder):
    rng = random.Random(seed)
    b, outputs = _random_builder(rng, loaded)
    order = sorted(b._inputs, reverse=True) if reorder else None
    expected = _reference_finish(b, outputs, order, number)
    trace = b.finish(outputs, input_order=order, number=number)
    assert (list(trace.instrs), list(trace.labels), list(trace.outputs), list(trace.inputs)) == \
        tuple(map(list, expected))


def test_finish_shares_the_instructions_before_the_first_that_moves():
    primal = to_trace(random_program(30, seed=2))
    grad = grad_reverse(primal)
    # the gradient's primal part is the primal trace's own instructions
    assert all(g is p for g, p in zip(grad.instrs, primal.instrs))
    # a builder's own instructions are the trace's while none moves (inputs declared
    # first, in order, no dead code before): no second copy while finish runs
    b = ir.Builder()
    x, y = b.input("x"), b.input("y")
    s = b.sin(x)
    dead = b.cos(y)
    t = b.mul(s, y)
    trace = b.finish([("f", t)])
    assert [ins.op for ins in trace.instrs] == ["input", "input", "sin", "mul"]
    assert all(trace.instrs[k] is b.instrs[k] for k in range(3))
    # after the dead one, renumbered: new tuples
    assert dead == 3 and b.instrs[4] == ir.Instr("mul", (2, 1))
    assert trace.instrs[3] == ir.Instr("mul", (2, 1)) and trace.instrs[3] is not b.instrs[4]
    # an input declared late moves everything before it: nothing is shared
    b = ir.Builder()
    x = b.input("x")
    s = b.sin(x)
    y = b.input("y")
    trace = b.finish([("f", b.mul(s, y))], input_order=["x", "y"])
    assert trace.instrs[2] == ir.Instr("sin", (0,)) and trace.instrs[2] is not b.instrs[1]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), number=st.booleans())
def test_finish_of_a_builder_where_nothing_moves(seed, number):
    # inputs first, in order, and every variable live: the builder's tuples and
    # numbers as they are, the labels its own or numbered
    rng = random.Random(seed)
    b = ir.Builder()
    made = [b.input(nm) for nm in ("a", "b", "c")[:rng.randint(1, 3)]]
    for _ in range(rng.randint(0, 30)):
        roll = rng.random()
        if roll < 0.1:
            made.append(b.const(rng.choice([-1.0, 2.0, 0.5])))
        elif roll < 0.2:
            made.append(b.name(rng.choice(made), ir.Label("v", rng.randint(1, 99))))
        elif roll < 0.5:
            made.append(getattr(b, rng.choice(["sin", "neg", "exp"]))(rng.choice(made)))
        else:
            made.append(getattr(b, rng.choice(["add", "mul", "sub"]))(rng.choice(made), rng.choice(made)))
    # every variable an output (so none is dead)
    outputs = [(f"y{k}", v) for k, v in enumerate(range(len(b.instrs)))]
    expected = _reference_finish(b, outputs, None, number)
    trace = b.finish(outputs, number=number)
    assert (list(trace.instrs), list(trace.labels), list(trace.outputs), list(trace.inputs)) == \
        tuple(map(list, expected))
    assert all(t is i for t, i in zip(trace.instrs, b.instrs)) and len(trace.instrs) == len(b.instrs)
    # the builder goes on, and its next trace is its own
    more = b.name(made[-1], ir.Label("v", 123))
    again = b.finish([("z", more)])
    assert again.instrs[-1].op == "copy" and len(trace.instrs) == len(b.instrs) - 1


@pytest.mark.parametrize("text", ["x", "2.0", "sin(x) + 2.0*y - 1.0", random_program(50, seed=4)])
def test_primal_labels_count_operations(text):
    trace = to_trace(text)
    assert ir.primal_labels(trace.instrs) == _reference_primal_labels(trace.instrs)
    assert ir.primal_labels(grad_reverse(trace).instrs if trace.input_names else trace.instrs) == \
        _reference_primal_labels(grad_reverse(trace).instrs if trace.input_names else trace.instrs)


def test_finish_of_nothing_and_of_an_input():
    b = ir.Builder()
    assert len(b.finish([])) == 0
    x = b.input("x")
    trace = b.finish([("y", x), ("z", x)])
    assert trace.outputs == (("y", 0), ("z", 0)) and trace.inputs == (("x", 0),)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), loaded=st.booleans(), number=st.booleans(), reorder=st.booleans(),
       block=st.sampled_from([1, 2, 5, 1 << 14]))
def test_a_last_finish_gives_the_same_trace_and_leaves_the_builder_empty(seed, loaded, number, reorder, block):
    rng = random.Random(seed)
    b, outputs = _random_builder(rng, loaded)
    order = sorted(b._inputs, reverse=True) if reorder else None
    expected = _reference_finish(b, outputs, order, number)
    was = finish_module._FINISH_BLOCK
    finish_module._FINISH_BLOCK = block   # (blocks of a few instructions: every boundary)
    try:
        trace = b.finish(outputs, input_order=order, number=number, last=True)
    finally:
        finish_module._FINISH_BLOCK = was
    assert (list(trace.instrs), list(trace.labels), list(trace.outputs), list(trace.inputs)) == \
        tuple(map(list, expected))
    assert b.instrs == [] and b.labels == [] and not b._inputs and not b._memo
    x = b.input("x")   # empty, and usable as a new builder
    assert b.finish([("y", b.sin(x))]).instrs[1] == ir.Instr("sin", (0,))


def test_a_last_finish_drops_the_builders_tuples_as_it_makes_the_traces(monkeypatch):
    # an input declared last moves every instruction: all are renumbered, in blocks of 1,000
    monkeypatch.setattr(finish_module, "_FINISH_BLOCK", 1000)

    def peak(last: bool) -> int:
        tracemalloc.start()   # (before the builder: its tuples are counted, and their frees)
        try:
            b = ir.Builder()
            v = b.input("x")
            for _ in range(20_000):
                v = b.sin(v)
            outputs = [("y", b.mul(v, b.input("a")))]
            b.release()   # (as a pass does before its last finish)
            tracemalloc.reset_peak()
            b.finish(outputs, input_order=["a", "x"], last=last)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # not both whole at once: (the trace's tuples and a block's) against (both whole)
    assert peak(True) < 0.7 * peak(False)
