"""A front end's Builder hands its tables on with its trace (builder.trace_from_builder),
and the first pass that loads the trace into an empty builder starts from them
(builder_load.adopt) instead of making them again: the builder is then exactly what
replaying the trace would make, and where the replay would change the trace (a rule
that the front end's builder does not apply: c·(k·x) -> (c·k)·x where negations are
pulled) the tables are not taken. Behaviour only: the speed is bench_frontend's."""

from __future__ import annotations

import pytest

from exprcompiler.bench.suite_scaling import deep_program, random_dag
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse, hvp
from exprcompiler.passes import replay as replay_mod
from exprcompiler.randexpr import random_program
from exprcompiler.trace import finish as finish_mod
from exprcompiler.trace import builder_load, ir
from exprcompiler.trace.builder_load import load

_STATE = ("instrs", "labels", "_memo", "_inputs", "_copies", "_consts", "_flags", "_scalar_consts", "_folds")
_LOADED = ("_loaded", "_loaded_outputs", "_loaded_columns")   # (what a load sets beside, the replay not)


def _state(b: ir.Builder) -> dict:
    # repr where values may be NaN (not == themselves); labels as label_list makes them
    return {k: repr(getattr(b, k)) if k in ("instrs", "_consts", "_scalar_consts")
            else b.label_list() if k == "labels" else getattr(b, k)
            for k in _STATE}


def _without_tables(trace: ir.Trace) -> ir.Trace:
    """The same trace, its columns kept, without its builder's tables."""
    return ir.Trace(trace.instrs, trace.labels, trace.outputs, trace.source, _inputs=trace._inputs,
                    _all_live=trace._all_live, _columns=trace._columns)


def _replayed(trace: ir.Trace, pull: bool) -> ir.Builder:
    b = ir.Builder(pull_negations=pull)
    replay_mod.replay(b, trace, rewrite={-1: None})   # (a rewrite: the replay proper, no load)
    return b


_TEXTS = [
    "sin(x)*exp(-y) + x**2",
    "t = (-x)*y\nt / (-y) + t",             # negations (labelled: not pulled out of a loaded trace)
    "a = 2*x\nb = 0.5*a\nc = 3*b\nc + a",   # constants times products (3·(0.5·a) is not a power of two)
    "a = 1.5*x\n4*a + a",                   # 4·(1.5·x) -> 6·x where negations are pulled
    "a = x*y\nb = a*0.25\nb*8 + sin(b)",    # (x·y)·0.25 then ·8: folded where pulled
    "x*0.0 + y*2.5 - 1e-300",
    "z = x + 1e300\nw = z*z\nw - x + 1e300",
    random_dag(100, seed=3),
    random_dag(1000, seed=1),
    deep_program(300),
] + [random_program(40, 4, seed=s) for s in range(12)]


@pytest.mark.parametrize("pull", [False, True])
@pytest.mark.parametrize("text", _TEXTS)
def test_adopted_tables_are_the_replay(text, pull):
    trace = to_trace(text)
    reference = _without_tables(trace)
    ref = _replayed(reference, pull)
    loaded = ir.Builder(pull_negations=pull)
    replays_as_it_is = load(loaded, _without_tables(trace))
    assert trace._built   # (a front end's small trace carries them)
    tables = trace._built[0]
    b = ir.Builder(pull_negations=pull)
    vmap = replay_mod.replay(b, trace)
    assert not trace._built   # taken
    adopted = b._memo is tables[1]
    # adopted exactly where load takes the trace (the replay would keep it as it is)
    assert adopted == replays_as_it_is
    if adopted:
        assert vmap == list(range(len(trace)))
        assert _state(b) == _state(ref) == _state(loaded)
        assert [getattr(b, k) for k in _LOADED] == [getattr(loaded, k) for k in _LOADED]
        assert b._loaded_labels is trace.labels and b.instrs is tables[0] and b._flags is tables[5]
    # the builder goes on alike: a gradient from either
    assert _finished(b, vmap, trace) == _finished(ref, _replay_map(reference, pull), reference)


def _replay_map(trace, pull):
    return replay_mod.replay(ir.Builder(pull_negations=pull), trace, rewrite={-1: None})


def _finished(b, vmap, trace):
    """What a pass appending to `b` makes: a sum of each variable and its sine, finished."""
    out = b.add(b.sin(vmap[trace.outputs[0][1]]), vmap[trace.outputs[0][1]])
    t = b.finish([("f", out)])
    return repr(t.instrs), [str(lab) for lab in t.labels], t.outputs


@pytest.mark.parametrize("text", ["a = 1.5*x\n4*a + a", "a = x*y\nb = a*0.25\nb*8 + sin(b)"])
def test_a_rule_the_front_end_does_not_apply_declines(text):
    """4·(1.5·x) is built as written by the front end; where negations are pulled the
    replay folds it to 6·x: the tables are not adopted, and the builder is what the
    replay makes."""
    trace = to_trace(text)
    tables = trace._built[0]
    b = ir.Builder(pull_negations=True)
    assert not builder_load.adopt(b, trace, tables)
    assert not b.instrs and not b._memo   # left empty
    b = ir.Builder(pull_negations=True)
    vmap = replay_mod.replay(b, to_trace(text))
    ref = _replayed(_without_tables(to_trace(text)), True)
    assert _state(b) == _state(ref) and len(vmap) == len(trace)


@pytest.mark.parametrize("text", [random_dag(1000, seed=1), random_dag(300, seed=4), "sin(x)*y + x**2"])
def test_gradients_from_adopted_tables_are_the_same(text):
    fresh = to_trace(text)
    assert fresh._built
    plain = _without_tables(to_trace(text))
    got, ref = grad_reverse(fresh), grad_reverse(plain)
    assert got.instrs == ref.instrs and list(got.labels) == list(ref.labels) and got.outputs == ref.outputs
    # a second pass over the same trace loads it (the tables went to the first)
    again = hvp(fresh)
    assert again.instrs == hvp(plain).instrs


def test_which_traces_carry_tables(monkeypatch):
    assert to_trace("sin(x) + y")._built
    # dead code: the finish moves instructions, so the builder's numbers are not the trace's
    assert not to_trace("a = x*y\nb = sin(x)\na + 1")._built
    # a SymPy trace is finished from columns, renumbered: no tables, but the mark that
    # it was built as written (builder_load.AS_WRITTEN)
    sympy = pytest.importorskip("sympy")
    x, y = sympy.symbols("x y")
    assert to_trace(sympy.sin(x) * y)._built == [builder_load.AS_WRITTEN]
    # from HAND_ON_BELOW instructions the parse releases its table: nothing handed on
    monkeypatch.setattr(finish_mod, "HAND_ON_BELOW", 50)
    from exprcompiler.parse import parser
    monkeypatch.setattr(parser, "HAND_ON_BELOW", 50)
    assert len(to_trace(random_dag(100, seed=3))) >= 50
    assert not to_trace(random_dag(100, seed=3))._built
    assert to_trace(random_dag(10, seed=3))._built


def test_tables_are_not_part_of_the_trace():
    import pickle
    trace = to_trace("sin(x)*y + 2*x")
    back = pickle.loads(pickle.dumps(trace))
    assert back._built is None and back.instrs == trace.instrs
    assert trace._built   # (pickling took nothing)


def test_the_bulk_sweep_does_not_hold_the_tables():
    trace = to_trace(deep_program(1000))   # (few op kinds: swept in bulk from a third of reverse._BULK_FROM)
    assert trace._built
    grad_reverse(trace)
    assert trace._built is None


def _sympy_exprs():
    sympy = pytest.importorskip("sympy")
    from exprcompiler.trace.to_sympy import to_sympy
    x, y = sympy.symbols("x y")
    u = sympy.Mul(1.5, x, y, evaluate=False)
    return [sympy.sin(u) + sympy.Mul(4, u, evaluate=False) - sympy.exp(-y) / x,
            # 4·(1.5·x), kept apart by the power of one: folded where negations are pulled
            sympy.Mul(4, sympy.Pow(sympy.Mul(1.5, x, evaluate=False), 1, evaluate=False), evaluate=False),
            -x * (-y) + sympy.Float(-0.0) * x + x ** 2 - x ** 1.0,
            to_sympy(to_trace(random_dag(100, seed=1)), evaluate=False)[0],
            to_sympy(to_trace(random_dag(1000, seed=1)), evaluate=False)[0]]


@pytest.mark.parametrize("pull", [False, True])
@pytest.mark.parametrize("k", range(5))
def test_a_trace_built_as_written_loads_as_the_replay(k, pull, monkeypatch):
    """A SymPy trace (parse/sympy_columns: built through the op methods of a builder
    that pulls no negations, then renumbered) is marked AS_WRITTEN: its load asks the
    rules only of the products of a constant and a product where negations are
    pulled, and makes what the unmarked load makes, which is the replay."""
    expr = _sympy_exprs()[k]
    trace = to_trace(expr)
    assert trace._built == [builder_load.AS_WRITTEN]
    plain = _without_tables(to_trace(expr))
    ref = ir.Builder(pull_negations=pull)
    took = load(ref, plain)
    asked = []
    inner = builder_load.built_as_written
    monkeypatch.setattr(builder_load, "built_as_written", lambda b, flagged: asked.extend(flagged) or inner(b, flagged))
    b = ir.Builder(pull_negations=pull)
    assert load(b, trace) == took and not trace._built
    if took:
        assert _state(b) == _state(ref) == _state(_replayed(plain, pull))
        assert [getattr(b, k) for k in _LOADED] == [getattr(ref, k) for k in _LOADED]
    # only the products of a constant and a product, where negations are pulled
    assert all(trace.instrs[i][0] == "mul" for i in asked) and (pull or not asked)
    assert took == (k != 1 or not pull)
