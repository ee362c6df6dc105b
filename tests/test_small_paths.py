"""The small traces' paths of the pipeline make what the general paths make.

A trace of 10² operations takes shortcuts the large ones do not (builder_load's
keys made in Python from the columns a front end kept, generate's slot lists
gathered by NumPy from the per-variable renderer's tuples): each is checked here
against the path that a larger trace takes, on the same trace.
"""

from __future__ import annotations

import pytest

from exprcompiler.backends import numpy_backend, numpy_render
from exprcompiler.bench.suite_scaling import deep_program, random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.trace import builder_load, ir
from exprcompiler.trace.columns import kept

_TEXTS = [random_dag(60, seed=1), random_dag(100, seed=7), deep_program(40),
          "a = x*y + sin(x)\nb = a*a - exp(-a)\nb / (1 + a**2) + sigmoid(b)"]


def _builder_state(b: ir.Builder) -> tuple:
    return (list(b.instrs), list(b.labels), bytes(b._flags), list(b._memo.items()), dict(b._inputs),
            dict(b._copies), dict(b._consts), dict(b._scalar_consts), b._loaded, b._loaded_outputs)


@pytest.mark.parametrize("text", _TEXTS)
def test_small_load_reads_the_kept_columns_as_the_tuples(text):
    """builder_load's small path on a front end's trace, with the columns its finish
    kept and without them: the same builder."""
    states = []
    for with_columns in (True, False):
        trace = to_trace(text)
        assert len(trace) < builder_load.SMALL
        if with_columns:
            assert kept(trace) is not None   # (a front end's finish keeps them)
        else:
            object.__setattr__(trace, "_columns", None)
        b = ir.Builder(pull_negations=True)
        assert builder_load.load(b, trace)
        assert kept(trace) is None   # (taken off the trace: not held while the pass runs)
        states.append(_builder_state(b))
    assert states[0] == states[1]


def _program(grad, at_once: bool):
    saved = numpy_render.KEYS_AT_ONCE_FROM
    numpy_render.KEYS_AT_ONCE_FROM = 0 if at_once else 1 << 40
    try:
        source, _, program = numpy_backend.generated(grad, func_name="f_grad", keep=[])
    finally:
        numpy_render.KEYS_AT_ONCE_FROM = saved
    return str(source), program


# gradients of plain lines and more than numpy_backend.TIER_FROM named variables:
# programs compiled on use
_PROGRAMS = [deep_program(60), deep_program(100),
             "\n".join(f"t{k} = sin(t{k - 1} * x) + cos(y * t{k - 1}) * t{k - 1}" for k in range(1, 30))
             .replace("t0", "x") + "\nt29 * y"]


@pytest.mark.parametrize("text", _PROGRAMS)
def test_program_slots_of_the_per_variable_keys_are_the_bulk_keys(text):
    """A program compiled on use (name_later) from the per-variable renderer's tuples
    (its slot lists gathered by NumPy) has the slots and the texts' numbers that the
    bulk renderer's FlatSlots give."""
    grad = grad_reverse(to_trace(text))
    (text_one, one), (text_bulk, bulk) = _program(grad, False), _program(grad, True)
    assert one is not None and bulk is not None
    assert one.texts.holes is not None   # (a program whose names are made later)
    assert type(one.slots) is list and all(type(s) is int for s in one.slots)
    assert one.slots == bulk.slots and one.texts.holes == bulk.texts.holes
    assert (one.formats, list(one.numbered), one.params, one.constants, one.size) == \
        (bulk.formats, list(bulk.numbered), bulk.params, bulk.constants, bulk.size)
    assert text_one == text_bulk
