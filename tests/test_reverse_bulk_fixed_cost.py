"""The bulk reverse sweep's per-call work done once per call, not per kind or per
template (session 38, B6): deferred puts, the edges found by one mask, the plain
kinds' edges kept by op. Each gives what the per-kind version gave."""

import dataclasses

import numpy as np
import pytest

from exprcompiler import ops as _ops
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.op_def import seed
from exprcompiler.passes import reverse_bulk, reverse_bulk_layout, reverse_bulk_templates, reverse_bulk_write
from exprcompiler.passes.reverse_bulk_write import NewInstrs


def _columns(out: NewInstrs) -> tuple:
    names = list(out.ops)
    ops = [names[c] if c >= 0 else None for c in out.code.tolist()]
    return ops, out.arity.tolist(), out.args.tolist(), out.written.tolist()


@pytest.mark.parametrize("at_most", [1 << 10, 4])   # (4: the larger ones put at once)
def test_deferred_puts_write_what_puts_write(monkeypatch, at_most):
    monkeypatch.setattr(reverse_bulk_write, "_DEFER_AT_MOST", at_most)
    rng = np.random.default_rng(5)
    n, size = 40, 300
    pieces = []
    free = rng.permutation(size) + n
    at = 0
    for _ in range(30):
        k = int(rng.integers(0, 15))
        arity = int(rng.integers(0, 4))
        op = ["copy", "neg", "add", "mul", "sub", "where"][int(rng.integers(0, 6))]
        pos = free[at:at + k]
        at += k
        pieces.append((pos, op, [rng.integers(0, n + size, len(pos)).astype(np.int32) for _ in range(arity)]))
    now, later = NewInstrs(n, size), NewInstrs(n, size)
    placed_now = sum(now.put(*p) for p in pieces)
    placed_later = sum(later.defer(*p) for p in pieces)
    assert later.written.sum() == sum(len(p[0]) for p in pieces if len(p[0]) > at_most)   # (the rest at the flush)
    later.flush()
    assert placed_now == placed_later == at
    assert _columns(now) == _columns(later)


def _edges_by_instruction(trace):
    """The sweep's edges as the per-kind loop found them: for each instruction, its
    kind's edges (last argument first) to active arguments, consumers descending."""
    from exprcompiler.passes.reverse import active_set
    active = active_set(trace, [v for _, v in trace.inputs])
    found = []
    for i in range(len(trace.instrs) - 1, -1, -1):
        op, args = trace.instrs[i][0], trace.instrs[i][1]
        if op in ("input", "const") or not active[i]:
            continue
        for j in range(len(args) - 1, -1, -1):
            if active[args[j]]:
                found.append((i, args[j], j))
    return found


@pytest.mark.parametrize("family", ["random DAG", "deep"])
def test_edges_in_sweep_order(monkeypatch, family):
    trace = to_trace(FAMILIES[family](400))
    seen = {}
    lay_out = reverse_bulk_layout._lay_out

    def spy(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, *rest):
        seen.update(e_i=e_i.tolist(), e_a=e_a.tolist(), e_t=e_t.tolist(), specs=specs)
        return lay_out(trace, o, name, wrt_list, bar_labels, templates, specs, e_i, e_a, e_t, *rest)
    monkeypatch.setattr(reverse_bulk, "_lay_out", spy)
    assert reverse_bulk.grad_reverse_bulk(trace) is not None
    expected = _edges_by_instruction(trace)
    # (the random DAG has no structural zero: every active edge is kept)
    assert list(zip(seen["e_i"], seen["e_a"])) == [(i, a) for i, a, _ in expected]
    for (i, _, j), t in zip(expected, seen["e_t"]):
        opdef, arg, _ = seen["specs"][t]
        assert opdef is _ops.OPS[trace.instrs[i][0]] and arg == j


def test_plain_edges_follow_the_table_entry(monkeypatch):
    # (the plain kinds' edges are kept by op: a table entry replaced records its own)
    first = reverse_bulk_templates._edges_of("sin", (0,), {}, [], [])
    templates: list = []
    reverse_bulk_templates._edges_of("sin", (0,), {}, templates, [])
    assert templates[first[0][1]] != reverse_bulk_templates._SEED_TEMPLATE
    monkeypatch.setitem(_ops.OPS, "sin", dataclasses.replace(_ops.OPS["sin"], partials=(seed,)))
    templates = []
    edges = reverse_bulk_templates._edges_of("sin", (0,), {}, templates, [])
    assert [templates[t] for _, t in edges] == [reverse_bulk_templates._SEED_TEMPLATE]


def test_a_constant_zero_argument_is_not_a_plain_kind():
    # (a pattern entry 0.0 is falsy: still a constant argument, recorded as such, not
    # the plain kind's edges kept by op)
    reverse_bulk_templates._edges_of("mul", (0, 1), {}, [], [])
    specs: list = []
    edges = reverse_bulk_templates._edges_of("mul", (0, 1), {1: 0.0}, [], specs)
    assert [specs[t][2] for _, t in edges] == [(None, 0.0), (None, 0.0)]
