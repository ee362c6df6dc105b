"""The Jacobian build's shortcuts give what the long way gives (tracker issue 14, the
NumPy build of the pendulum's Jacobian against symengine's):

- api.with_wrt adds the absent `wrt` inputs to a finished trace by renumbering it,
  not by a replay: the same trace as the replay makes;
- passes.jacobian(replayed=...) starts several passes from one replay of the primal:
  each trace is the one the pass makes alone;
- passes.jacobian(above=...) stops the sweeps once their rows or columns so far need
  more operations than `above`: None only then, else the whole trace;
- jacobians.auto_jacobian, which builds the elimination trace first and stops the
  sweeps so, picks what auto_pick picks from the full candidates, the same trace.
"""

from __future__ import annotations

import pytest

from exprcompiler import passes, randexpr, to_trace
from exprcompiler.api import with_wrt
from exprcompiler.bench.mechanics import pendulum
from exprcompiler.jacobians import auto_candidates, auto_jacobian, auto_pick, operations
from exprcompiler.passes.jacobian import Replayed
from exprcompiler.passes.replay import replay
from exprcompiler.trace import verify
from exprcompiler.trace.builder_ops import op_key
from exprcompiler.trace.ir import Builder
from test_second_order import TALL, WIDE


def _program(statements: int, outputs: int, seed: int) -> str:
    """A random program over x1..x6 ending in `outputs` of its last values."""
    lines = randexpr.random_program(statements, 6, seed).splitlines()[:-1]
    names = [line.split(" = ")[0] for line in lines]
    return "\n".join(lines + [", ".join(names[-outputs:])])


def _cases():
    cases = {f"pendulum {n}": (list(pendulum(n).exprs), pendulum(n).names) for n in (1, 2, 3)}
    cases.update({"tall": (TALL, None), "wide": (WIDE, None), "one input": ("x*x; sin(x)", None),
                  "an output that is an input": ("x; x*y", None), "a constant output": ("2.5; x*exp(y)", None)})
    cases.update({f"program {s} m={m} seed {seed}": (_program(s, m, seed), None)
                  for s, m, seed in ((30, 2, 0), (80, 5, 1), (150, 8, 2), (150, 3, 3))})
    return cases


CASES = _cases()


def _same(a, b) -> bool:
    return (a.instrs, a.labels, a.outputs, a.inputs, a.source) == (b.instrs, b.labels, b.outputs, b.inputs, b.source)


def _replayed_with_wrt(trace, wrt):
    """with_wrt's general path, a replay: what the renumbering must agree with."""
    absent = [w for w in wrt if w not in trace.input_names]
    b = Builder()
    vmap = replay(b, trace)
    for name in absent:
        b.input(name)
    return b.finish([(name, vmap[v]) for name, v in trace.outputs],
                    input_order=list(trace.input_names) + absent, source=trace.source)


@pytest.mark.parametrize("expr, wrt", [
    ("x*y + sin(x)", "x,y,z"), ("x", "z,x"), ("2.0", "a,b"), ("a = x*x\nb = a + y\na, b", "x,y,w"),
    ("exp(x)*cos(y) - x/y", "q, x, y, r"), (list(pendulum(3).exprs), pendulum(3).names)])
def test_with_wrt_renumbers_as_a_replay_would(expr, wrt):
    trace = to_trace(expr)
    got, names = with_wrt(trace, wrt)
    assert names == [w.strip() for w in (wrt.split(",") if isinstance(wrt, str) else wrt)]
    assert set(got.input_names) == set(trace.input_names) | set(names)
    verify(got)
    assert _same(got, _replayed_with_wrt(trace, names))


@pytest.mark.parametrize("name", CASES)
def test_passes_from_one_replay_are_the_passes_alone(name):
    primal, wrt = with_wrt(to_trace(CASES[name][0]), CASES[name][1])
    shared = Replayed(primal)
    for mode in ("reverse", "elimination", "forward"):
        assert _same(passes.jacobian(primal, wrt, mode, replayed=shared), passes.jacobian(primal, wrt, mode))


@pytest.mark.parametrize("name", CASES)
def test_sweeps_stop_only_above_the_bound(name):
    primal, wrt = with_wrt(to_trace(CASES[name][0]), CASES[name][1])
    for mode in ("forward", "reverse"):
        full = passes.jacobian(primal, wrt, mode)
        size = operations(full)
        for above in sorted({0, size // 2, size - 1, size, size + 1}):
            got = passes.jacobian(primal, wrt, mode, above=above)
            if got is None:
                assert size > above, (mode, above, size)
            else:
                assert _same(got, full)
        assert passes.jacobian(primal, wrt, mode, above=size) is not None


@pytest.mark.parametrize("name", CASES)
def test_auto_picks_what_the_full_candidates_pick(name):
    primal, wrt = with_wrt(to_trace(CASES[name][0]), CASES[name][1])
    candidates = auto_candidates(primal, wrt)
    mode, trace = auto_jacobian(primal, wrt)
    assert mode == auto_pick(candidates)
    assert _same(trace, candidates[mode])


def test_the_pendulum_sweeps_stop_early():
    """At 3 links the reverse sweeps need more operations than elimination's trace
    after 3 of their 4 rows: auto_jacobian does not build the fourth."""
    model = pendulum(3)
    primal, wrt = with_wrt(to_trace(list(model.exprs)), model.names)
    mode, trace = auto_jacobian(primal, wrt)
    assert mode == "elimination"
    assert passes.jacobian(primal, wrt, "reverse", above=operations(trace)) is None


def test_each_pass_gets_a_builder_of_its_own():
    trace = to_trace("x*y; sin(x)/y")
    shared = Replayed(trace, uses=4)
    (b1, v1), (b2, v2) = shared(), shared()
    size = len(b2.instrs)
    b1.exp(b1.sin(v1[0]))   # one pass growing its builder leaves the others' alone
    assert len(b2.instrs) == size and b1.instrs is not b2.instrs and v1 == v2
    (b3, _), (b4, _) = shared(), shared()   # the last use gets the first builder itself
    assert b3 is not b4 and len(b3.instrs) == len(b4.instrs) == size


def test_a_forked_builder_goes_on_alone():
    b = Builder()
    x, y = b.input("x"), b.input("y")
    s = b.mul(x, y)
    twin = b.fork()
    t = twin.sin(s)                   # appended and hash-consed in the copy only
    assert twin.sin(s) == t and len(b.instrs) == 3 and len(b._flags) == 3
    assert twin._memo.get(op_key("sin", (s,))) == t and op_key("sin", (s,)) not in b._memo
    u = b.cos(s)                      # and the other way round
    assert u == t and b.instrs[u].op == "cos" and twin.instrs[t].op == "sin"
    assert b.mul(y, x) == twin.mul(y, x) == s   # what both had before stays shared in each
