"""Sharing common sub-sums across additive chains (a front-end pass).

Hash-consing shares identical subtrees, but not a sum hidden inside a longer sum:
in (sin(x1/x2) + x1/x2 - exp(x2)) · (x1/x2 - exp(x2)) the second factor is part
of the first, yet parsed left to right the first factor is ((sin + q) - e). Like
`sympy.cse`, this pass flattens chains of + and - into signed terms, and when
all terms of one chain S (or of -S) occur in a longer chain R, rewrites R to use S:
sin(v_1) + (v_1 - v_3). That yields the published Griewank trace (v_4 = v_1 - v_3,
v_5 = v_2 + v_4). Only chains that share are regrouped; every other sum keeps the
user's grouping. Regrouping a sum can change its last bit of rounding.
"""

from __future__ import annotations

from ..trace.ir import Builder, Trace
from ..trace.render import use_counts
from .replay import replay

_CHAIN = ("add", "sub")


def _chains(trace: Trace):
    instrs = trace.instrs
    uses = use_counts(trace)
    consumer = [-1] * len(instrs)
    for i, ins in enumerate(instrs):
        for a in ins.args:
            consumer[a] = i

    def internal(v: int) -> bool:
        return (instrs[v].op in _CHAIN and uses[v] == 1 and consumer[v] >= 0
                and instrs[consumer[v]].op in _CHAIN)

    roots = [i for i, ins in enumerate(instrs) if ins.op in _CHAIN and not internal(i)]
    terms: dict[int, list[tuple[int, int]]] = {}
    members: dict[int, list[int]] = {}
    for r in roots:
        out, inner, stack = [], [], [(r, 1)]
        while stack:
            v, s = stack.pop()
            if v == r or internal(v):
                if v != r:
                    inner.append(v)
                a, b = instrs[v].args
                stack.append((b, s if instrs[v].op == "add" else -s))
                stack.append((a, s))
            else:
                out.append((s, v))
        terms[r], members[r] = out, inner
    return roots, terms, members


# Candidate sub-chains are found by their first two terms, looked up at each
# adjacent pair of the longer chain, and at most this many per pair are checked:
# linear time, at the price of missing sub-sums whose terms are not adjacent.
_BUCKET = 16


def _negated(terms):
    return [(-s, v) for s, v in terms]


def _best_subchain(r, terms, by_pair):
    """The longest chain S whose terms all occur in chain r, as (S, sign): sign -1
    when r holds S negated (x - y + z holds -(y - z))."""
    mine = terms[r]
    if len(set(mine)) != len(mine):
        return None
    have = set(mine)
    best, best_sign = None, 1
    for pair in zip(mine, mine[1:]):
        for sign in (1, -1):
            key = pair if sign > 0 else tuple(_negated(pair))
            for s in by_pair.get(key, ()):
                sub = terms[s] if sign > 0 else _negated(terms[s])
                if s != r and len(sub) < len(mine) and have.issuperset(sub) \
                        and len(set(sub)) == len(sub) and (best is None or len(sub) > len(terms[best])):
                    best, best_sign = s, sign
    return None if best is None else (best, best_sign)


def share_sums(trace: Trace) -> Trace:
    roots, terms, members = _chains(trace)
    by_pair: dict = {}
    for r in roots:
        bucket = by_pair.setdefault(tuple(terms[r][:2]), [])
        if len(bucket) < _BUCKET:
            bucket.append(r)
    plan: dict[int, list[tuple[int, int]]] = {}
    for r in roots:
        found = _best_subchain(r, terms, by_pair)
        if found is None:
            continue
        s, sign = found
        sub = set(terms[s] if sign > 0 else _negated(terms[s]))
        first = next(k for k, t in enumerate(terms[r]) if t in sub)
        rest = [t for t in terms[r] if t not in sub]
        plan[r] = rest[:first] + [(sign, s)] + rest[first:]
        plan.setdefault(s, list(terms[s]))
    if not plan:
        return trace
    b = Builder()
    done: dict[int, int] = {}   # regrouped chain -> its variable in b

    def emit(root: int, vmap: list) -> int:
        stack = [root]
        while stack:
            r = stack[-1]
            pending = [v for _, v in plan[r] if v in plan and v not in done]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if r in done:
                continue
            (s0, v0), *rest = plan[r]
            acc = done[v0] if v0 in plan else vmap[v0]
            if s0 < 0:
                acc = b.neg(acc)
            for s, v in rest:
                term = done[v] if v in plan else vmap[v]
                acc = b.add(acc, term) if s > 0 else b.sub(acc, term)
            done[r] = acc
        return done[root]

    # a regrouped chain's inner sums are not built (their one use is the chain)
    rewrite: dict = {m: None for r in plan for m in members[r]}
    rewrite.update((r, emit) for r in plan)
    vmap = replay(b, trace, rewrite=rewrite)
    b.release()
    return b.finish([(n, vmap[v]) for n, v in trace.outputs], input_order=trace.input_names,
                    number=True, source=trace.source)
