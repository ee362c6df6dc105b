"""The bulk reverse sweep's templates, recorded once per process
(passes/reverse_bulk_templates.py: _template, _edges_of's plain kinds).

A template is kept by the op's definition, the argument number, the seed constant
and the argument patterns' keys; these tests check that a later call records
nothing it has met, that what is kept is what a fresh recording gives (nothing of
the trace or the call leaks into it), that keys tell apart the constants a
tuple's equality confuses (0.0 and -0.0), and that two threads filling empty
caches at once get the traces one thread gets."""

from __future__ import annotations

import sys
import threading

import pytest

from exprcompiler import ops as _ops
from exprcompiler.bench.suite_scaling import FAMILIES, deep_program, random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse_bulk_layout, reverse_bulk_templates
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk


def _count_recordings(monkeypatch) -> list:
    calls: list = []
    record = reverse_bulk_templates._record

    def counted(*args, **kwargs):
        calls.append(args)
        return record(*args, **kwargs)
    monkeypatch.setattr(reverse_bulk_templates, "_record", counted)
    return calls


def _text(trace) -> str:
    return repr((trace.instrs, [trace.labels[v] for v in range(len(trace.instrs))], trace.outputs))


@pytest.mark.parametrize("family", ["random DAG", "deep"])
def test_a_second_call_records_nothing(monkeypatch, family):
    trace = to_trace(FAMILIES[family](300))
    first = grad_reverse_bulk(trace)
    calls = _count_recordings(monkeypatch)
    second = grad_reverse_bulk(trace)
    assert calls == []
    assert _text(second) == _text(first)


@pytest.mark.parametrize("first, second", [(random_dag(300), random_dag(300, seed=7)),
                                           (deep_program(300), deep_program(420))])
def test_kept_templates_are_fresh_recordings(monkeypatch, first, second):
    # (every template the sweep is handed, on the second call from the cache, equals
    # one recorded now for its spec: nothing of an earlier trace is kept in it)
    template = reverse_bulk_templates._template
    looked_up: list = []

    def checked(op, j, pattern, g=None):
        got = template(op, j, pattern, g)
        looked_up.append((op, j, pattern, g, got))
        return got
    monkeypatch.setattr(reverse_bulk_templates, "_template", checked)
    monkeypatch.setattr(reverse_bulk_layout, "_template", checked)
    grad_reverse_bulk(to_trace(first))
    looked_up.clear()
    monkeypatch.setattr(reverse_bulk_templates, "_PLAIN", {})   # (every kind through _template)
    grad_reverse_bulk(to_trace(second))
    assert looked_up
    for op, j, pattern, g, got in looked_up:
        assert repr(got) == repr(reverse_bulk_templates._record(op, j, pattern, g)), (op.name, j, pattern, g)


def test_signed_zeros_are_kept_apart():
    # (0.0 == -0.0: a key of the values themselves would hand one zero's template to
    # the other; a kept template is the same object on a later lookup)
    div = _ops.OPS["div"]
    for pattern, g in (((None, 0.0), None), ((None, None), 0.0)):
        negated = tuple(-p if p is not None else None for p in pattern), None if g is None else -g
        kept = reverse_bulk_templates._template(div, 1, pattern, g)
        other = reverse_bulk_templates._template(div, 1, *negated)
        assert other is not kept
        assert reverse_bulk_templates._template(div, 1, pattern, g) is kept
        assert reverse_bulk_templates._template(div, 1, *negated) is other


def test_two_threads_on_empty_caches_give_the_serial_trace(monkeypatch):
    # (a race records a template twice, each equal: the sweeps' traces are unchanged)
    traces = [to_trace(random_dag(300, seed=s)) for s in (3, 4)]
    expected = [_text(grad_reverse_bulk(t)) for t in traces]
    monkeypatch.setattr(reverse_bulk_templates, "_TEMPLATES", {})
    monkeypatch.setattr(reverse_bulk_templates, "_PLAIN", {})
    got: list = [None, None]
    start = threading.Barrier(2)

    def run(k):
        start.wait()
        got[k] = _text(grad_reverse_bulk(traces[k]))
    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # (the threads' steps interleaved finely)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert got == expected
