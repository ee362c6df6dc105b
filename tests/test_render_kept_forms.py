"""What a renderer works out that does not depend on its trace is kept for the process's
later renderers (trace/render.py's _kept_forms): the ops' forms (Renderer._generic) and
the keys' shapes (render_keys._shapes_of), per renderer class, spelling and indentation.
A later renderer finds them, writes the same keys as one that made its own, and does not
take them from a table whose op definitions changed since. render_bulk.op_codes_of_table
numbers the ops as op_codes does, from a kept numbering per set of ops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exprcompiler import ops, passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.backends.numpy_render import NumpyRenderer
from exprcompiler.randexpr import random_program
from exprcompiler.trace import render as render_mod
from exprcompiler.trace.columns import OP_NAMES, UNKNOWN
from exprcompiler.trace.render import Renderer, named_vars
from exprcompiler.trace.render_bulk import op_codes, op_codes_of_table, table_codes
from test_render_keys import TRACES


def _keyed(trace, cls=Renderer, spell=numpy_backend.SPELLING):
    named = named_vars(trace)
    return cls(trace, spell, None, named=named, rhs_all="    ", slots=list(range(len(named))))


def _statements(r) -> list:
    """Each statement's key text and slots, as the renderer numbered them."""
    keys = list(r.keys)
    return [(keys[n], r.line_holes[i]) for i, n in enumerate(r.rhs_texts) if n is not None]


def _counting(monkeypatch, cls):
    made, generic = [], cls._generic

    def counted(self, op_name):
        made.append(op_name)
        return generic(self, op_name)
    monkeypatch.setattr(cls, "_generic", counted)
    fast, fast_made = cls._fast_text, []
    monkeypatch.setattr(cls, "_fast_text", lambda self, op, args: fast_made.append(op) or fast(self, op, args))
    return made, fast_made


@pytest.mark.parametrize("cls", [Renderer, NumpyRenderer])
def test_a_later_renderer_makes_no_form_or_shape_an_earlier_made(monkeypatch, cls):
    first = passes.grad_reverse(to_trace(random_program(60, n_vars=3, seed=11)))
    # the same program again: every op and shape of its trace made by the first
    second = passes.grad_reverse(to_trace(random_program(60, n_vars=3, seed=11)))
    forms, shapes = _counting(monkeypatch, cls)
    _keyed(first, cls)
    assert forms and shapes   # (made here: the monkeypatched methods key their own)
    forms.clear(), shapes.clear()
    r = _keyed(second, cls)
    assert forms == []
    if r._bulk is None:   # (the per-variable keys; the trace-at-once keys make their shapes per trace)
        assert shapes == []
    assert cls is Renderer or r._bulk is None


def _every_key(r, n: int) -> tuple:
    """The renderer's statements, and every variable's key, precedence and holes."""
    return _statements(r), [(*r.expr(i), r.holes[i]) for i in range(n)]


def test_kept_shapes_give_the_keys_a_renderer_makes_alone(monkeypatch):
    traces = [passes.grad_reverse(to_trace(random_program(50, n_vars=3, seed=seed))) for seed in range(5)]
    traces.append(passes.jvp(to_trace(random_program(40, n_vars=2, seed=7))))
    traces += [trace for _, trace in TRACES]   # (masks, wheres, sums over axes, constants of each sign)
    for cls in (NumpyRenderer, Renderer):
        kept = [_every_key(_keyed(t, cls), len(t.instrs)) for t in traces]   # (each after the ones before it)
        for trace, keys in zip(traces, kept):
            monkeypatch.setattr(render_mod, "_FORMS", {})   # nothing kept: made by this renderer alone
            assert _every_key(_keyed(trace, cls), len(trace.instrs)) == keys


def test_kept_forms_follow_a_changed_op_definition(monkeypatch):
    trace = passes.grad_reverse(to_trace("sin(x) * y + sin(y)"))
    spell = numpy_backend.SPELLING
    assert "np.sin(" in "".join(_keyed_text(trace, spell))
    monkeypatch.setitem(ops.OPS, "sin", dataclasses.replace(ops.OPS["sin"], numpy="np.sine_of"))
    text = "".join(_keyed_text(trace, spell))
    assert "np.sine_of(" in text and "np.sin(" not in text


def _keyed_text(trace, spell) -> list:
    return [key for key, _ in _statements(_keyed(trace, Renderer, spell))]


def test_op_codes_of_table_numbers_ops_as_op_codes(monkeypatch):
    rng = np.random.default_rng(5)
    monkeypatch.setattr("exprcompiler.trace.render_bulk._NUMBERED", {})
    for size, kinds in [(0, 3), (1, 1), (40, 3), (300, 12), (300, 12), (500, len(OP_NAMES))]:
        table = rng.choice(np.arange(len(OP_NAMES), dtype=np.uint8), size=kinds, replace=False)[
            rng.integers(0, kinds, size)].astype(np.uint8)
        got = op_codes_of_table(table)
        want = op_codes([OP_NAMES[c] for c in table.tolist()])
        assert got.names == want.names and got.code.dtype == np.int16
        assert np.array_equal(got.code, want.code)
    assert op_codes_of_table(np.array([0, UNKNOWN, 3], np.uint8)) is None
    g = passes.grad_reverse(to_trace("exp(x) * y - x**3"))
    got, want = op_codes_of_table(table_codes(g.instrs)), op_codes([ins.op for ins in g.instrs])
    assert got.names == want.names and np.array_equal(got.code, want.code)
