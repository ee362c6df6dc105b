"""The bulk load of a finished trace into a builder (trace.builder_load.load) leaves the
builder exactly as replaying the trace would, or declines and leaves it empty: on
traces of the front end and of the derivative passes, and on hand-made traces with
what the builder folds, simplifies or shares (constants, negations, copies, shapes,
repeated keys, labels where the replay drops them)."""

from __future__ import annotations

from contextlib import contextmanager
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp
from exprcompiler.passes import replay as replay_mod
from exprcompiler.randexpr import random_program
from exprcompiler.trace import ir
from exprcompiler.trace import builder_load
from exprcompiler.trace.builder_load import load

from test_builder_fast import expressions

_STATE = ("instrs", "labels", "_memo", "_inputs", "_copies", "_consts", "_flags", "_scalar_consts", "_folds")


def _state(b: ir.Builder) -> dict:
    # repr where values may be NaN (not == themselves)
    # (labels: label_list, a loaded trace's made from its columns, placeholders in b.labels)
    return {k: repr(getattr(b, k)) if k in ("instrs", "_consts", "_scalar_consts")
            else b.label_list() if k == "labels" else getattr(b, k)
            for k in _STATE}


def _replayed(trace: ir.Trace, pull_negations: bool):
    b = ir.Builder(pull_negations=pull_negations)
    vmap = replay_mod.replay(b, trace, rewrite={-1: None})   # (a rewrite: the replay proper)
    return b, vmap


# builder_load.SMALL under which each path of `load` runs: NumPy's, the small traces' loop
_PATHS = {"numpy": 0, "small": 1 << 40}


@contextmanager
def _path(name: str):
    saved, builder_load.SMALL = builder_load.SMALL, _PATHS[name]
    try:
        yield
    finally:
        builder_load.SMALL = saved


@pytest.fixture(params=sorted(_PATHS))
def path(request):
    with _path(request.param):
        yield request.param


def _check(trace: ir.Trace) -> int:
    """Loads of `trace` (without and with pull_negations, by each path) that took the bulk path."""
    loaded = 0
    for pull, name in product((False, True), sorted(_PATHS)):
        b = ir.Builder(pull_negations=pull)
        try:
            ref, vmap = _replayed(trace, pull)
        except Exception as e:   # a trace the replay refuses: the load must not take it either
            with _path(name):
                assert not load(b, trace), e
            continue
        with _path(name):
            taken = load(b, trace)
        if taken:
            loaded += 1
            assert vmap == list(range(len(trace.instrs)))
            assert _state(b) == _state(ref)
        else:
            assert _state(b) == _state(ir.Builder(pull_negations=pull))
    return loaded


@settings(max_examples=80, deadline=None)
@given(text=expressions())
def test_load_is_the_replay_of_front_end_and_derivative_traces(text):
    trace = to_trace(f"({text}) + x * y")
    grad = grad_reverse(trace)
    for t in (trace, grad, hvp(trace), grad_reverse(grad) if len(grad.outputs) == 1 else grad):
        _check(t)


def test_load_takes_the_benchmark_traces():
    trace = to_trace(random_program(300, seed=3))
    assert _check(trace) == 4   # what the bulk path is for (both paths, with and without pull)
    _check(grad_reverse(trace))


_CONSTS = (0.0, -0.0, 1.0, -1.0, 2.0, 0.5, float("nan"))
_OPS = (("add", 2), ("sub", 2), ("mul", 2), ("div", 2), ("pow", 2), ("maximum", 2),
        ("neg", 1), ("sin", 1), ("exp", 1))


@st.composite
def hand_made_traces(draw):
    """Traces no Builder made: anything the replay may fold, simplify, share or drop."""
    instrs, labels, k = [], [], 0
    shaped = draw(st.integers(0, 9)) == 0
    for j in range(draw(st.integers(1, 3))):
        instrs.append(ir.Instr("input", (), (("name", f"x{j}"),), (2,) if shaped and j == 0 else ()))
        labels.append(ir.Label("v", j - 2, base=f"x{j}"))
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.integers(0, 9))
        n = len(instrs)
        label = ir.Label("v", k + 1) if draw(st.integers(0, 4)) else None
        if kind == 0:
            instrs.append(ir.Instr("const", (), (("value", draw(st.sampled_from(_CONSTS))),)))
            labels.append(label if draw(st.integers(0, 5)) == 0 else None)
            continue
        k += 1
        if kind == 1:
            instrs.append(ir.Instr("copy", (draw(st.integers(0, n - 1)),), (), ()))
        else:
            op, arity = draw(st.sampled_from(_OPS))
            args = tuple(draw(st.integers(0, n - 1)) for _ in range(arity))
            instrs.append(ir.Instr(op, args, (), instrs[args[0]].shape))
        labels.append(label)
    out = len(instrs) - 1
    return ir.Trace(instrs, labels, [("y", out)])


@settings(max_examples=400, deadline=None)
@given(trace=hand_made_traces())
def test_load_is_the_replay_of_hand_made_traces(trace):
    _check(trace)


def test_load_declines_what_the_replay_changes(path):
    # each trace holds one thing the replay does differently; the load must decline it
    I = ir.Instr
    x, y = I("input", (), (("name", "x"),)), I("input", (), (("name", "y"),))
    two = I("const", (), (("value", 2.0),))
    one = I("const", (), (("value", 1.0),))
    cases = {
        "x + -y is x - y": [x, y, I("neg", (1,)), I("add", (0, 2))],
        "x * 1.0 is x": [x, one, I("mul", (0, 1))],
        "2.0 * 2.0 folds": [x, two, I("mul", (1, 1)), I("add", (0, 2))],
        "x*y twice is one": [x, y, I("mul", (0, 1)), I("mul", (1, 0)), I("add", (2, 3))],
        "2.0 twice is one": [x, two, two, I("add", (0, 1)), I("add", (3, 2))],
        "an input twice": [x, x, I("add", (0, 1))],
        "an unlabelled copy is its source": [x, I("copy", (0,)), I("sin", (1,))],
    }
    for why, instrs in cases.items():
        labels = [None] * len(instrs)
        trace = ir.Trace(instrs, labels, [("f", len(instrs) - 1)])
        assert not load(ir.Builder(), trace), why
        _check(trace)
    # the derivative passes' rule: (-x)·y -> -(x·y), for an unnamed negation
    trace = ir.Trace([x, y, I("neg", (0,)), I("mul", (2, 1))], [None] * 4, [("f", 3)])
    assert load(ir.Builder(), trace) and not load(ir.Builder(pull_negations=True), trace)
    _check(trace)


def test_load_declines_a_replaced_op(monkeypatch, path):
    import dataclasses

    from exprcompiler import ops
    trace = to_trace("sin(x) * y")
    assert load(ir.Builder(), trace)
    monkeypatch.setitem(ops.OPS, "sin", dataclasses.replace(ops.OPS["sin"]))
    assert not load(ir.Builder(), trace)


@pytest.mark.parametrize("pull", [False, True])
def test_a_loaded_builder_goes_on_as_a_replayed_one(pull, path):
    # what the derivative passes do next: apply more, through the loaded tables
    trace = to_trace(random_program(40, seed=8))
    loaded, ref = ir.Builder(pull_negations=pull), _replayed(trace, pull)[0]
    assert load(loaded, trace)
    for b in (loaded, ref):
        v = len(trace.instrs) - 1
        b.name(b.add(b.mul(v, b.const(2.0)), b.neg(b.mul(0, 1))), ir.Label("v", 99))
        b.mul(1, 0)
    assert _state(loaded) == _state(ref)


@settings(max_examples=400, deadline=None)
@given(trace=hand_made_traces(), pull=st.booleans())
def test_what_numpy_passes_the_rules_pass(trace, pull):
    """builder_load._surely_as_written (the rules of sums, powers and functions asked
    per op in NumPy) passes only instructions that built_as_written passes too, asked
    one by one of the loaded builder (a wrong pass would let the load take what the
    replay changes: then one of these is False)."""
    sure = []
    inner = builder_load._surely_as_written

    def spy(flagged, *args):
        verdict = inner(flagged, *args)
        sure.extend(flagged[verdict].tolist())
        return verdict
    builder_load._surely_as_written = spy
    try:
        b = ir.Builder(pull_negations=pull)
        with _path("numpy"):
            taken = load(b, trace)
    finally:
        builder_load._surely_as_written = inner
    if taken:
        assert all(builder_load.built_as_written(b, [i]) for i in sure)


def test_numpy_passes_the_sums_powers_and_functions_of_a_front_end():
    calls = []
    inner = builder_load.built_as_written
    builder_load.built_as_written = lambda b, flagged: calls.append(len(flagged)) or inner(b, flagged)
    try:
        trace = to_trace(random_program(300, seed=3))
        object.__setattr__(trace, "_built", None)   # (load's own path, not its parse's tables: builder_load.adopt)
        with _path("numpy"):
            assert load(ir.Builder(), trace)
    finally:
        builder_load.built_as_written = inner
    # (without the NumPy rules every instruction with a constant or negated argument is asked)
    assert calls and calls[0] < 60


_LOADED = ("_loaded", "_loaded_labels", "_loaded_outputs")


@settings(max_examples=300, deadline=None)
@given(trace=hand_made_traces(), pull=st.booleans())
def test_the_small_traces_loop_is_the_numpy_path(trace, pull):
    """Both paths of `load` take the same traces and leave the same builder, down to
    the order of its tables and what finish reads of a loaded trace."""
    built = []
    for name in sorted(_PATHS):
        b = ir.Builder(pull_negations=pull)
        with _path(name):
            built.append((load(b, trace), _state(b), [list(getattr(b, k).items()) if k.startswith("_") and
                                                      isinstance(getattr(b, k), dict) else getattr(b, k)
                                                      for k in _STATE[2:]],
                          tuple(repr(getattr(b, k, None)) for k in _LOADED)))
    assert built[0] == built[1]


def test_the_small_traces_loop_takes_front_end_and_derivative_traces():
    trace = to_trace(random_program(40, seed=5))
    for t in (trace, grad_reverse(trace)):
        assert _check(t) == 4   # (each path, with and without pull)
