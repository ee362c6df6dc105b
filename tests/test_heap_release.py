"""heap_release: freed heap pages given back before a stage makes many small objects
(the bulk sweep's tuples, generate's slot list), only for a large stage."""

from __future__ import annotations

import pytest

from exprcompiler import heap_release
from exprcompiler.backends import numpy_backend
from exprcompiler.frontend import to_trace
from exprcompiler.passes import reverse_bulk_layout
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.trace.column_instrs import ColumnInstrs
from exprcompiler.trace.ir_trace import instructions


@pytest.fixture
def trims(monkeypatch):
    calls = []
    monkeypatch.setattr(heap_release, "_trim", calls.append)
    return calls


def test_a_small_stage_releases_nothing(trims):
    heap_release.release_freed(heap_release.RELEASE_FROM - 1)
    assert trims == []


def test_a_large_stage_trims_every_free_page(trims):
    heap_release.release_freed(heap_release.RELEASE_FROM)
    assert trims == [0]   # (malloc_trim's pad: 0, every free page, not only the heap's top)


def test_without_malloc_trim_nothing_is_done(monkeypatch):
    monkeypatch.setattr(heap_release, "_trim", None)
    monkeypatch.setattr(heap_release, "_lookup", lambda: False)
    heap_release.release_freed(heap_release.RELEASE_FROM)
    assert heap_release._trim is False
    heap_release.release_freed(heap_release.RELEASE_FROM)   # (looked up once)


def test_the_real_call_returns(monkeypatch):
    monkeypatch.setattr(heap_release, "_trim", None)
    heap_release.release_freed(heap_release.RELEASE_FROM)   # (glibc: malloc_trim; elsewhere nothing)


def _text(terms: int) -> str:
    return " + ".join(f"sin(x{i % 5} * {i + 1}.5) * x{(i + 2) % 5}" for i in range(terms))


def test_the_bulk_sweep_releases_its_freed_arrays(monkeypatch):
    events = []
    monkeypatch.setattr(reverse_bulk_layout, "release_freed", events.append)
    trace = to_trace(_text(40))
    grad = grad_reverse_bulk(trace)
    assert grad is not None
    # (once, for its new instructions, which the gradient holds as columns: no tuple made)
    assert events == [len(grad) - len(trace)] and events[0] > 0
    assert type(instructions(grad)) is ColumnInstrs


def test_generate_releases_before_the_slot_list(monkeypatch):
    events = []
    monkeypatch.setattr(numpy_backend, "release_freed", lambda size: events.append(("release", size)))
    slot_list, program_slots = numpy_backend._slot_list, numpy_backend._program_slots

    def recorded(slots, tail):
        out = slot_list(slots, tail)
        events.append(("slot list", len(out) - len(tail)))
        return out

    def recorded_program(slots, tail, run_slots):   # (a program compiled on use: its slots as they are)
        holes, out = program_slots(slots, tail, run_slots)
        events.append(("slot list", len(out) - len(tail)))
        return holes, out
    monkeypatch.setattr(numpy_backend, "_slot_list", recorded)
    monkeypatch.setattr(numpy_backend, "_program_slots", recorded_program)
    trace = to_trace(_text(200))
    numpy_backend.generated(trace, func_name="f")
    (what, size), (then, holes) = events
    assert (what, then) == ("release", "slot list") and size == holes > 0


def test_a_gradient_of_ten_thousand_operations_gives_its_freed_heap_back(trims):
    """From ~10⁴ operations (the bulk sweep's ~2·10⁴ new instructions, generate's
    ~6·10⁴ holes) both stages trim: there the freed heap, 1-2 MB, is still a large
    part of the pipeline's peak."""
    from exprcompiler.bench.suite_scaling import random_dag
    from exprcompiler.passes import grad_reverse
    grad = grad_reverse(to_trace(random_dag(10_000, seed=1)))
    assert trims == [0]   # (the bulk sweep's)
    numpy_backend.generated(grad, func_name="f")
    assert trims == [0, 0]
