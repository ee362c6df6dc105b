"""splice's copies, made from the columns (_renumber_copies), and share_sums' short-trace
reading (_chains_small): each gives what the way it stands for gives."""

from __future__ import annotations

import pytest

import exprcompiler.passes.share_sums as share_sums_mod
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.parse import parse
from exprcompiler.passes import splice as splice_mod
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.randexpr import random_program
from exprcompiler.trace import verify
from exprcompiler.trace.ir import Builder, Instr, Trace, trace_from_builder

from test_share_sums import _several_shared, columns_read, paths, same, sum_program  # noqa: F401, F811 (paths: a fixture)


def replayed(trace):
    """The reference: the trace regrouped by a Builder's replay."""
    roots, long, members, facts = share_sums_mod._chains(trace)
    plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
    return share_sums_mod.regroup_by_replay(trace, plan, {m for r in plan for m in members.get(r, ())})


# (programs that splice; the random DAG of 20,000 operations copies ~7,000 instructions)
SPLICED = {"several": _several_shared(5), "s114": sum_program(114), "s219": sum_program(219),
           "s284": sum_program(284), "s976": sum_program(976),
           "consts": "a = x - 2\nb = y + x - 2 + z\nc = 3.5 * sin(b) + a\nd = c - 1.5\nsin(a) * d * c"}


@pytest.mark.parametrize("span", [1, 2, 3, 7, 1 << 16])
@pytest.mark.parametrize("name", SPLICED)
def test_copies_in_spans(span, name, monkeypatch, paths):
    """Copies made a span of positions at a time, each span's drawn in position order
    from one iterator per number of arguments, constants and appended instructions
    among them: the replay's trace, whatever the span."""
    monkeypatch.setattr(splice_mod, "_SPAN", span)
    trace = parse(SPLICED[name])
    result = share_sums(trace)
    assert paths == {"splice": 1, "replay": 0}
    assert same(result, replayed(trace))
    assert columns_read(result)
    verify(result)


@pytest.fixture(scope="module")
def dag():
    return parse(FAMILIES["random DAG"](20000))


@pytest.mark.parametrize("span", [97, 1 << 12, 1 << 16])
def test_copies_of_a_random_dag(span, dag, monkeypatch, paths):
    monkeypatch.setattr(splice_mod, "_SPAN", span)
    result = share_sums(dag)
    assert paths == {"splice": 1, "replay": 0}
    assert same(result, replayed(dag))
    assert columns_read(result)


def test_copies_share_their_ints(dag, paths):
    """Every argument that names a variable holds one int object for it (a fresh int
    per argument held ~20 bytes an operation more at the pipeline's peak)."""
    trace = dag
    result = share_sums(trace)
    assert paths == {"splice": 1, "replay": 0}
    first = min(i for i, (a, b) in enumerate(zip(trace.instrs, result.instrs)) if a != b)
    ints: dict = {}
    for ins in result.instrs[first:]:
        for a in ins.args if ins.op not in ("add", "sub", "neg") else ():   # (copies: appended ones are sums)
            ints.setdefault(a, set()).add(id(a))
    assert len(ints) > 1000 and all(len(ids) == 1 for v, ids in ints.items() if v > 256)


def _with_options(op: str) -> Trace:
    """z - x + y regrouped to use x - y, then an instruction with options (attributes):
    its columns cannot say them."""
    b = Builder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    a = b.sub(x, y)
    r = b.add(b.sub(z, x), y)
    s = b.apply(op, b.mul(a, r), foo=1) if op else b.sin(b.mul(a, r))
    return trace_from_builder(b, [("f", b.mul(s, a))])


@pytest.mark.parametrize("op, how", [("sin", "replay"), (None, "splice")])
def test_copies_with_options_are_replayed(op, how, paths):
    trace = _with_options(op)
    assert any(ins.attrs and ins.args for ins in trace.instrs) == (how == "replay")
    result = share_sums(trace)
    assert paths == {"splice": how == "splice", "replay": how == "replay"}
    assert same(result, replayed(trace))
    assert [ins.attrs for ins in result.instrs if ins.op == "sin"] == [(("foo", 1),) if op else ()]


@pytest.mark.parametrize("program", [sum_program(seed) for seed in range(300)]
                         + [random_program(size, seed=seed) for size in (5, 40, 150, 400) for seed in range(5)])
def test_short_traces_read_in_python(program):
    """_chains_small (a short trace's, no NumPy) finds what _chains finds, and _plan
    plans the same from either; share_sums takes it below _SMALL instructions."""
    trace = parse(program)
    small, full = share_sums_mod._chains_small(trace), share_sums_mod._chains(trace)
    assert (small[0], *small[1:3]) == (list(full[0]), *full[1:3]) and small[3] is None
    plan = share_sums_mod._plan(trace.instrs, *full[:2], full[3])
    assert share_sums_mod._plan(trace.instrs, *small[:2], None) == plan
    if plan:
        assert same(share_sums(trace), replayed(trace))


def test_short_traces_take_the_python_reading(monkeypatch):
    calls = []
    monkeypatch.setattr(share_sums_mod, "_chains", lambda trace: calls.append(len(trace.instrs)) or (
        [], {}, {}, None))
    share_sums(parse(sum_program(3)))
    share_sums(parse(FAMILIES["random DAG"](1000)))
    assert calls and min(calls) >= share_sums_mod._SMALL


# (X a vector: shapes before the first regrouped chain, in its chains, after it)
SHAPED = {
    "before": ("s = sum(X)\na = x - y\nb = z - x + y\nsin(a) * sin(b) * s", "splice"),
    "in the chains": ("a = X - y\nb = z - X + y\nsum(sin(a)) * sum(sin(b))", "replay"),
    "after": ("a = x - y\nb = z - x + y\nsum(X * sin(b)) * sin(a)", "replay"),
}


@pytest.mark.parametrize("name", SHAPED)
def test_shapes_before_the_first_change_are_kept(name, paths):
    """The instructions before the first regrouped chain are kept as they are, shapes
    and all; where a chain or a copy has a shape, the trace is replayed."""
    program, how = SHAPED[name]
    trace = parse(program, {"X": (3,)})
    assert any(ins.shape for ins in trace.instrs)
    result = share_sums(trace)
    assert paths == {"splice": how == "splice", "replay": how == "replay"}
    assert same(result, replayed(trace))
    verify(result)


def test_a_term_with_a_shape_is_replayed(paths):
    """A hand-made trace whose sums say no shape, though a term of theirs (X) has one:
    the copies and chains are scalars, but the term read makes the Builder's sum a
    vector, so the trace is replayed."""
    instrs = [Instr("input", (), (("name", "X"),), (3,)), Instr("input", (), (("name", "y"),)),
              Instr("input", (), (("name", "z"),)), Instr("sub", (0, 1)), Instr("sub", (2, 0)),
              Instr("add", (4, 1)), Instr("sin", (3,)), Instr("sin", (5,)), Instr("mul", (6, 7))]
    trace = Trace(instrs, [None] * len(instrs), [("f", 8)])
    result = share_sums(trace)
    assert paths == {"splice": 0, "replay": 1}
    assert same(result, replayed(trace)) and result.instrs[-1].shape == (3,)
