"""The per-instruction sweep's array shortcuts build what their general paths build.

passes/reverse.vjp takes three things from arrays where the trace was loaded into its
builder as it is (builder_load): the active variables from the builder's flags
(`_active_loaded`, not active_set's loop), the labels of what the sweep built as
columns from the trace's own (reverse_labels.py: placeholders in the builder, not a
Label made per variable and read back by finish), and a primal trace's taken labels
without NumPy (replay.labels_of). Each is checked against its general path: the
same instructions, labels (columns and all) and outputs, on random expressions,
programs and the bench's families; and each shortcut is checked to be taken where
it is meant to be (so these tests can fail).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from conftest import examples
from test_reverse_sweep import expressions
from exprcompiler.bench.suite_scaling import FAMILIES as SCALING
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp, replay, reverse, reverse_labels, vjp
from exprcompiler.passes.replay import labels_of
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Builder, Label, Trace
from exprcompiler.trace.labels import Labels, as_labels


def _state(t) -> tuple:
    labels = t.labels
    columns = (labels.kinds, labels.indexes.tolist(), labels.odd) if isinstance(labels, Labels) else None
    return repr((t.instrs, tuple(labels), t.outputs)), columns, str(t)


def _derivatives(trace) -> list:
    out = trace.outputs[0][0]
    grad = grad_reverse(trace) if len(trace.instrs) < reverse._BULK_FROM else vjp(trace, seeds={out: 1.0})
    traces = [grad, vjp(trace), vjp(trace, seeds={out: -1.0}), vjp(grad), hvp(trace)]
    if len(trace.input_names) > 1:
        traces.append(vjp(trace, trace.input_names[:1], seeds={out: 1.0}))   # (some inputs: active_set's)
    return [_state(t) for t in traces]


def _compare(trace, monkeypatch) -> None:
    fast = _derivatives(trace)
    with monkeypatch.context() as m:
        m.setattr(reverse, "as_columns", lambda b, trace, taken: False)
        m.setattr(reverse, "_active_loaded", lambda b, trace, seeds: None)
        assert _derivatives(trace) == fast
    with monkeypatch.context() as m:
        # a label the sweep did not note (here: a variable noted that has none): the
        # placeholders made Labels in the builder, which finish reads
        real = reverse_labels.swept_labels

        def unnoted(b, trace, named, bar):
            unlabelled = [v for v in range(len(trace.instrs), len(b.labels)) if b.labels[v] is None]
            if unlabelled:
                named[unlabelled[0]] = 0
                assert real(b, trace, named, bar) is None
                return None
            return real(b, trace, named, bar)
        m.setattr(reverse, "swept_labels", unnoted)
        assert _derivatives(trace) == fast


@settings(max_examples=examples(80), deadline=None)
@given(text=expressions())
def test_array_shortcuts_build_what_the_general_paths_build(text):
    trace = to_trace(text)
    if not trace.input_names:
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        _compare(trace, monkeypatch)


@pytest.mark.parametrize("trace", [
    to_trace("x * y - sin(x) / y + (x - y)**2"),
    to_trace(random_program(40, seed=3)),
    to_trace("y = x*x\nz = y + 2*x\nz"),
    to_trace(SCALING["random DAG"](100)),
    to_trace(SCALING["random DAG"](1000)),
    to_trace(SCALING["deep"](300)),
], ids=["expression", "program", "named lines", "random DAG 100", "random DAG 1000", "deep 300"])
def test_array_shortcuts_on_programs_and_the_bench_families(trace, monkeypatch):
    _compare(trace, monkeypatch)


def test_array_labels_of_an_odd_primal_label(monkeypatch):
    """Primal labels outside Griewank numbering's: v_-3 on an operation (no base:
    its v̄ a common label, (bar, -3), as as_labels has it; v̄_-3 = v_0 is printed),
    and v_2 with a base (an odd label, whose v̄ is derived: (bar, 2), no base, a
    common label again)."""
    trace = to_trace("sin(x) * y + cos(y) * x")
    labels = list(trace.labels)
    labels[2], labels[4] = Label("v", -3), Label("v", 2, base="q")   # (sin's, cos's: v̄_2 = v_-1 is printed)
    _compare(Trace(trace.instrs, as_labels(labels), trace.outputs), monkeypatch)


def test_shortcuts_are_taken_on_a_front_ends_trace(monkeypatch):
    """Where the trace is loaded and every input is differentiated, both shortcuts
    answer (a None would make the comparisons above vacuous)."""
    trace = to_trace(SCALING["random DAG"](100))
    answers = {}
    for name in ("swept_labels", "_active_loaded"):
        real = getattr(reverse, name)
        monkeypatch.setattr(reverse, name, lambda *a, _real=real, _name=name: answers.setdefault(_name, _real(*a)))
    grad_reverse(trace)
    assert isinstance(answers["swept_labels"], Labels)
    assert answers["_active_loaded"] == reverse.active_set(trace, [v for _, v in trace.inputs])


def test_no_column_labels_after_a_cotangent_input_or_for_a_gradient_trace(monkeypatch):
    """x.bar's label (a cotangent input's) and a second sweep's tagged labels are
    not the trace's v̄: those finishes read the labels themselves."""
    trace = to_trace("sin(x) * y + x")
    grad = grad_reverse(trace)
    calls = []
    real = reverse.swept_labels
    monkeypatch.setattr(reverse, "swept_labels", lambda *a: calls.append(a) or real(*a))
    vjp(trace)   # a cotangent input y.bar
    vjp(grad)   # taken labels
    assert calls == []
    vjp(trace, seeds={"f": 1.0})
    assert len(calls) == 1


def test_active_variables_from_flags_are_active_sets():
    for trace in (to_trace("x * 2.0 + sin(y) * 3.0 - 1.0"), to_trace(random_program(60, seed=5)),
                  to_trace(SCALING["random DAG"](300))):
        b = Builder(pull_negations=True)
        replay.replay(b, trace)
        assert b._loaded == len(trace.instrs)
        seeds = [v for _, v in trace.inputs]
        assert reverse._active_loaded(b, trace, seeds) == reverse.active_set(trace, seeds)
        assert reverse._active_loaded(b, trace, seeds[:1]) is None   # (not every input: active_set's)


def test_taken_labels_of_a_primal_without_numpy():
    for trace in (to_trace("sin(x) * y + x"), to_trace(SCALING["random DAG"](100))):
        assert isinstance(trace.labels, Labels)
        grad = grad_reverse(trace)
        for t in (trace, grad, vjp(grad)):
            assert labels_of(t) == t.labels.kind_index_tags("v")
        assert labels_of(trace) == set() and labels_of(grad)
    # gradients whose only labels besides v's are odd ones (x̄ = ...): the shortcut's case, not empty
    for text in ("x", "2*x", "x + y"):
        for t in (grad_reverse(to_trace(text)), vjp(to_trace(text))):
            if not t.labels.kinds.translate(None, bytes((0, 1, 255))):
                assert labels_of(t) == t.labels.kind_index_tags("v") != set()
