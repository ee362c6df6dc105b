"""Sharing common sub-sums across additive chains (a front-end pass).

Hash-consing shares identical subtrees, but not a sum hidden inside a longer sum:
in (sin(x1/x2) + x1/x2 - exp(x2)) · (x1/x2 - exp(x2)) the second factor is part
of the first, yet parsed left to right the first factor is ((sin + q) - e). Like
`sympy.cse`, this pass flattens chains of + and - into signed terms, and when
all terms of one chain S (or of -S) occur in a longer chain R, rewrites R to use S:
sin(v_1) + (v_1 - v_3). That yields the published Griewank trace (v_4 = v_1 - v_3,
v_5 = v_2 + v_4). Only chains that share are regrouped; every other sum keeps the
user's grouping. Regrouping a sum can change its last bit of rounding.

Where it sits: every front end (text, SymPy, lists of either) runs it on the trace
it has just finished. Most traces have nothing to share, and then the pass only
reads the trace (about 0.1-0.3 µs an operation: NumPy over the columns the finish
made, or below _SMALL instructions a loop in Python, where NumPy's calls cost more).
A regrouped trace is what replaying it into a Builder with the chains rewritten
gives; splice.py builds that directly when it can, at a fraction of a replay's
cost: every instruction after the first regrouped chain made again from the
columns, renumbered (~0.45 µs each), and its labels, taken from the trace's where
the front end says they are its finish's (numbered=True; else made again, 0.3 µs
an instruction). So it depends on where that chain falls, not on the trace's
size: at 10⁵ operations of the benchmark's random DAG it falls at 89% of the
trace, at 10⁶ at 9%.
"""

from __future__ import annotations

from operator import itemgetter
from typing import NamedTuple, Optional

import numpy as np

from ..trace.columns import CODE, Columns, columns
from ..trace.ir import Builder, Trace
from ..trace.ir_trace import instructions
from ..trace.render import uses_of
from .replay import replay
from .splice import Unsafe, splice

_ADD, _SUB, _NEG = CODE["add"], CODE["sub"], CODE["neg"]   # the ops of sums
_SUM_OPS = frozenset(("add", "sub"))
_OP = itemgetter(0)
_SMALL = 400   # (instructions: below, _chains_small, which costs about what _chains does at 300-600)

# A chain's terms are signed variables, one int each: v for +v, ~v (= -v - 1) for -v,
# so negating a term is ~t and a term is a hashable int, not a (sign, var) pair.


class Facts(NamedTuple):
    """What `_chains` read of the trace that `splice` reads again."""
    columns: Columns       # the trace's op codes and arguments (columns.py)
    uses: np.ndarray       # each variable's number of uses (arguments and outputs)
    sums: np.ndarray       # the add and sub instructions, in trace order
    sum_args: np.ndarray   # their arguments, one row each
    negs: np.ndarray       # the neg instructions
    neg_args: np.ndarray   # their arguments


def _facts(trace: Trace) -> Optional[Facts]:
    """The trace's Facts, read by NumPy over its columns (a front end's finish made
    them): None if it has no sum."""
    cols = columns(trace)
    code = cols.code
    sums = np.flatnonzero((code == _ADD) | (code == _SUB))
    if not len(sums):
        return None
    flat = cols.flat
    uses = uses_of(flat, trace)
    starts = cols.starts()
    sum_args = np.stack((flat[starts[sums]], flat[starts[sums] + 1]), axis=1).astype(np.intp)
    negs = np.flatnonzero(code == _NEG)
    return Facts(cols, uses, sums, sum_args, negs, flat[starts[negs]].astype(np.intp))


def _chains(trace: Trace):
    """(roots, long, members, facts): the roots of the additive chains (sums not
    inside a longer sum) in trace order (an array); the terms, left to right, of each
    root of three terms or more (`_two_terms` gives the others'); its members (the
    inner sums, used by its chain alone); the Facts read on the way (None if no sum)."""
    # Most sums are sums of two terms: they are sorted out by NumPy over the trace's
    # columns, and only the chains of more terms are walked in Python.
    facts = _facts(trace)
    if facts is None:
        return [], {}, {}, None
    sums, sum_args = facts.sums, facts.sum_args
    is_chain = np.zeros(len(trace), bool)
    is_chain[sums] = True
    # a sum whose one use is an argument of a sum is inside a chain
    inside = is_chain[sum_args] & (facts.uses[sum_args] == 1)
    if not inside.any():
        return sums, {}, {}, facts
    is_inner = np.zeros(len(trace), bool)
    is_inner[sum_args[inside]] = True
    is_root = ~is_inner[sums]
    walked = is_root & (inside[:, 0] | inside[:, 1])
    # (the sums the walk reads, from the columns: the trace's tuples are not made)
    read = walked | is_inner[sums]
    code = facts.columns.code
    sum_of = dict(zip(sums[read].tolist(), zip(*sum_args[read].T.tolist(), (code[sums[read]] == _SUB).tolist())))
    long, members = _walk(sum_of, sums[walked].tolist(), is_inner.tobytes())
    return sums[is_root], long, members, facts


def _chains_small(trace: Trace):
    """_chains of a short trace, read in Python (the NumPy calls of _chains cost more
    there than a loop: ~0.15 ms at 100 operations, twice that in a fresh process):
    the same roots, long and members, and no Facts (None)."""
    instrs = trace.instrs
    ops = list(map(_OP, instrs))
    if "add" not in ops and "sub" not in ops:
        return [], {}, {}, None
    sums = [i for i, op in enumerate(ops) if op == "add" or op == "sub"]
    uses = np.bincount(columns(trace).flat, minlength=len(instrs)).tolist()   # (uses_of's, without np.add.at)
    for _, v in trace.outputs:
        uses[v] += 1
    inner = {a for s in sums for a in instrs[s].args if uses[a] == 1 and ops[a] in _SUM_OPS}
    roots = [s for s in sums if s not in inner]
    is_inner = bytearray(len(instrs))
    for v in inner:
        is_inner[v] = 1
    sum_of = {s: (*instrs[s].args, ops[s] == "sub") for s in sums}
    long, members = _walk(sum_of, [r for r in roots if not inner.isdisjoint(instrs[r].args)], is_inner)
    return roots, long, members, None


def _walk(sum_of: dict, long_roots: list, is_inner):
    """(long, members) of _chains: each root's terms, left to right, and its inner
    sums (`sum_of`: {sum: (its arguments, whether a sub)} of the roots and the inner
    sums; `is_inner`, bytes: 1 at a sum inside a chain, 0 elsewhere; indexed, not
    hashed as a set's ints are: a third of the walk at 10⁶ operations)."""
    long, members = {}, {}
    for r in long_roots:
        a, b, sub = sum_of[r]
        out, mine = [], []
        stack = [~b if sub else b, a]
        while stack:
            t = stack.pop()
            v = t if t >= 0 else ~t
            if is_inner[v]:
                mine.append(v)
                x, y, sub = sum_of[v]
                if t < 0:
                    x = ~x
                stack.append(~y if sub == (t >= 0) else y)
                stack.append(x)
            else:
                out.append(t)
        long[r], members[r] = out, mine
    return long, members


def _two_terms(ins) -> list:
    a, b = ins.args
    return [a, ~b if ins.op == "sub" else b]


# Candidate sub-chains are found by their first two terms, looked up at each
# adjacent pair of the longer chain, and at most this many per pair are checked:
# linear time, at the price of missing sub-sums whose terms are not adjacent.
_BUCKET = 16


def _negated(terms):
    return [~t for t in terms]


def _best_subchain(r, terms, by_pair):
    """The longest chain S whose terms all occur in chain r (whose terms are distinct),
    as (S, sign): sign -1 when r holds S negated (x - y + z holds -(y - z))."""
    mine = terms[r]
    have = set(mine)
    best, best_sign = None, 1
    for a, b in zip(mine, mine[1:]):
        for sign, key in ((1, (a, b)), (-1, (~a, ~b))):
            for s in by_pair.get(key, ()):
                sub = terms[s] if sign > 0 else _negated(terms[s])
                if s != r and len(sub) < len(mine) and have.issuperset(sub) \
                        and len(set(sub)) == len(sub) and (best is None or len(sub) > len(terms[best])):
                    best, best_sign = s, sign
    return None if best is None else (best, best_sign)


def _plan(instrs, roots, long, facts) -> dict:
    """Each regrouped chain's new terms, left to right (a term may be a chain of the
    plan, which is then built first); `roots`, `long` and `facts` as _chains gives them."""
    # Only a chain of three terms or more can hold a shorter one, so only the pairs
    # of those are looked up, and only chains that start with such a pair are indexed.
    # (a chain that holds a term twice neither holds another chain nor is held)
    searched = [r for r, mine in long.items() if len(set(mine)) == len(mine)]
    if not searched:
        return {}
    wanted = set()
    for mine in map(long.__getitem__, searched):
        wanted.update(zip(mine, mine[1:]))
        wanted.update(zip(_negated(mine), _negated(mine[1:])))
    # a chain's first term is added (never subtracted); a two-term chain's is its
    # first argument
    firsts = {a for a, _ in wanted if a >= 0}
    if facts is None:   # (a short trace's, read in Python: _chains_small)
        heads = [r for r in roots if instrs[r].args[0] in firsts]
    else:   # (masks, not np.isin and np.searchsorted: a fifth of their cost)
        is_first, is_root = np.zeros(len(facts.uses), bool), np.zeros(len(facts.uses), bool)
        is_first[np.fromiter(firsts, np.intp, len(firsts))] = True
        is_root[roots] = True
        heads = facts.sums[is_root[facts.sums] & is_first[facts.sum_args[:, 0]]].tolist()
    starts = sorted(set(heads).union(long))
    terms = dict(long)
    by_pair: dict = {}
    for r in starts:
        mine = terms.get(r) or _two_terms(instrs[r])
        key = tuple(mine[:2])
        if key in wanted:
            terms[r] = mine
            bucket = by_pair.setdefault(key, [])
            if len(bucket) < _BUCKET:
                bucket.append(r)
    plan: dict = {}
    for r in searched:
        found = _best_subchain(r, terms, by_pair)
        if found is None:
            continue
        s, sign = found
        sub = set(terms[s] if sign > 0 else _negated(terms[s]))
        first = next(k for k, t in enumerate(terms[r]) if t in sub)
        rest = [t for t in terms[r] if t not in sub]
        plan[r] = rest[:first] + [s if sign > 0 else ~s] + rest[first:]
        plan.setdefault(s, list(terms[s]))
    return plan


def emitter(b, plan: dict, done: dict):
    """emit(root, vmap): builds chain `root` of the plan in `b` (a Builder, or anything
    with its add, sub and neg), the plan's chains it uses first; `done` maps the chains
    built so far to their variables. The other terms are looked up in vmap."""
    def emit(root: int, vmap) -> int:
        stack = [root]
        while stack:
            r = stack[-1]
            pending = [v for v in map(_var, plan[r]) if v in plan and v not in done]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if r in done:
                continue
            t0, *rest = plan[r]
            v0 = _var(t0)
            acc = done[v0] if v0 in plan else vmap[v0]
            if t0 < 0:
                acc = b.neg(acc)
            for t in rest:
                v = _var(t)
                term = done[v] if v in plan else vmap[v]
                acc = b.add(acc, term) if t >= 0 else b.sub(acc, term)
            done[r] = acc
        return done[root]
    return emit


def _var(t: int) -> int:
    return t if t >= 0 else ~t


def share_sums(trace: Trace, *, numbered: bool = False) -> Trace:
    """`trace` with the chains that hold a shorter one regrouped to use it (or
    `trace` itself). `numbered`: its labels are primal_labels(trace.instrs), as a
    front end's finish makes them (splice then takes the result's from them)."""
    roots, long, members, facts = (_chains_small if len(trace) < _SMALL else _chains)(trace)
    plan = _plan(instructions(trace), roots, long, facts)
    if not plan:
        return trace
    if facts is None:
        facts = _facts(trace)
    # a regrouped chain's inner sums are not built (their one use is the chain)
    skip = {m for r in plan for m in members.get(r, ())}
    try:
        return splice(trace, plan, skip, emitter, facts, numbered)
    except Unsafe:
        return regroup_by_replay(trace, plan, skip)


def regroup_by_replay(trace: Trace, plan: dict, skip: set) -> Trace:
    """The regrouped trace, by replaying `trace` into a Builder with the chains of
    `plan` rebuilt and the instructions in `skip` left out (the reference for splice)."""
    b = Builder()
    emit = emitter(b, plan, {})
    rewrite: dict = dict.fromkeys(skip)
    rewrite.update((r, emit) for r in plan)
    vmap = replay(b, trace, rewrite=rewrite)
    b.release()
    return b.finish([(n, vmap[v]) for n, v in trace.outputs], input_order=trace.input_names,
                    number=True, source=trace.source)
