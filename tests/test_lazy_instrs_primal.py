"""The SymPy front end's primal holds its instructions as columns (a ColumnInstrs made
by parse/sympy_columns.ColumnBuilder.trace): its items, one at a time or all at once,
are the tuples the Builder makes; share_sums, the bulk sweep, generate and load read
the columns and single items and make none of its tuples."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from test_random import SETTINGS, build, recipes
from test_sympy_columns import _both, _same

from exprcompiler.backends import numpy_backend
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.errors import ShapeError
from exprcompiler.frontend import to_trace
from exprcompiler.parse import sympy_columns
from exprcompiler.parse.from_sympy import from_sympy
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.passes import grad_reverse
from exprcompiler.passes import share_sums as share_sums_module
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.trace.column_instrs import ColumnInstrs, attributed, shaped
from exprcompiler.trace.columns import made
from exprcompiler.trace.ir_trace import Trace, instructions
from exprcompiler.trace.to_sympy import to_sympy

x, y, z = sp.symbols("x y z")


@pytest.fixture(autouse=True)
def _columns_at_every_size(monkeypatch):
    """The ColumnBuilder's NumPy finish at every size: a trace of fewer than
    sympy_columns.SMALL instructions is otherwise made as tuples (its small path,
    tests/test_parse_fixed.py), and these tests are of the columns'."""
    monkeypatch.setattr(sympy_columns, "SMALL", 0)


def _eager(trace: Trace) -> Trace:
    """The same trace, its instructions as tuples and no columns kept."""
    return Trace(tuple(trace.instrs), trace.labels, trace.outputs, trace.source, _inputs=trace.inputs,
                 _all_live=trace._all_live)


def _held(trace: Trace) -> ColumnInstrs:
    held = instructions(trace)
    assert type(held) is ColumnInstrs, "the primal's instructions were expected as columns"
    return held


def _items_are_the_tuples(trace: Trace, want: tuple) -> None:
    held = _held(trace)
    n = len(held)
    assert n == len(want) == len(trace)
    assert [held[i] for i in range(n)] == list(want)
    assert [held[i] for i in range(-n, 0)] == list(want)
    assert held[np.int64(n - 1)] == want[-1] and held[1:n:2] == want[1:n:2]
    for bad in (n, -n - 1):
        with pytest.raises(IndexError):
            held[bad]
    assert attributed(held) == attributed(want) == [i for i, ins in enumerate(want) if ins.attrs]
    assert not shaped(held) and not shaped(want)
    assert all(a.dtype == b.dtype and a.tolist() == b.tolist() for a, b in zip(made(want), held.cols))


@settings(max_examples=30, **SETTINGS)
@given(recipe=recipes(max_steps=16))
def test_items_are_the_builders_tuples(recipe):
    with pytest.MonkeyPatch.context() as mp:
        for flag in (True, False):
            try:
                expr, = to_sympy(build(recipe), evaluate=flag)
                old, new, columns = _both(expr, mp)
            except Exception:   # (SymPy's evaluation, or a head we do not convert: test_sympy_columns')
                continue
            if columns:
                _items_are_the_tuples(new, old.instrs)   # (before the tuples are made)
                assert type(instructions(new)) is ColumnInstrs
            _same(old, new)


@pytest.mark.parametrize("expr", [
    sp.Piecewise((x * y, x < y), (sp.sin(y), True)) + z,   # where: three arguments
    sp.sin(x) * y ** 2 + sp.exp(x - y) / (1 + x ** 2) - 2.5 * z,
    x,   # (an input alone)
], ids=str)
def test_items_of_node_kinds(expr, monkeypatch):
    old, new, columns = _both(expr, monkeypatch)
    assert columns
    _items_are_the_tuples(new, old.instrs)
    _same(old, new)


def _chained(k_max: int, step: int):
    """Sums of four terms (chains: walked), sharing pairs with the sums of three if
    step is 1 (regrouped), none if 4; past share_sums' small size."""
    s = sp.symbols(f"s0:{k_max + 4}")
    return sum(sp.sin(s[k]) * (s[k] + s[k + 1] + s[k + 2] + s[k + 3]) + sp.cos(s[k] + s[k + 1] + s[k + 2] * 2)
               + (s[k] + s[k + 1] + s[k + 2] if step == 1 else 0) ** 2 for k in range(0, k_max, step))


@pytest.mark.parametrize("step", [1, 4])
def test_share_sums_walks_the_columns(step, monkeypatch):
    # the chains read off the columns (no tuple made), as off the tuples; regrouped
    # (splice: it makes the tuples) as on the eager trace, or the trace itself
    expr = _chained(120, step)
    eager = _eager(from_sympy(expr, source=""))
    want = share_sums(eager)
    primal = from_sympy(expr, source="")
    assert len(primal) >= 400
    real = ColumnInstrs.made
    monkeypatch.setattr(ColumnInstrs, "made", lambda self: pytest.fail("the primal's tuples were made"))
    _held(primal)
    got_chains, want_chains = share_sums_module._chains(primal), share_sums_module._chains(eager)
    assert [np.asarray(got_chains[0]).tolist(), *got_chains[1:3]] == \
        [np.asarray(want_chains[0]).tolist(), *want_chains[1:3]]
    assert got_chains[1], "chains of three terms or more were expected"
    if want is eager:
        assert share_sums(primal) is primal
        assert step == 4
        return
    monkeypatch.setattr(ColumnInstrs, "made", real)
    got = share_sums(primal)
    assert step == 1 and got is not primal
    assert got.instrs == want.instrs and list(got.labels) == list(want.labels) and got.outputs == want.outputs


# (grad_reverse: the bulk sweep behind the checks every gradient passes first)
@pytest.mark.parametrize("size, sweep", [(1500, grad_reverse_bulk), (4000, grad_reverse_bulk), (4000, grad_reverse)])
def test_the_bulk_path_makes_no_primal_tuple(size, sweep, monkeypatch):
    expr, = to_sympy(to_trace(FAMILIES["random DAG"](size)), evaluate=False)
    want = numpy_backend.generated(sweep(_eager(to_trace(expr))), func_name="g")[0]
    refused = []
    real = ColumnInstrs.made
    monkeypatch.setattr(ColumnInstrs, "made", lambda self: refused.append(1) or real(self))
    primal = to_trace(expr)   # (from_sympy, then share_sums)
    held = _held(primal)
    grad = sweep(primal)
    assert grad is not None
    source, params, program = numpy_backend.generated(grad, func_name="g")
    fn = numpy_backend.load(source, "g", program=program)
    assert not refused, "a tuple of the instructions was made"
    assert str(source) == str(want)
    assert np.isfinite(fn(*np.linspace(0.2, 0.8, len(params)))[0])
    # the gradient holds the primal's columns and leaves as they are (no head of tuples)
    assert instructions(grad).head == () and instructions(primal) is held
    assert grad.instrs[:len(primal)] == primal.instrs


def test_errors_of_a_held_primal():
    # several outputs: grad_reverse's error, as on a primal of tuples
    one = from_sympy(sp.sin(x) * y + x, source="")
    two = Trace(_held(one), one.labels, [("y1", len(one) - 2), ("y2", len(one) - 1)], _inputs=one.inputs,
                _all_live=True)
    with pytest.raises(ShapeError, match="single-output"):
        grad_reverse_bulk(two)


def test_the_tuples_are_made_with_the_collector_paused():
    # (made wherever trace.instrs is first asked for, outside any stage's pause: the
    # young collections its tuples set off walked every object alive, the SymPy
    # expression included: at 10^5 operations a gradient took twice as long)
    import gc
    expr, = to_sympy(to_trace(FAMILIES["random DAG"](1500)), evaluate=False)
    primal = to_trace(expr)
    held = _held(primal)
    collections = []

    def count(phase, info):
        if phase == "start":
            collections.append(info["generation"])
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.callbacks.append(count)
    gc.set_threshold(50)
    gc.enable()
    try:
        made_here = primal.instrs
        on_again = gc.isenabled()   # (the pause gives the collector back as it was)
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*threshold)
        if not enabled:
            gc.disable()
    assert not collections and on_again
    assert list(made_here) == [held[i] for i in range(len(held))]
