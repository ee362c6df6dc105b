"""The keys of a whole trace at once (trace/render_bulk.py) are the per-variable
renderer's (Renderer._render_keys), key for key and slot for slot: the same keys,
numbered in the same order, each statement's slots, each variable's key, precedence
and holes. It is taken for plain gradients (the test fails if it silently declines),
and declines, leaving the per-variable renderer to it, where it must: terms nested
deeper than MAX_DEPTH, an inlined term read twice, a call with attributes, an op
that a subclass spells itself. The named variables (named_array) are named_vars'
rule, checked against its former loop; generate's text is byte for byte the same
either way."""

from __future__ import annotations

import gc
import math
import tracemalloc
import weakref
from itertools import product
from operator import itemgetter

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.backends.numpy_render import NumpyRenderer
from exprcompiler.passes import reverse
from exprcompiler.randexpr import random_program
from exprcompiler.trace import render, render_bulk, render_keys
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.render import Renderer, named_array, named_vars, use_counts
from test_render_keys import TRACES, _patterns


def _keys(trace, named, bulk: bool, renderer=Renderer, monkeypatch=None, **kw):
    """A keys renderer of `trace` (a slot per variable), by the bulk path or not."""
    slots = np.arange(len(named)) if bulk else list(range(len(named)))
    if not bulk:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(render_keys, "bulk_keys", lambda *a, **k: None)
            return renderer(trace, numpy_backend.SPELLING, None, named=named, rhs_all="    ", slots=slots, **kw)
    return renderer(trace, numpy_backend.SPELLING, None, named=named, rhs_all="    ", slots=slots, **kw)


def _same(a: Renderer, b: Renderer, n: int) -> None:
    assert list(a.keys) == list(b.keys)
    numbered_a, slots_a = a.statements()
    numbered_b, slots_b = b.statements()
    assert list(numbered_a) == list(numbered_b) and slots_a == slots_b
    assert all(type(h) is int for s in slots_a for h in s)
    assert a.constants == b.constants
    for i in range(n):
        assert a.expr(i) == b.expr(i) and a.holes[i] == b.holes[i], i
        assert a.rhs_texts[i] == b.rhs_texts[i] and a.line_holes[i] == b.line_holes[i], i


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
@pytest.mark.parametrize("renderer", [Renderer, NumpyRenderer])
def test_bulk_keys_are_the_per_variable_keys(what, trace, renderer):
    trace, _ = numpy_backend._prepared(trace, False)
    for _, named in _patterns(trace):
        bulk = _keys(trace, named, True, renderer)
        _same(bulk, _keys(trace, named, False, renderer), len(named))


@pytest.mark.parametrize("seed", range(3))
def test_plain_gradients_take_the_bulk_path(seed):
    trace, _ = numpy_backend._prepared(passes.grad_reverse(to_trace(random_program(200, seed=seed))), False)
    named = named_vars(trace)
    r = _keys(trace, named, True, NumpyRenderer)
    assert r._bulk is not None and len(r.statements()[1]) > 200


def _chain(depth: int) -> Trace:
    """sin(sin(...sin(x)...)) with no label but the input's and the output's: one
    statement whose right-hand side nests `depth` inlined terms."""
    instrs = [Instr("input", (), (("name", "x"),))] + [Instr("sin", (k,)) for k in range(depth + 1)]
    labels = [Label("v", 0, "x")] + [None] * (depth + 1)
    return Trace(instrs, labels, [("y", depth + 1)])


@pytest.mark.parametrize("depth, bulk", [(render_bulk.MAX_DEPTH, True), (render_bulk.MAX_DEPTH + 1, False),
                                         (5000, False)])
def test_deep_terms_go_to_the_per_variable_renderer(depth, bulk):
    trace = _chain(depth)
    named = named_vars(trace)
    r = _keys(trace, named, True)
    assert (r._bulk is not None) == bulk
    assert list(r.keys) == ["    {} = " + "np.sin(" * (depth + 1) + "{}" + ")" * (depth + 1)]
    _same(r, _keys(trace, named, False), len(named))


def test_declines_a_term_read_twice_and_a_call_with_attributes():
    x = Instr("input", (), (("name", "x"),))
    instrs = [x, Instr("sin", (0,)), Instr("mul", (1, 1)), Instr("cos", (0,), (("flag", 1),))]
    labels = [Label("v", 0, "x"), None, Label("v", 1), Label("v", 2)]
    trace = Trace(instrs, labels, [("y", 2), ("z", 3)])
    twice = [True, False, True, True]   # sin(x) inlined into both operands of the product
    for named in (twice, named_vars(trace)):
        r = _keys(trace, named, True)
        assert r._bulk is None
        _same(r, _keys(trace, named, False), len(named))
    assert any("np.sin({}) * np.sin({})" in k for k in _keys(trace, twice, True).keys)
    assert any("flag=1" in k for k in _keys(trace, twice, True).keys)


def test_an_op_a_subclass_spells_goes_to_the_per_variable_renderer():
    trace = passes.grad_reverse(to_trace("relu(x) * y + sin(x * y)"))
    trace, _ = numpy_backend._prepared(trace, False)
    r = _keys(trace, named_vars(trace), True, NumpyRenderer)
    assert r._bulk is None and any("* ({} > {})" in k for k in r.keys)   # its mask, spelled by NumpyRenderer


def _named_loop(trace):
    """named_vars as it was written: a loop over the instructions."""
    uses = use_counts(trace)
    named = [op != "const" and (label is not None or k > 1 or op == "input" or op == "copy")
             for op, label, k in zip(map(itemgetter(0), trace.instrs), trace.labels, uses)]
    for _, v in trace.outputs:
        named[v] = trace.instrs[v].op != "const"
    return named


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
def test_named_array_is_named_vars_rule(what, trace):
    want = _named_loop(trace)
    assert named_vars(trace) == want == named_array(trace).tolist()
    assert named_vars(trace, use_counts(trace)) == want


def test_generate_is_the_same_text_either_way(monkeypatch):
    grad = passes.grad_reverse(to_trace(random_program(150, seed=7)))
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    monkeypatch.setattr(numpy_backend, "_KEYED_MARGIN", 0)
    taken = []
    bulk_keys = render_keys.bulk_keys
    monkeypatch.setattr(render_keys, "bulk_keys", lambda *a, **k: taken.append(1) or bulk_keys(*a, **k))
    source, _, program = numpy_backend.generated(grad)
    assert taken and program is not None
    monkeypatch.setattr(render_keys, "bulk_keys", lambda *a, **k: None)
    again, _, program_again = numpy_backend.generated(grad)
    assert str(source) == str(again)
    assert list(program.numbered) == list(program_again.numbered) and program.slots == program_again.slots
    x = np.linspace(0.2, 0.9, len(grad.input_names))
    f = numpy_backend.load(source, "f", program=program)
    g = numpy_backend.load(again, "f", program=program_again)
    assert [np.asarray(r).tobytes() for r in f(*x)] == [np.asarray(r).tobytes() for r in g(*x)]


# Memory (render_bulk's spans, narrow ids, reads handed over) changes no answer.

@pytest.mark.parametrize("seed", range(3))
def test_spans_give_the_same_keys(seed, monkeypatch):
    """The passes made a span at a time (_SPAN variables or statements) give the
    per-variable renderer's keys and slots where every pass takes many spans."""
    monkeypatch.setattr(render_bulk, "_SPAN", 7)
    trace, _ = numpy_backend._prepared(passes.grad_reverse(to_trace(random_program(300, seed=seed))), False)
    for _, named in _patterns(trace):
        bulk = _keys(trace, named, True, NumpyRenderer)
        assert bulk._bulk is not None
        _same(bulk, _keys(trace, named, False, NumpyRenderer), len(named))


def _many_shapes() -> Trace:
    """A statement per chain t(u(v(w(x)))) of four unary ops, the inner three
    inlined: more distinct inlined terms (shape ids) than a byte holds."""
    unary = ["sin", "cos", "exp", "tanh", "sqrt", "arctan", "sinh"]
    instrs, labels = [Instr("input", (), (("name", "x"),))], [Label("v", 0, "x")]
    outputs = []
    for chain in product(unary, repeat=4):
        for k, op in enumerate(chain):
            instrs.append(Instr(op, (len(instrs) - 1 if k else 0,)))
            labels.append(None)
        labels[-1] = Label("v", len(instrs) - 1)
        outputs.append((f"y{len(outputs)}", len(instrs) - 1))
    return Trace(instrs, labels, outputs)


def test_more_shapes_than_a_byte():
    trace = _many_shapes()
    named = named_vars(trace)
    bulk = _keys(trace, named, True)
    assert bulk._bulk is not None and len(bulk._bulk.texts) > 256 and bulk._bulk.ids.dtype == np.int16
    _same(bulk, _keys(trace, named, False), len(named))


def test_generate_hands_the_reads_over(monkeypatch):
    """generate hands its array of reads to the bulk renderer, which drops it once
    read: it is gone (no frame holds it) while the slots are placed. (A gradient the
    sweep holds as columns hands over its own arguments' array, which it keeps: the
    reads made from tuples are the ones to drop.)"""
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    monkeypatch.setattr(reverse, "_COLUMNS_FROM", math.inf)
    monkeypatch.setattr(numpy_backend, "_KEYED_MARGIN", 0)
    grad = passes.grad_reverse(to_trace(random_program(150, seed=3)))
    made, alive = [], []
    use_counts_and_reads = numpy_backend.use_counts_and_reads

    def counted(trace, **options):
        uses, reads = use_counts_and_reads(trace, **options)
        made.append(weakref.ref(reads))
        return uses, reads
    place = render_bulk._place

    def placing(*a):
        alive.append(made[-1]() is not None)
        return place(*a)
    monkeypatch.setattr(numpy_backend, "use_counts_and_reads", counted)
    monkeypatch.setattr(render_bulk, "_place", placing)
    source, _, program = numpy_backend.generated(grad)
    assert program is not None and alive and not any(alive)


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_bulk_keys_holds_little_more_than_its_answer(monkeypatch):
    """What bulk_keys holds at its peak beyond its answer (traced by tracemalloc,
    NumPy's arrays included), per variable: its passes' temporaries, a span at a
    time, and a few bools a variable (before: whole-trace int64 temporaries, 39
    bytes a variable at this size; now 7, the shape table's 90 kB among them)."""
    monkeypatch.setattr(render_bulk, "_SPAN", 1 << 10)
    trace, _ = numpy_backend._prepared(passes.grad_reverse(to_trace(random_program(5000, seed=1))), False)
    named = named_array(trace)
    _, reads = render.use_counts_and_reads(trace)
    r = _keys(trace, named, True, NumpyRenderer)   # (its ops' forms made, not traced below)
    handed = [reads]   # (made before tracing: what it frees is not taken off its peak)
    del reads
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        r = _keys(trace, named, True, NumpyRenderer, reads=handed)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r._bulk is not None and handed == []
    assert (peak - held) / len(named) < 12, (peak - held) / len(named)
