"""What a long generated NumPy function holds, and when (numpy_backend.generated):
a statement program's slots are one list of ints, an int object per slot (every
statement's one after another, each template handing the next where the next
statement's start: numpy_program), made from
the bulk renderer's flat array (render_bulk.FlatSlots) once the renderer's arrays
are gone; the one-point variant's program shares the batch program's slots and
texts where they are the same, with the same text, slots and values as its own; a
failing statement is still found by its slots' start (its line shown again)."""

from __future__ import annotations

import sys
import weakref

import numpy as np
import pytest

from exprcompiler import compile_grad, passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.randexpr import random_program
from exprcompiler.trace import render, render_bulk


@pytest.fixture
def programs(monkeypatch):
    """Every function a program, keyed (not only above 20,000 lines)."""
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    monkeypatch.setattr(numpy_backend, "_KEYED_MARGIN", 0)


def test_the_slots_are_one_list_made_after_the_renderer_is_gone(programs, monkeypatch):
    grad = passes.grad_reverse(to_trace(random_program(300, seed=2)))
    renderers, alive = [], []
    bulk, keyed_lines = render.Renderer._bulk_keys, numpy_backend._keyed_lines

    def bulk_keys(self, *a):
        renderers.append(weakref.ref(self))
        return bulk(self, *a)

    def lines(*a):
        out = keyed_lines(*a)
        alive.append([r() is not None for r in renderers])
        return out
    monkeypatch.setattr(render.Renderer, "_bulk_keys", bulk_keys)
    monkeypatch.setattr(numpy_backend, "_keyed_lines", lines)
    source, _, program = numpy_backend.generated(grad)
    monkeypatch.undo()
    assert alive == [[True]] and renderers[0]() is None   # (the bulk path, its renderer gone with generate)
    # the renderer's statements' slots, one after another, then the return line's
    trace, _ = numpy_backend._prepared(grad, False)
    r = render.Renderer(trace, numpy_backend.SPELLING, None, named=render.named_vars(trace), rhs_all="    ",
                        slots=np.arange(len(trace.instrs)))
    numbered, flat = r.statements(flat=True)
    assert type(flat) is render_bulk.FlatSlots and flat.tuples() == r.statements()[1]
    assert [flat[k] for k in range(len(flat))] == flat.tuples()
    assert len(program.numbered) == len(flat) + 1
    statements = program.slots[:len(flat.flat)]   # (the return line's follow)
    assert type(program.slots) is list and len(statements) == len(flat.flat) > len(flat)
    # (that they are the per-variable renderer's: test_render_bulk's generate either way)
    assert len(set(map(id, statements))) == len(set(statements))   # an int object per slot
    # made at its size (not grown: an eighth spare, and copies as it grew)
    assert sys.getsizeof(program.slots) == sys.getsizeof([None] * len(program.slots))


def _variant(grad, like):
    return numpy_backend.generated(grad, func_name="f_grad", point=True, guarded=True,
                                   like=like)


@pytest.mark.parametrize("seed", range(3))
def test_the_one_point_variant_shares_the_batch_programs_slots(programs, seed):
    grad = passes.grad_reverse(to_trace(random_program(400, seed=seed)))
    _, _, batch = numpy_backend.generated(grad, func_name="f_grad")
    source, _, shared = _variant(grad, batch)
    again, _, own = _variant(grad, None)
    assert str(source) == str(again)
    assert shared.slots == own.slots and list(shared.numbered) == list(own.numbered)
    assert shared.slots is batch.slots and own.slots is not batch.slots
    assert shared.texts is batch.texts and own.texts is not batch.texts
    x = np.linspace(0.2, 0.9, len(grad.input_names)).tolist()
    f = numpy_backend.load(source, "f_grad", program=shared)
    g = numpy_backend.load(again, "f_grad", program=own)
    assert np.asarray(f(*x)).tobytes() == np.asarray(g(*x)).tobytes()


def test_another_traces_program_is_not_shared(programs):
    grad = passes.grad_reverse(to_trace(random_program(400, seed=5)))
    _, _, other = numpy_backend.generated(passes.grad_reverse(to_trace(random_program(400, seed=6))))
    source, _, program = _variant(grad, other)
    again, _, own = _variant(grad, None)
    assert str(source) == str(again) and program.slots == own.slots
    assert program.slots is not other.slots and program.texts is not other.texts


def test_a_compiled_gradient_called_at_one_point_shares_them(programs, monkeypatch):
    made = []
    generated = numpy_backend.generated

    def recorded(*a, **kw):
        out = generated(*a, **kw)
        made.append((kw.get("like"), out.program))
        return out
    monkeypatch.setattr(numpy_backend, "generated", recorded)
    g = compile_grad(random_program(300, seed=1))
    x = [0.2 + 0.07 * k for k in range(len(g.inputs))]
    value, grads = g(*x)
    g(*x)   # (the second call with numbers: the variant that returns the result nested)
    batch = g._text.program
    assert made[0] == (None, batch) and len(made) >= 2
    for like, variant in made[1:]:
        assert like is batch and variant.slots is batch.slots
    # the same values as a variant of its own
    monkeypatch.setattr(numpy_backend, "generated", lambda *a, **kw: generated(*a, **{**kw, "like": None}))
    alone = compile_grad(random_program(300, seed=1))
    for _ in range(2):
        assert alone(*x) == (value, grads) == g(*x)



def test_the_slot_list_is_filled_a_small_chunk_at_a_time():
    """_slot_list holds, besides the list it fills and its ints (an int object per
    slot), their object array (8 bytes a slot) and a chunk's object array and list:
    under a quarter of a MB more (at 2¹⁶ slots a chunk, a MB: 100 bytes an operation
    of the pipeline's peak at 10⁴ operations; and the ints were made from an int64
    array, 8 bytes a slot more)."""
    import gc
    import tracemalloc
    rng = np.random.default_rng(1)
    holes, slots = 200_000, 60_000
    flat = rng.integers(0, slots, holes).astype(np.int32)
    given = render_bulk.FlatSlots(flat, np.arange(0, holes, 3, dtype=np.int32))
    gc.collect()
    tracemalloc.start()
    try:
        out = numpy_backend._slot_list(given, (1, 2))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out[:holes] == flat.tolist() and out[holes:] == [1, 2]
    assert peak - held < 8 * slots + (1 << 18)


def test_the_bulk_renderers_temporaries_are_made_a_span_at_a_time():
    """render_bulk's passes over every variable make their temporaries a span at a
    time, and a gradient of ~6·10³ operations (~4·10⁴ variables) is several spans:
    what the renderer holds at its peak beyond what it keeps is a few bytes a
    variable (at a span larger than the trace, whole-trace temporaries: ~40)."""
    import gc
    import tracemalloc
    trace, _ = numpy_backend._prepared(passes.grad_reverse(to_trace(random_program(6000, seed=1))), False)
    n = len(trace.instrs)
    assert n > 30_000
    named = render.named_vars(trace)
    slots = np.arange(n, dtype=np.int32)
    gc.collect()
    tracemalloc.start()
    try:
        r = render.Renderer(trace, numpy_backend.SPELLING, None, named=named, rhs_all="    ", slots=slots)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r._bulk is not None   # (the bulk path)
    assert peak - held < 24 * n


def test_the_squares_columns_are_made_without_every_instructions_start():
    """_prepared_codes' x**2 -> x * x on a gradient whose columns are kept rewrites
    their arguments at the squares only: it holds, beyond the trace it returns, the
    list its tuple is made from (8 bytes an instruction) but no array of every
    instruction's start (three int64 arrays at once: 24 bytes an instruction)."""
    import gc
    import tracemalloc
    from exprcompiler.bench.suite_scaling import random_dag
    from exprcompiler.trace.columns import kept
    grad = passes.grad_reverse(to_trace(random_dag(6000, seed=1)))
    n = len(grad.instrs)
    assert kept(grad) is not None and any(ins.op == "pow" for ins in grad.instrs)
    gc.collect()
    tracemalloc.start()
    try:
        trace, _, _ = numpy_backend._prepared_codes(grad, False)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept(trace) is not None and "pow" not in {ins.op for ins in trace.instrs}
    assert peak - held < 13 * n
