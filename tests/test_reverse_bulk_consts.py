"""The constant sweep's bookkeeping in NumPy (passes/reverse_bulk_consts.py, its items
laid out by passes/reverse_bulk_const_items.py): which items a root reads (_live,
peeled a frontier at a time) against the backward pass it replaced, on random item
graphs (an item reads earlier ones), wide and deep; the whole sweep's trace is held
to grad_reverse's by tests/test_reverse_bulk.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.passes.reverse_bulk_const_items import E, K, P, Q, _columns, _live


def _reference(args: list, roots: set) -> list:
    """The backward pass: an item is live if a root or a live item reads it."""
    live = [k in roots for k in range(len(args))]
    for k in range(len(args) - 1, -1, -1):
        if live[k]:
            for kind, x in args[k]:
                if kind == Q:
                    live[x] = True
    return live


def _check(args: list, roots: set) -> None:
    flat = [r for refs in args for r in refs]
    arity, first_arg, kinds, xs = _columns([len(refs) for refs in args], [r[0] for r in flat], [r[1] for r in flat])
    assert [tuple(zip(kinds[first_arg[k]:][:arity[k]].tolist(), xs[first_arg[k]:][:arity[k]].tolist()))
            for k in range(len(args))] == args
    root = np.zeros(len(args), bool)
    root[list(roots)] = True
    got = _live(np.repeat(np.arange(len(args)), arity), kinds, xs, root)
    assert got.tolist() == _reference(args, roots)


@st.composite
def item_graphs(draw):
    n = draw(st.integers(1, 300))
    args = []
    for k in range(n):
        refs = []
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from((P, Q, K, E) if k else (P, K, E)))
            x = draw(st.integers(0, k - 1)) if kind == Q else \
                draw(st.floats(allow_nan=False)) if kind == K else draw(st.integers(0, 10 ** 6))
            refs.append((kind, x))
        args.append(tuple(refs))
    roots = set(draw(st.lists(st.integers(0, n - 1), max_size=5)))
    return args, roots


@settings(max_examples=examples(200), deadline=None)
@given(item_graphs())
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_live_as_the_backward_pass(graph):
    _check(*graph)


def test_live_wide_then_deep():
    # 500 unread items each reading a chain of its own (the frontier wide: NumPy),
    # then one chain of 2,000 (narrow: one at a time), and a live chain beside them
    args, roots = [], set()
    for _ in range(500):
        args.append(((K, 1.0),))
        for _ in range(3):
            args.append(((Q, len(args) - 1), (P, 0)))
    args.append(((P, 1),))
    for _ in range(2000):
        args.append(((Q, len(args) - 1), (Q, len(args) - 1)))
    start = len(args)
    args.append(((E, 5),))
    for _ in range(50):
        args.append(((Q, len(args) - 1), (Q, start)))
    roots.add(len(args) - 1)
    _check(args, roots)
    assert sum(_reference(args, roots)) == 51


def test_live_with_no_items():
    _check([], set())


def test_columns_written_as_made(monkeypatch):
    # run writes each item's refs as columns as it makes it (blocks reads no tuple):
    # on a sweep that makes every kind of item (copies of G, template instructions,
    # sums, copies of a total), the columns are the items' refs, and the trace the
    # tuples' (_columns' reading of them, as before session 37's B5)
    import exprcompiler.passes.reverse_bulk_layout as layout
    from exprcompiler.bench.suite_scaling import FAMILIES
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import reverse_bulk_consts as consts
    from exprcompiler.passes.reverse_bulk import grad_reverse_bulk

    seen = []

    class Checked(consts.ConstantSweep):
        def blocks(self, *args):
            flat = [r for refs in self.args for r in refs]
            assert self.arity == [len(refs) for refs in self.args]
            assert self.kinds == [r[0] for r in flat]
            assert len(self.xs) == len(flat) and all(x is r[1] for x, r in zip(self.xs, flat))   # (a NaN too)
            seen.append(sorted(set(self.ops)))
            return super().blocks(*args)

    monkeypatch.setattr(layout, "ConstantSweep", Checked)
    assert grad_reverse_bulk(to_trace(FAMILIES["random DAG"](3000))) is not None
    assert seen and {"copy", "add", "sub", "neg", "mul"} <= set(seen[0])
