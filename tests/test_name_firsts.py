"""assign_names' names decided in NumPy (naming._first_holders: each common label's
first variable, and the chain of its next versions that the use-count test lets
reuse the name) against the loop alone (FIRSTS_FROM above the trace's size: every
named variable in order, as before), on gradients, tangents, Hessians (tagged
labels), reserved names of the v12 form, odd labels that ask for a v12 name first
(the loop's _TakenEarlier, then the loop alone), and every form of the arguments
generate and the C backends pass (uses as a list or an array or none, reads and op
codes or none, named as a list or an array; codes or strings)."""

from __future__ import annotations

import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import name_firsts, naming, numpy_backend
from exprcompiler.backends.naming import assign_names
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.labels import as_labels
from exprcompiler.trace.render import use_counts_and_reads
from exprcompiler.trace.render_bulk import op_codes
from exprcompiler.trace.uses import named_array


def _traces():
    for seed in range(3):
        primal = to_trace(random_program(150, n_vars=4, seed=seed))
        yield f"grad-{seed}", passes.grad_reverse(primal)
        yield f"jvp-{seed}", passes.jvp(primal)
        if seed < 2:
            yield f"hessian-{seed}", passes.hessian(primal)
    yield "grad-large", passes.grad_reverse(to_trace(random_program(1500, seed=7)))
    yield "inputs", passes.grad_reverse(to_trace("int * v1 + sin(x_bar) * lambda_ + exp(int) * v1 * v1"))
    yield "deep", passes.grad_reverse(to_trace("x * (x * (x * (x * y))) + y * (y * sin(x * y))"))


TRACES = dict(_traces())


def _names(trace, named, reserved, *, firsts: bool, coded: bool, uses, reads, codes, monkeypatch):
    monkeypatch.setattr(naming, "FIRSTS_FROM", 0 if firsts else 1 << 60)
    aliases: dict = {}
    out = assign_names(trace, named, reserved, uses, aliases, reads, coded=coded, codes=codes)
    return (out.list() if coded else out), aliases


@pytest.mark.parametrize("form", ["generate", "lists", "bare"])
@pytest.mark.parametrize("coded", [True, False])
@pytest.mark.parametrize("name", list(TRACES))
def test_the_names_decided_at_once_are_the_loops(name, coded, form, monkeypatch):
    trace = TRACES[name]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    if form == "generate":   # (as numpy_backend.generated passes them)
        named, uses = flags, use_array
    elif form == "lists":
        named, uses, codes = flags.tolist(), use_array.tolist(), None
    else:   # (as the C backends: no use counts)
        named, uses, reads, codes = flags.tolist(), None, None, None
    for reserved in (numpy_backend.RESERVED | {"f"}, {"v3", "v2_bar", "v1_bar", "x_bar", "v0"}):
        want = _names(trace, named, reserved, firsts=False, coded=coded, uses=uses, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, reserved, firsts=True, coded=coded, uses=uses, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want


def test_most_names_are_decided_before_the_loop():
    trace = TRACES["grad-large"]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    firsts = name_firsts.first_holders(as_labels(trace.labels), flags, len(trace.instrs) + 1, set(), use_array,
                                       reads, codes, [v for _, v in trace.inputs])
    assert len(firsts.aliased) > 0   # (accumulations: chains decided)
    assert len(firsts.others) < 0.05 * int(flags.sum())


def _odd_first():
    """v2 asked for by an odd label (a base and an index of 2, not an input) before
    the common label v2 comes; then v2's next version, an accumulation."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("cos", (0,)),
              Instr("mul", (1, 2)), Instr("add", (3, 0)), Instr("add", (4, 3))]
    labels = [Label("v", 0, "x"), Label("v", 2, "w"), Label("v", 2), Label("v", 3), Label("v", 2), Label("v", 2)]
    return Trace(instrs, labels, [("f", 5)])


@pytest.mark.parametrize("coded", [True, False])
def test_an_odd_label_that_asks_first_gets_the_loops_answer(coded, monkeypatch):
    trace = _odd_first()
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = [True] * len(trace.instrs)
    raised = []
    original = naming._TakenEarlier

    class Spy(original):
        def __init__(self, *args):
            raised.append(True)
            super().__init__(*args)
    monkeypatch.setattr(naming, "_TakenEarlier", Spy)
    want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                  monkeypatch=monkeypatch)
    assert not raised
    got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                 monkeypatch=monkeypatch)
    assert raised and got == want
    assert want[0][1:3] == ["v2", "v2_1"]


def test_a_chain_stops_where_a_previous_version_is_read_later(monkeypatch):
    """v1 = x*x; v1 = v1 + x; y = v1 * 2 (reads the second version after the third
    is made); v1 = v1 + 1: the third cannot reuse the name, the loop decides it."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("mul", (0, 0)), Instr("add", (1, 0)),
              Instr("const", (), (("value", 1.0),)), Instr("add", (2, 3)), Instr("mul", (2, 4))]
    labels = [Label("v", 0, "x"), Label("v", 1), Label("v", 1), None, Label("v", 1), Label("v", 5)]
    trace = Trace(instrs, labels, [("f", 5)])
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = named_array(trace, use_array, codes)
    firsts = name_firsts.first_holders(as_labels(trace.labels), named, len(instrs) + 1, set(), use_array, reads,
                                       codes, [0])
    assert firsts.aliased == [2] and 4 in firsts.others
    for coded in (True, False):
        want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want and want[0][4] == "v1_1"


def test_an_input_of_a_common_label_keeps_its_name(monkeypatch):
    """An input labelled v1 (no base) and a later v1 that reads it once: the input's
    name is never reused (the loop's `prev in inputs`), so no chain from it."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("mul", (1, 1))]
    trace = Trace(instrs, [Label("v", 1), Label("v", 1), Label("v", 2)], [("f", 2)])
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = named_array(trace, use_array, codes)
    for coded in (True, False):
        want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want and want[0][:2] == ["v1", "v1_1"]
