"""The bulk reverse sweep's per-call work on labels (passes/reverse_bulk*.py): an
input's v̄, the label of every contribution to it, made once (bar_columns), and the
unlabelled negations read off the labels' columns, no Label made for each
(_argument_patterns). Each gives what the one-at-a-time version gave."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse_bulk, reverse_bulk_layout
from exprcompiler.passes.reverse import vjp
from exprcompiler.passes.reverse_bulk import _BarLabels, _op_kinds
from exprcompiler.passes.reverse_bulk_templates import _argument_patterns
from exprcompiler.trace.columns import columns
from exprcompiler.trace.labels import Labels, as_labels


class _Counted(_BarLabels):
    """_BarLabels that counts how often each variable's label is asked for."""

    __slots__ = ("asked",)

    def __init__(self, labels, taken):
        super().__init__(labels, taken)
        self.asked = {}

    def __getitem__(self, i):
        self.asked[i] = self.asked.get(i, 0) + 1
        return super().__getitem__(i)


@pytest.mark.parametrize("family,size", [("deep", 300), ("random DAG", 400)])
def test_each_bar_label_made_once(monkeypatch, family, size):
    trace = to_trace(FAMILIES[family](size))
    seen = []
    lay_out = reverse_bulk_layout._lay_out

    def spy(trace, o, name, wrt_list, bar_labels, *rest):
        counted = _Counted(bar_labels.labels, bar_labels.taken)
        seen.append(counted)
        return lay_out(trace, o, name, wrt_list, counted, *rest)
    monkeypatch.setattr(reverse_bulk, "_lay_out", spy)
    got = reverse_bulk.grad_reverse_bulk(trace)
    assert got is not None and seen
    # (deep: x's and y's v̄ label every contribution to them, ~100 each)
    assert seen[0].asked and max(seen[0].asked.values()) == 1
    # the labels are grad_reverse's all the same (on deep the whole trace is)
    want = vjp(to_trace(FAMILIES[family](size)), seeds={got.outputs[0][0]: 1.0})
    assert [got.labels[v] for _, v in got.outputs] == [want.labels[v] for _, v in want.outputs]
    if family == "deep":
        assert list(got.labels) == list(want.labels)
        assert list(got.instrs) == list(want.instrs)


class _NoItems(Labels):
    """Labels that refuse to be read one at a time (as a Label each)."""

    def __getitem__(self, i):
        raise AssertionError("a label read one at a time")


@pytest.mark.parametrize("family", ["random DAG", "deep"])
def test_negation_patterns_read_off_the_columns(family):
    trace = to_trace(FAMILIES[family](400))
    labels = trace.labels
    assert isinstance(labels, Labels)
    instrs = trace.instrs
    n = len(instrs)
    made = columns(trace)
    op_id, kind = _op_kinds(made.code, instrs)
    assert "neg" in op_id
    starts = np.cumsum(made.counts, dtype=np.int64) - made.counts
    cols = []
    for k in range(3):
        col = np.full(n, -1, np.int32)
        has = made.counts > k
        col[has] = made.flat[starts[has] + k]
        cols.append(col)
    consts = [i for i in range(n) if instrs[i][0] == "const"]
    is_const = np.zeros(n + 1, bool)
    is_const[consts] = True
    const_values = {i: instrs[i].value for i in consts}
    # some negations unlabelled (a hand-made trace's): the columns tell them apart
    listed = list(labels)
    negs = np.flatnonzero(kind == op_id["neg"]).tolist()
    for v in negs[::3]:
        listed[v] = None
    columned = as_labels(listed)
    refusing = _NoItems(columned.kinds, columned.indexes, columned.odd)
    got = _argument_patterns(instrs, refusing, kind, op_id, cols, is_const, const_values)
    want = _argument_patterns(instrs, listed, kind, op_id, cols, is_const, const_values)
    assert got == want
    assert sum(entry == ("neg", False, None) for entry in got[0].values()) == len(negs[::3])
