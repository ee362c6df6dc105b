"""Per-operation costs of text -> callable NumPy gradient at 10³ operations (tracker
issue 14): behaviour only, the same programs and texts as before. Speed is measured
by benchmarks/bench_frontend.py, never here.

A program compiled on use whose keys the bulk renderer made (render_bulk.FlatSlots:
from numpy_render.KEYS_AT_ONCE_FROM statements) takes its slots from the renderer's
flat array by NumPy (numpy_backend.generated), not through _slot_list's list of an
int per hole read back into an array and mapped again: the same slots, texts and
text as the per-variable renderer's, and an int object per slot shared by its holes."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler.backends import numpy_backend, numpy_render
from exprcompiler.bench.suite_scaling import random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.trace.render_bulk import FlatSlots


def _grad(n_ops: int, seed: int):
    return grad_reverse(to_trace(random_dag(n_ops, seed=seed)))


def _program(grad, monkeypatch, per_variable: bool):
    with monkeypatch.context() as m:
        if per_variable:   # (the per-variable renderer's keys: the same keys and slots)
            m.setattr(numpy_render, "KEYS_AT_ONCE_FROM", 10 ** 9)
        source, params, program = numpy_backend.generated(grad, func_name="f_grad", keep=[])
    return source, params, program


@pytest.mark.parametrize("n_ops, seed", [(1000, 1), (400, 2)])
def test_bulk_keys_later_program_is_the_per_variable_one(monkeypatch, n_ops, seed):
    grad = _grad(n_ops, seed)
    flat_seen = []
    renderer = numpy_backend.NumpyRenderer

    def watched(*args, **kwargs):
        r = renderer(*args, **kwargs)
        flat_seen.append(type(r.statements(flat=True)[1]) is FlatSlots)
        return r
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "NumpyRenderer", watched)
        _program(grad, m, per_variable=False)
    assert flat_seen == [True]   # (the path this file is about: the bulk renderer's keys)
    bulk = _program(grad, monkeypatch, per_variable=False)
    each = _program(grad, monkeypatch, per_variable=True)
    (b_source, b_params, b), (e_source, e_params, e) = bulk, each
    assert b is not None and e is not None and b_params == e_params
    assert b.slots == e.slots and b.numbered == e.numbered and b.formats == e.formats
    assert list(b.texts.holes) == list(e.texts.holes) and b.size == e.size
    assert b.params == e.params and b.constants == e.constants
    assert str(b_source) == str(e_source)
    # an int object per slot, shared by its holes (8 bytes a hole, not an int each)
    assert len({id(s) for s in b.slots}) == len(set(b.slots))


def test_bulk_keys_later_slots_skip_the_slot_list(monkeypatch):
    # (the later program's slots come from the flat array: _slot_list's list of every
    # hole, array("i", list) of it and a map over it were 0.3 ms at 10³ operations)
    grad = _grad(1000, 1)
    expected = _program(grad, monkeypatch, per_variable=False)

    def refused(*args):
        raise AssertionError("_slot_list called for a program compiled on use")
    monkeypatch.setattr(numpy_backend, "_slot_list", refused)
    source, params, program = _program(grad, monkeypatch, per_variable=False)
    assert program.slots == expected[2].slots and str(source) == str(expected[0])
    fn = numpy_backend.load(source, "f_grad", program=program)
    point = np.random.default_rng(3).uniform(0.2, 0.9, len(grad.input_names))
    reference = numpy_backend.load(numpy_backend.generate(grad, func_name="f_grad")[0], "f_grad")
    got, want = fn(*point), reference(*point)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("n", [0, 1, 100, 511, 512, 3000])
def test_op_codes_of_table_counted_or_set_alike(monkeypatch, n):
    # (from render_bulk._COUNTED_FROM codes the ops present are found by np.bincount,
    # below by a set of the bytes: the same OpCodes either way, and None for an UNKNOWN)
    from exprcompiler.trace import render_bulk
    from exprcompiler.trace.columns import CODE, UNKNOWN
    rng = np.random.default_rng(n)
    some = np.array(sorted(CODE.values()), np.uint8)
    table = rng.choice(some[:12], n).astype(np.uint8)
    for counted_from in (0, 10 ** 9):
        monkeypatch.setattr(render_bulk, "_COUNTED_FROM", counted_from)
        render_bulk._NUMBERED.clear()
        got = render_bulk.op_codes_of_table(table)
        assert got.names == sorted({render_bulk.OP_NAMES[c] for c in table.tolist()})
        assert [got.names[k] for k in got.code.tolist()] == [render_bulk.OP_NAMES[c] for c in table.tolist()]
        if n:
            assert render_bulk.op_codes_of_table(np.append(table, np.uint8(UNKNOWN))) is None
