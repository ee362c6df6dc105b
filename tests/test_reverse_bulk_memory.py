"""The bulk reverse sweep's memory measures (passes/reverse_bulk*.py): the v̄ labels
made when asked for (reverse_bulk._BarLabels) and the new instructions made a span
of positions at a time (trace/column_instrs.ColumnInstrs.made) give the trace the whole-list versions gave."""

from __future__ import annotations

import pytest

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.passes.replay import derived_labels, labels_of
from exprcompiler.passes.reverse_bulk import _BarLabels, grad_reverse_bulk
from exprcompiler.trace import column_instrs
from exprcompiler.trace.labels import Labels


@pytest.mark.parametrize("family,size", [("random DAG", 2000), ("deep", 1500)])
def test_spans_give_the_same_trace(family, size, monkeypatch):
    trace = to_trace(FAMILIES[family](size))
    whole = grad_reverse_bulk(trace)
    assert whole is not None and len(whole.instrs)   # (its tuples made here, in whole spans)
    # spans far smaller than the new instructions: many spans, each with every arity,
    # and spans that end inside a kind's run of positions
    monkeypatch.setattr(column_instrs, "_SPAN", 7)
    spans = grad_reverse_bulk(trace)
    assert len(whole.instrs) > 10 * 7
    assert list(spans.instrs) == list(whole.instrs)
    assert list(spans.labels) == list(whole.labels)
    assert spans.outputs == whole.outputs


def test_bar_labels_when_asked_are_the_list():
    trace = to_trace(FAMILIES["random DAG"](300))
    assert isinstance(trace.labels, Labels)
    taken = labels_of(trace)
    lazy = _BarLabels(trace.labels, taken)
    assert [lazy[i] for i in range(len(trace.labels))] == derived_labels(trace.labels, "bar", None, taken)
    # a primal label that a v̄ label would take: the derived label is tagged apart
    taken = taken | {("bar", trace.labels[-1].index, None)}
    lazy = _BarLabels(trace.labels, taken)
    assert [lazy[i] for i in range(len(trace.labels))] == derived_labels(trace.labels, "bar", None, taken)
    assert lazy[len(trace.labels) - 1].tag == "2"
