"""share_sums: which sums it regroups (against a plain reference planner), and that its
fast path (splice) builds what replaying the trace with the chains rewritten builds."""

from __future__ import annotations

import random

import pytest

import exprcompiler.passes.share_sums as share_sums_mod
from exprcompiler import to_trace
from exprcompiler.parse import parse
from exprcompiler.passes import splice as splice_mod
from exprcompiler.passes.share_sums import share_sums
from exprcompiler.randexpr import random_program
from exprcompiler.trace import verify
from exprcompiler.trace.columns import OP_NAMES, made
from exprcompiler.trace.ir import Instr, Trace
from exprcompiler.trace.render import use_count_array

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


def same(a, b) -> bool:
    return (a.instrs, a.labels, a.outputs, a.inputs, a.source) == \
        (b.instrs, b.labels, b.outputs, b.inputs, b.source)


def columns_read(trace) -> bool:
    """The columns a trace keeps (splice's, taken from the trace it copied) are those of
    its instructions, read again (value and type)."""
    kept, read = trace._columns, made(trace.instrs)
    return kept is not None and all(k.dtype == r.dtype and (k == r).all() for k, r in zip(kept, read))


# -- a reference planner: the pass's rules written plainly, (sign, var) terms --------
def reference_plan(trace) -> dict:
    instrs = trace.instrs
    uses = [0] * len(instrs)
    consumer = [-1] * len(instrs)
    for i, ins in enumerate(instrs):
        for a in ins.args:
            uses[a] += 1
            consumer[a] = i
    for _, v in trace.outputs:
        uses[v] += 1
    chain_ops = ("add", "sub")

    def inner(v):
        return (instrs[v].op in chain_ops and uses[v] == 1 and consumer[v] >= 0
                and instrs[consumer[v]].op in chain_ops)

    roots = [i for i, ins in enumerate(instrs) if ins.op in chain_ops and not inner(i)]
    terms = {}
    for r in roots:
        out, stack = [], [(r, 1)]
        while stack:
            v, s = stack.pop()
            if v == r or inner(v):
                a, b = instrs[v].args
                stack += [(b, s if instrs[v].op == "add" else -s), (a, s)]
            else:
                out.append((s, v))
        terms[r] = out
    by_pair: dict = {}
    for r in roots:
        bucket = by_pair.setdefault(tuple(terms[r][:2]), [])
        if len(bucket) < 16:
            bucket.append(r)

    def negated(ts):
        return [(-s, v) for s, v in ts]

    plan = {}
    for r in roots:
        mine = terms[r]
        if len(set(mine)) != len(mine):
            continue
        best, best_sign = None, 1
        for pair in zip(mine, mine[1:]):
            for sign in (1, -1):
                key = pair if sign > 0 else tuple(negated(pair))
                for s in by_pair.get(key, ()):
                    sub = terms[s] if sign > 0 else negated(terms[s])
                    if s != r and len(sub) < len(mine) and set(mine).issuperset(sub) \
                            and len(set(sub)) == len(sub) \
                            and (best is None or len(sub) > len(terms[best])):
                        best, best_sign = s, sign
        if best is None:
            continue
        sub = set(terms[best] if best_sign > 0 else negated(terms[best]))
        first = next(k for k, t in enumerate(mine) if t in sub)
        rest = [t for t in mine if t not in sub]
        plan[r] = rest[:first] + [(best_sign, best)] + rest[first:]
        plan.setdefault(best, list(terms[best]))
    return plan


def fast_plan(trace) -> dict:
    """The pass's plan, its terms written as the reference's (sign, var)."""
    roots, long, _, facts = share_sums_mod._chains(trace)
    plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
    return {r: [(1, t) if t >= 0 else (-1, ~t) for t in ts] for r, ts in plan.items()}


# -- programs full of sums, some holding others' terms --------------------------------
ATOMS = ["x", "y", "z", "sin(x)", "exp(y)", "2", "3", "0.0", "-x", "-(y)", "cos(z)", "-0.0"]


def _sum(rng, pool, k, top=True):
    if k == 1:
        return rng.choice(pool)
    j = rng.randint(1, k - 1)
    text = f"{_sum(rng, pool, j, False)} {rng.choice('+-')} {_sum(rng, pool, k - j, False)}"
    return f"({text})" if not top and rng.random() < 0.7 else text


def sum_program(seed: int) -> str:
    rng = random.Random(seed)
    pool = list(ATOMS[:rng.randint(3, len(ATOMS))])
    lines, sums = [], []
    for i in range(rng.randint(2, 8)):
        text = _sum(rng, pool, rng.randint(2, 6))
        if sums and rng.random() < 0.6:   # an earlier sum's terms inside a longer sum
            text = (f"{_sum(rng, pool, rng.randint(1, 2))} {rng.choice('+-')} {rng.choice(sums)} "
                    f"{rng.choice('+-')} {rng.choice(pool)}")
        sums.append(text if rng.random() < 0.7 else f"({text})")
        lines.append(f"t{i} = {text}")
        pool.append(f"t{i}")
    outputs = rng.sample(pool, min(len(pool), rng.randint(1, 4)))
    return "\n".join(lines + [" * ".join(f"sin({o})" for o in outputs)])


@pytest.fixture
def paths(monkeypatch):
    """Counts how share_sums regroups: 'splice', or 'replay' after Unsafe."""
    count = {"splice": 0, "replay": 0}
    real_splice, real_replay = share_sums_mod.splice, share_sums_mod.regroup_by_replay

    def spliced(*args):
        result = real_splice(*args)
        count["splice"] += 1
        return result

    def replayed(*args):
        count["replay"] += 1
        return real_replay(*args)
    monkeypatch.setattr(share_sums_mod, "splice", spliced)
    monkeypatch.setattr(share_sums_mod, "regroup_by_replay", replayed)
    return count


def test_plan_is_the_reference_plan():
    planned = 0
    for seed in range(400):
        trace = parse(sum_program(seed))
        plan = fast_plan(trace)
        assert plan == reference_plan(trace), sum_program(seed)
        planned += bool(plan)
    assert planned > 10   # the programs do share


@pytest.mark.parametrize("size, seed", [(400, 1), (2000, 1), (5000, 3)])
def test_plan_on_random_dags(size, seed):
    trace = parse(random_program(size, seed=seed))
    assert fast_plan(trace) == reference_plan(trace)


def test_splice_builds_what_the_replay_builds():
    spliced_count = unsafe = 0
    for seed in range(1000):
        trace = parse(sum_program(seed))
        roots, long, members, facts = share_sums_mod._chains(trace)
        plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
        if not plan:
            assert share_sums(trace) is trace
            continue
        skip = {m for r in plan for m in members.get(r, ())}
        expected = share_sums_mod.regroup_by_replay(trace, plan, skip)
        try:
            spliced = splice_mod.splice(trace, plan, skip, share_sums_mod.emitter, facts)
        except splice_mod.Unsafe:
            unsafe += 1
            continue
        assert same(spliced, expected), sum_program(seed)
        assert columns_read(spliced), sum_program(seed)
        verify(spliced)
        spliced_count += 1
    assert spliced_count >= 20 and unsafe >= 1, (spliced_count, unsafe)   # both ways are taken


@pytest.mark.parametrize("program, how", [
    # the published trace: x1/x2 - exp(x2) reused inside the sum, spliced in
    (GRIEWANK, "splice"),
    # a zero term, rebuilt as 0.0 + cos(z): the builder may drop a zero
    ("a = 0.0 + cos(z)\nb = z + 0.0 + cos(z)\nsin(a) * sin(b)", "replay"),
    # two constants side by side, 2 - 3 + x: the builder folds them
    ("a = 2 - (3 - x)\nb = y + 2 - 3 + x\nsin(a) * sin(b)", "replay"),
    # a negated chain, -(x - y) in z - x + y: spliced in
    ("a = x - y\nb = z - x + y\nsin(a) * sin(b)", "splice"),
    # the regrouped z + s is a sum the trace already has: the builder shares it
    ("s = x - y\nr = z + x - y\nq = z + s\nsin(s) * sin(r) * sin(q)", "replay"),
])
def test_regrouped_traces(program, how, paths):
    trace = parse(program)
    result = share_sums(trace)
    assert result is not trace
    assert paths == {"splice": how == "splice", "replay": how == "replay"}
    roots, long, members, facts = share_sums_mod._chains(trace)
    plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
    skip = {m for r in plan for m in members.get(r, ())}
    assert same(result, share_sums_mod.regroup_by_replay(trace, plan, skip))
    assert how == "replay" or columns_read(result)
    verify(result)


def test_griewank_without_a_replay(monkeypatch):
    # regrouping a sum copies the rest of the trace: no Builder replays it
    def no_replay(*args, **kwargs):
        raise AssertionError("replayed")
    monkeypatch.setattr(share_sums_mod, "replay", no_replay)
    trace = to_trace(GRIEWANK)
    assert [ins.op for ins in trace.instrs if ins.op not in ("input", "const")] == \
        ["div", "sin", "exp", "sub", "add", "mul"]


@pytest.mark.parametrize("program", [
    "x + y + z", "x - y - (z + x)", "sin(x) * cos(y)", "(x + y) * (y + x)",
    "t0 = x * y\nt1 = sin(x * t0) * exp(-t0**2)\nt1"])
def test_nothing_shared_is_the_same_trace(program, paths):
    trace = parse(program)
    assert share_sums(trace) is trace
    assert paths == {"splice": 0, "replay": 0}


def _wide_trace() -> Trace:
    # (an instruction of 300 arguments: its count does not fit the byte of the fast path)
    instrs = [Instr("input", (), (("name", "x"),)), Instr("input", (), (("name", "y"),)),
              Instr("add", (0, 1)), Instr("neg", (2,)), Instr("sub", (3, 0)), Instr("stack", (4, 2) * 150)]
    return Trace(instrs, [None] * len(instrs), [("y", 5)])


@pytest.mark.parametrize("trace", [
    parse(GRIEWANK), parse("a = -x + y\nb = -(a) * sin(-y) - z + a\nsin(a) + b - -(z)"),
    parse(random_program(400, seed=5)), parse(sum_program(11)), _wide_trace()],
    ids=["griewank", "negations", "random", "sums", "wide"])
def test_facts_are_what_the_trace_holds(trace):
    """_chains reads every argument once, for the use counts and for the arguments of
    sums and negations that splice reads again: checked against plain reads."""
    facts = share_sums_mod._chains(trace)[3]
    instrs = trace.instrs
    assert [OP_NAMES[c] for c in facts.columns.code] == [ins.op for ins in instrs]
    assert facts.columns.counts.tolist() == [len(ins.args) for ins in instrs]
    assert facts.columns.flat.tolist() == [a for ins in instrs for a in ins.args]
    assert facts.uses.tolist() == use_count_array(trace).tolist()
    sums = [i for i, ins in enumerate(instrs) if ins.op in ("add", "sub")]
    negs = [i for i, ins in enumerate(instrs) if ins.op == "neg"]
    assert facts.sums.tolist() == sums and facts.negs.tolist() == negs
    assert facts.sum_args.tolist() == [list(instrs[i].args) for i in sums]
    assert facts.neg_args.tolist() == [instrs[i].args[0] for i in negs]


def _several_shared(blocks: int) -> str:
    """Sums that share a shorter sum in `blocks` places apart, with other operations
    between: a splice of several changes, each with its own runs of copies."""
    lines = []
    for k in range(blocks):
        lines += [f"a{k} = x{k} - y{k}", f"b{k} = z{k} - x{k} + y{k} + w{k}",
                  f"c{k} = exp(a{k}) * sin(b{k}) + cos(z{k} * w{k})"]
    lines.append(" + ".join(f"c{k} * c{(k + 1) % blocks}" for k in range(blocks)))
    return "\n".join(lines)


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_splice_of_several_changes(blocks, paths):
    """Each regrouped chain shifts the numbers after it: the copies between two changes
    are renumbered by their own shift, in the tuples and in the columns the result keeps
    (taken from the trace's, not read again)."""
    trace = parse(_several_shared(blocks))
    result = share_sums(trace)
    assert paths == {"splice": 1, "replay": 0}
    roots, long, members, facts = share_sums_mod._chains(trace)
    plan = share_sums_mod._plan(trace.instrs, roots, long, facts)
    assert len(plan) >= 2 * blocks - 1
    skip = {m for r in plan for m in members.get(r, ())}
    assert same(result, share_sums_mod.regroup_by_replay(trace, plan, skip))
    assert len(result.instrs) < len(trace.instrs)
    assert columns_read(result)
    verify(result)
