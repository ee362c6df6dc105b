"""A trace Builder.finish made has no dead code (Trace._all_live), and a builder that
loads it (builder_load) finishes without reading its instructions again while its
outputs stay outputs: the gradient's finish looks for dead code in the adjoint
sweep only. Held to the plain definition (test_builder_finish's reference) and to
the same builder finished without the shortcut."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.parse import parse
from exprcompiler.passes import grad_reverse, vjp
from exprcompiler.passes.replay import replay
from exprcompiler.passes import share_sums as share_sums_mod
from exprcompiler.passes import splice as splice_mod
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.randexpr import random_program
from exprcompiler.trace import ir
from exprcompiler.trace.finish import _live

from test_builder_finish import _reference_finish
from test_share_sums import sum_program


def _really_all_live(trace: ir.Trace) -> bool:
    live = _live(list(trace.instrs), [v for _, v in trace.outputs])
    return all(live[i] or ins.op == "input" for i, ins in enumerate(trace.instrs))


def _whole(trace: ir.Trace) -> tuple:
    return trace.instrs, trace.labels, trace.outputs, trace.inputs


@pytest.mark.parametrize("seed", range(12))
def test_the_flag_is_true_only_of_traces_without_dead_code(seed):
    # sum programs: share_sums splices (passes/splice.py) where it can
    for trace in (to_trace(random_program(40, seed=seed)), share_sums(parse(sum_program(seed)))):
        assert trace._all_live and _really_all_live(trace)
        grad = grad_reverse(trace)
        assert grad._all_live and _really_all_live(grad)


def test_a_hand_made_trace_makes_no_promise_and_its_dead_code_goes():
    instrs = [ir.Instr("input", (), (("name", "x"),)), ir.Instr("exp", (0,)), ir.Instr("cos", (0,))]
    labels = [ir.Label("v", 0, base="x"), ir.Label("v", 1), ir.Label("v", 2)]
    trace = ir.Trace(instrs, labels, [("y", 2)])   # v_1 = exp(x) is dead
    assert not trace._all_live
    grad = grad_reverse(trace)
    assert "exp" not in [ins.op for ins in grad.instrs] and _really_all_live(grad)
    # the promise is what finish goes by: a false one would keep the dead code
    object.__setattr__(trace, "_all_live", True)
    assert "exp" in [ins.op for ins in grad_reverse(trace).instrs]


@pytest.mark.parametrize("seed", range(8))
def test_the_gradient_is_the_same_without_the_shortcut(seed):
    trace = to_trace(random_program(60, seed=seed))
    unflagged = pickle.loads(pickle.dumps(trace))   # (a pickle makes no promise)
    assert not unflagged._all_live and _whole(unflagged) == _whole(trace)
    assert _whole(grad_reverse(trace)) == _whole(grad_reverse(unflagged))
    assert _whole(vjp(trace)) == _whole(vjp(unflagged))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), keep=st.booleans(), number=st.booleans())
def test_a_loaded_builder_finishes_as_the_plain_definition(seed, keep, number):
    rng = random.Random(seed)
    primal = to_trace(random_program(rng.randint(1, 12), n_vars=3, seed=rng.randint(0, 999)))
    b = ir.Builder(pull_negations=True)
    vmap = replay(b, primal)
    assert b._loaded == len(primal.instrs) and b._loaded_outputs is not None
    made = list(range(len(b.instrs)))
    for _ in range(rng.randint(1, 30)):
        made.append(getattr(b, rng.choice(["sin", "neg", "exp"]))(rng.choice(made)) if rng.random() < 0.5
                    else getattr(b, rng.choice(["add", "mul", "sub"]))(rng.choice(made), rng.choice(made)))
    outputs = [(f"y{k}", rng.choice(made)) for k in range(rng.randint(1, 3))]
    if keep:   # the loaded trace's outputs among them: its instructions are not read
        outputs += [(f"p{k}", vmap[v]) for k, (_, v) in enumerate(primal.outputs)]
    expected = _reference_finish(b, outputs, None, number)
    trace = b.finish(outputs, number=number)
    assert (list(trace.instrs), list(trace.labels), list(trace.outputs), list(trace.inputs)) == \
        tuple(map(list, expected))


def test_a_spliced_trace_promises_what_the_replay_does():
    spliced = 0
    for seed in range(1000):
        trace = parse(sum_program(seed))
        roots, long, members, facts = share_sums_mod._chains(trace)
        plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
        if not plan:
            continue
        skip = {m for r in plan for m in members.get(r, ())}
        try:
            result = splice_mod.splice(trace, plan, skip, share_sums_mod.emitter, facts)
        except splice_mod.Unsafe:
            continue
        assert result._all_live and _really_all_live(result)
        spliced += 1
    assert spliced >= 10


@pytest.mark.parametrize("rebuilt, promise", [((2, 1), True), ((1, 1), False)])
def test_a_spliced_argument_left_unused_breaks_the_promise(rebuilt, promise):
    # x, y, e = exp(x), s = e + y, sin(s): s rebuilt as add(*rebuilt); as y + y, e is dead
    I = ir.Instr
    instrs = [I("input", (), (("name", "x"),)), I("input", (), (("name", "y"),)), I("exp", (0,)),
              I("add", (2, 1)), I("sin", (3,))]
    out = instrs[:3] + [I("add", rebuilt), instrs[4]]
    uses = np.array([1, 1, 1, 1, 1])
    assert splice_mod._all_used(instrs, out, uses, [3], {3: None}, [3], list(range(5))) is promise
