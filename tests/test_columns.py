"""A trace's columns (trace/columns.py: op codes, argument counts, the flat arguments)
are what a plain read of its instructions gives, wherever a stage made them: the
front end's finish (renumbered or not), a finish of a builder that loaded a trace,
splice, a rewrite in place; they are read, not made again, by share_sums and a
pass's load; and they are a cache, never part of the trace's value."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.parse import parse
from exprcompiler.passes import grad_reverse
from exprcompiler.passes.replay import replay
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.randexpr import random_program
from exprcompiler.trace import columns as columns_mod
from exprcompiler.trace import ir
from exprcompiler.trace.columns import CODE, OP_NAMES, UNKNOWN, columns, made, take_columns

from test_builder_finish import _random_builder
from test_share_sums import GRIEWANK, sum_program


def plain(instrs) -> tuple:
    """(codes, counts, flat) as lists, read instruction by instruction."""
    return ([CODE.get(ins.op, UNKNOWN) for ins in instrs], [len(ins.args) for ins in instrs],
            [a for ins in instrs for a in ins.args])


def as_lists(cols) -> tuple:
    assert cols.code.dtype == np.uint8 and cols.flat.dtype == np.int32
    assert not cols.code.flags.writeable and not cols.flat.flags.writeable
    return cols.code.tolist(), cols.counts.tolist(), cols.flat.tolist()


TEXTS = [GRIEWANK, "x + y", "sin(x)", "2.0", "a = exp(x)\nb = a * y\nsin(b) + a",
         "a = sin(x) * 0\na + y",              # dead code: a renumbering finish
         "a = x * y\nb = a - a\nb + z",
         "q = w\ncos(x) + exp(-y)",             # an input guessed and read nowhere
         *(random_program(60, seed=seed) for seed in range(20)), *(sum_program(seed) for seed in range(20))]


@pytest.mark.parametrize("text", TEXTS)
def test_a_front_ends_trace_keeps_the_columns_its_finish_read(text):
    trace = to_trace(text)   # (share_sums: spliced, or the finish's trace itself)
    assert trace._columns is not None
    assert as_lists(trace._columns) == plain(trace.instrs)
    assert as_lists(parse(text)._columns) == plain(parse(text).instrs)


@pytest.mark.parametrize("expr", ["x**-2 + sin(-1*x)*y", "exp(x)/(1 + exp(x)) - x**-3*y", "sqrt(x*y) - 1/(x*y)"])
def test_a_sympy_trace_with_dead_instructions(expr):
    trace = to_trace(sympy.sympify(expr, evaluate=False))
    assert as_lists(trace._columns) == plain(trace.instrs)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**6), loaded=st.booleans(), number=st.booleans(), reorder=st.booleans(),
       last=st.booleans())
def test_finish_keeps_the_columns_of_what_it_makes(seed, loaded, number, reorder, last):
    """Dead code, inputs moved, a loaded part (its columns the loaded trace's), a last finish."""
    twins = [_random_builder(random.Random(seed), loaded) for _ in range(2)]
    order = sorted(twins[0][0]._inputs, reverse=True) if reorder else None
    (b, outputs), (c, _) = twins
    trace = b.finish(outputs, input_order=order, number=number, last=last, keep_columns=True)
    assert as_lists(trace._columns) == plain(trace.instrs)
    other = c.finish(outputs, input_order=order, number=number, last=last)
    assert other._columns is None
    assert (trace.instrs, trace.labels, trace.outputs, trace.inputs) == \
        (other.instrs, other.labels, other.outputs, other.inputs)


def test_a_finish_after_a_load():
    """(_live reads only what was built after the load: its arguments are the
    columns' last ones)"""
    primal = to_trace(random_program(80, seed=3))
    b = ir.Builder()
    vmap = replay(b, primal)
    assert b._loaded and primal._columns is None   # (taken by the load)
    y = vmap[primal.outputs[0][1]]
    dead = b.exp(b.cos(y))
    out = b.mul(b.sin(y), vmap[0])
    built = len(b.instrs)
    trace = b.finish([(primal.outputs[0][0], y), ("z", out)], keep_columns=True)
    assert dead < built and len(trace.instrs) == built - 2   # (cos and exp: dead code, renumbered)
    assert as_lists(trace._columns) == plain(trace.instrs)


@pytest.mark.parametrize("seed", range(30))
def test_the_spliced_traces_columns(seed):
    trace = parse(sum_program(seed))
    spliced = share_sums(trace, numbered=True)
    assert as_lists(spliced._columns) == plain(spliced.instrs)


def test_read_once_from_the_front_end_to_the_pass(monkeypatch):
    """The finish reads them; share_sums and the pass's load read the finish's."""
    calls = []

    def counting(instrs, *args, **kwargs):
        calls.append(len(instrs))
        return made(instrs, *args, **kwargs)
    monkeypatch.setattr(columns_mod, "made", counting)
    import exprcompiler.trace.finish as finish_mod
    monkeypatch.setattr(finish_mod, "made", counting)
    text = random_program(300, seed=4)
    primal = to_trace(text)   # (parse, finish, share_sums)
    assert len(calls) == 1
    grad_reverse(primal)      # (its load takes them: not held while the pass and generate run)
    assert len(calls) == 1 and primal._columns is None


def test_a_load_takes_them_and_they_are_made_again_when_asked():
    trace = to_trace(GRIEWANK)
    replay(ir.Builder(), trace)
    assert trace._columns is None
    assert as_lists(columns(trace)) == plain(trace.instrs)
    assert trace._columns is not None
    assert as_lists(take_columns(trace)) == plain(trace.instrs) and trace._columns is None


def test_they_are_not_the_traces_value():
    trace = to_trace(GRIEWANK)
    assert trace._columns is not None
    again = pickle.loads(pickle.dumps(trace))
    assert again._columns is None and again.instrs == trace.instrs and str(again) == str(trace)
    with pytest.raises(ValueError):
        trace._columns.flat[0] = 1
    with pytest.raises(AttributeError):
        trace._columns = None


def test_odd_instructions():
    instrs = [ir.Instr("input", (), (("name", "x"),)), ir.Instr("xc_not_an_op", (0,)),
              ir.Instr("stack", (0, 1) * 150), ir.Instr("sin", (2,))]
    trace = ir.Trace(instrs, [None] * 4, [("y", 3)])
    cols = columns(trace)
    assert cols.code.tolist() == [CODE["input"], UNKNOWN, CODE["stack"], CODE["sin"]]
    assert cols.counts.dtype == np.int32 and cols.counts.tolist() == [0, 1, 300, 1]
    assert cols.starts().tolist() == [0, 0, 1, 301]
    assert cols.flat.tolist() == plain(instrs)[2]
    empty = ir.Trace([], [], [])
    assert as_lists(columns(empty)) == ([], [], [])
    assert len(OP_NAMES) < UNKNOWN
