"""where_exits in linear time (passes/reverse_masks.py), asked once per gradient.

The region analysis joined a value's uses one by one, making a union per step
with its condition (n² steps for a union of n regions), and joined the inputs'
uses too (an input is in the root whatever they are): a where-heavy gradient was
~half region analysis. Now an input's uses are not joined, a union's condition
is made when first read, and joins are remembered; grad_reverse's second asker
(the per-instruction sweep after the bulk sweep declined) takes the first answer.
The answer must not change: the old algorithm is kept here as the reference
(ref_where_exits, ref_region_masks: reverse_masks.py as of commit 893d563) and
compared on the where suites' formulas, random scalar formulas with values
shared by many branches (unions of more than reverse_masks._NESTED regions),
tensor formulas and the benchmark's formulas. Not timed (benchmarks/bench_where.py).
"""

from __future__ import annotations

import math

import random
import re
from typing import Collection, Optional, Sequence

import pytest

from test_where_bulk import _drawn
from test_where_reverse import ONE, TWO

from exprcompiler import to_trace
from exprcompiler import ops as _ops
from exprcompiler.passes import reverse, reverse_bulk
from exprcompiler.passes import reverse_masks as rm
from exprcompiler.passes.reverse_masks import (_LANES, _MAX_UNION, _any_of, _broadcast, carrying,
                                              _constant_partial, _elementwise, _fits, region_masks, where_exits)

_OP_OF, _SHAPE_OF = (lambda ins: ins[0]), (lambda ins: ins[3])


# -- the reference: reverse_masks' region analysis before this change ---------------

def _ref_regions(instrs: Sequence, active: Sequence[int], seeded: Collection[int],
             tensors: bool = False) -> Optional[tuple]:
    """(each variable's region, each region's parent, each region's condition, the
    edges (i, j, a, the edge's region) in sweep order, each region's plainness), or
    None where there is no region (no where, or a tensor unless `tensors`)."""
    if "where" not in map(_OP_OF, instrs):
        return None
    shaped = any(map(_SHAPE_OF, instrs))
    if shaped and not tensors:
        return None
    ops = _ops.OPS
    n = len(instrs)
    # regions: 0 is the root (no mask); a where makes two, its branches' (shared by
    # the wheres of the same condition in the same region), each masked by one
    # condition; a union of sibling regions is masked by any of theirs
    parent, depth, cond = [0], [0], [None]
    # each region's mask shape: its conditions' and its ancestors' shapes broadcast
    # (None: they do not broadcast; no variable fits it). All () on scalars.
    cshape: list = [()]
    named: dict = {}   # (parent region, condition, branch) -> its region
    unions: dict = {}   # (parent region, its members) -> the union
    members: dict = {}   # union -> the sibling regions it joins
    unseen = -1
    region = [unseen] * n
    carriers: dict = {}   # (op, number of arguments) -> the arguments an adjoint flows to

    def lca(x: int, y: int) -> int:
        while depth[x] > depth[y]:
            x = parent[x]
        while depth[y] > depth[x]:
            y = parent[y]
        while x != y:
            x, y = parent[x], parent[y]
        return x

    def path_dnf(m: int, q: int) -> list:
        dnf = [()]
        for p in _path(m, q):
            dnf = [a + b for a in dnf for b in cond[p]]
        return dnf

    def join(x: int, y: int) -> int:
        """The smallest region that holds regions x and y: a common ancestor, or the
        union of the regions they are or join, below their lowest common ancestor q."""
        q = lca(x, y)
        if q == x or q == y:
            return q
        joined = set()
        for r in (*members.get(x, (x,)), *members.get(y, (y,))):
            path = _path(r, q)
            if math.prod(len(cond[p]) for p in path) > 16:
                # (unions on the way whose conditions multiply out to too many
                # conjunctions: the region below q stands for r, a larger one)
                joined.update(members.get(path[-1], (path[-1],)))
            else:
                joined.add(r)
        # (a region below another one of the union adds nothing)
        joined = tuple(sorted(r for r in joined if not any(p in joined for p in _path(r, q)[1:])))
        if len(joined) > _MAX_UNION:
            return q   # (a value shared by many branches: unmasked, as where's own VJP leaves it)
        u = unions.get((q, joined))
        if u is None:
            u = unions[q, joined] = len(parent)
            members[u] = joined
            parent.append(q)
            depth.append(depth[q] + 1)
            cond.append(_any_of([conj for r in joined for conj in path_dnf(r, q)]))
            cshape.append(_broadcast(*(cshape[r] for r in joined)) if shaped else ())
        return u

    def _path(r: int, q: int) -> list:
        """r and its ancestors below q."""
        path = [r]
        while parent[path[-1]] != q:
            path.append(parent[path[-1]])
        return path

    def narrowed(e: int, f: int, i: int, a: int) -> int:
        """The region below f of a value a narrower than region e's mask, where an
        elementwise op i of e broadcasts it: masked by the flag "some lane of i
        that is summed into a's lane has e's conditions up to f" (_LANES)."""
        path = []
        r = e
        while r != f:
            path.append(cond[r])
            r = parent[r]
        key = (f, _LANES, tuple(path), instrs[i][3], instrs[a][3])
        r = named.get(key)
        if r is None:
            r = named[key] = len(parent)
            parent.append(f)
            depth.append(depth[f] + 1)
            cond.append(((((_LANES, tuple(path), i, a), True),),))
            cshape.append(_broadcast(cshape[f], instrs[a][3]))
        return r

    edges: list = []   # (i, j, a, the edge's region), in sweep order
    for i in range(n - 1, -1, -1):
        ins = instrs[i]
        m = region[i]
        if i in seeded or ins[0] == "input":
            m = region[i] = 0
        elif m == unseen:
            # no adjoint reaches it (read only where no adjoint flows, as a where's
            # condition: where(where(x > 0, x, sqrt(x)) > 0, sqrt(x), x)): its edges
            # carry nothing and are no uses of its arguments
            region[i] = 0
            continue
        if not active[i]:
            continue
        args = ins[1]
        key = (ins[0], len(args))
        js = carriers.get(key)
        if js is None:
            js = carriers[key] = carrying(ops[ins[0]], len(args))
        if ins[0] == "where":
            branch = {}
            for j, side in ((1, True), (2, False)):
                key = (m, args[0], side)
                r = named.get(key)
                if r is None:
                    r = named[key] = len(parent)
                    parent.append(m)
                    depth.append(depth[m] + 1)
                    cond.append((((args[0], side),),))
                    cshape.append(_broadcast(cshape[m], instrs[args[0]][3]) if shaped else ())
                branch[j] = r
        for j in js:
            a = args[j]
            if not active[a]:
                continue
            e = branch[j] if ins[0] == "where" else m
            edges.append((i, j, a, e))
            if shaped:
                # (a tensor: a joins only the regions whose mask is lane-aligned with it
                # through this edge; see _fits)
                lanes = ins[0] == "where" or _elementwise(ops[ins[0]])
                f = e
                while f and not _fits(cshape[f], instrs[a][3], lanes):
                    f = parent[f]
                if f != e and lanes:
                    e = narrowed(e, f, i, a)
                else:
                    e = f
            region[a] = e if region[a] == unseen else join(region[a], e)
    if len(parent) == 1:
        return None
    # A region of additions, subtractions, negations and copies (partials ±1, never
    # NaN) and no where: where's own mask at its top keeps its adjoints 0 where the
    # branch is not taken, so its members go to the parent region.
    plain = [True] * len(parent)
    plain[0] = False
    for i, j, a, e in edges:
        m = region[i]
        if plain[m] and (instrs[i][0] == "where" or not _constant_partial(ops[instrs[i][0]], j)):
            plain[m] = False
    for v, m in enumerate(region):
        if plain[m]:
            region[v] = parent[m]

    return region, parent, cond, members, edges, plain


def ref_where_exits(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> Optional[dict]:
    """For the instructions whose edges differ from their op's VJP: i -> {argument
    j: (top, conditions)}, where `top` says the edge is a where's branch and takes
    the adjoint as it is (the where's own mask is then one of the conditions, or
    none when the branch is inside its region), and `conditions` are those the
    contribution is masked by, innermost first, each a tuple of conjunctions of
    (trace var of a condition, branch taken: True for where's x) that holds where
    any of them does. None where no edge changes (no where, or each where's
    branches used elsewhere as well). Scalars and tensors (see the module's
    docstring for how a tensor's region is bounded)."""
    found = _ref_regions(instrs, active, seeded, tensors=True)
    if found is None:
        return None
    region, parent, cond, members, edges, plain = found
    exits: dict = {}
    changed = set()
    depth = [0] * len(parent)
    for r in range(1, len(parent)):   # (a region's parent is made before it)
        depth[r] = depth[parent[r]] + 1

    for i, j, a, e in edges:
        top = instrs[i][0] == "where"
        if plain[e] and not top:
            e = parent[e]
        target, conds = region[a], []
        # masked from e up to e's and the target's lowest common ancestor: the target;
        # into a union from below one of its members, the union's parent; into a
        # narrowed region (tensors), its parent (the conditions its flag sums)
        stop, t = e, target
        while depth[stop] > depth[t]:
            stop = parent[stop]
        while depth[t] > depth[stop]:
            t = parent[t]
        while stop != t:
            stop, t = parent[stop], parent[t]
        while e != stop:
            conds.append(cond[e])
            e = parent[e]
        exits.setdefault(i, {})[j] = (top, tuple(conds))
        if (len(conds) != 1) if top else conds:   # (a where's own VJP: its one mask)
            changed.add(i)
    return {i: exits[i] for i in changed} or None


def ref_region_masks(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> dict:
    """variable -> the conditions (as where_exits gives them, innermost first) under
    which its region is taken, for the variables in a region that is masked: where
    they do not hold, the variable's partials are not the function's."""
    found = _ref_regions(instrs, active, seeded)
    if found is None:
        return {}
    region, parent, cond = found[:3]
    chains: dict = {0: ()}

    def chain(r: int) -> tuple:
        if r not in chains:
            chains[r] = (cond[r], *chain(parent[r]))
        return chains[r]

    return {v: chain(r) for v, r in enumerate(region) if r}




# -- the comparisons ------------------------------------------------------------------

def _same_as_reference(trace) -> Optional[dict]:
    active = reverse.active_set(trace, [v for _, v in trace.inputs])
    seeded = {trace.outputs[0][1]}
    got = where_exits(trace.instrs, active, seeded)
    assert got == ref_where_exits(trace.instrs, active, seeded)
    if not any(map(_SHAPE_OF, trace.instrs)):
        assert region_masks(trace.instrs, active, seeded) == ref_region_masks(trace.instrs, active, seeded)
    return got


def _numbered(expr: str) -> str:
    numbers = iter(range(1, 10 ** 6))
    return re.sub("@", lambda _: f"{next(numbers) / 64}", expr)


@pytest.mark.parametrize("expr", ONE + TWO)
def test_the_where_suites_formulas(expr):
    _same_as_reference(to_trace(expr))


def _shared(rng: random.Random, k: int) -> str:
    """k wheres of different conditions whose branches read values of a small pool:
    values shared by many branches (unions of up to k regions, nested ones too)."""
    pool = [_drawn(rng, 2) for _ in range(3)]
    terms = []
    for j in range(k):
        inner = rng.choice(pool)
        branch = rng.choice(["sqrt({p}) * {q}", "log({p}) + {q}", "{p} * {q}", "where({q} > {c}, sqrt({p}), {q})"])
        branch = branch.format(p=inner, q=rng.choice(["x", "y", "(x - y)", rng.choice(pool)]), c=j / 4)
        side = rng.random() < 0.5
        cond = rng.choice(["x > {c}", "y < {c}", "x * y > {c}", "{p} > {c}"]).format(c=j / 8, p=rng.choice(pool))
        terms.append(f"where({cond}, {branch}, {rng.choice(pool)})" if side else
                     f"where({cond}, {rng.choice(pool)}, {branch})")
    return " + ".join(terms)


def test_random_formulas_of_the_where_grammar():
    rng = random.Random(2026)
    for _ in range(150):
        _same_as_reference(to_trace(_numbered(f"{_drawn(rng)} + x * y")))


def test_random_formulas_with_values_shared_by_many_branches():
    rng = random.Random(14)
    unions = 0
    for n in range(150):
        trace = to_trace(_numbered(f"{_shared(rng, rng.randint(2, 12))} + x * y"))
        got = _same_as_reference(trace)
        unions += bool(got) and any(len(anyof) > rm._NESTED for by_j in got.values()
                                    for _, conds in by_j.values() for anyof in conds)
    assert unions >= 10   # (the cases that changed most: many unions joined one by one)


def test_a_value_in_more_branches_than_a_union_holds():
    # (beyond _MAX_UNION regions the value is left unmasked: the joins capped alike)
    k = _MAX_UNION + 8
    expr = "p = sqrt(x)\n" + " + ".join(f"where(x > {j}, p * {j + 1}, 0)" for j in range(k))
    _same_as_reference(to_trace(expr))


@pytest.mark.parametrize("expr", ["sum(where(A > 0, log(A + r), 0))",
                                  "sum(where(r > 0, sqrt(r) * s, 0) + where(A < 1, sqrt(r) + A, s))",
                                  "sum(where(A > s, sqrt(A - s), 0)) + sum(where(r < s, log(s - r), r))",
                                  "sum(where(A > 0, where(r > 0, sqrt(r * A), A), sqrt(s) * A))"])
def test_tensor_formulas(expr):
    shapes = {name: shape for name, shape in {"A": (2, 5), "r": (5,), "s": ()}.items()
              if re.search(rf"\b{name}\b", expr)}
    assert _same_as_reference(to_trace(expr, shapes=shapes)) is not None


@pytest.mark.parametrize("share", [1, 5, 40])
def test_the_benchmarks_formulas(share):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        from bench_where import formula
    finally:
        sys.path.pop(0)
    assert _same_as_reference(to_trace(formula(120, seed=share, share=share)))


def test_grad_reverse_asks_once_where_the_bulk_sweep_declines(monkeypatch):
    """A masked trace the bulk sweep declines after asking (a negation of G under a
    mask: reverse_bulk_masks.fresh_negations; a union of more than _NESTED regions
    was one, before the bulk sweep made its flag); the per-instruction sweep takes
    its answer (it asked again: two region analyses)."""
    expr = "log(where(abs(x) < 1, exp(y), arccos(-x))) + x * y"
    trace = to_trace(expr)
    asked = []
    real = rm._regions
    monkeypatch.setattr(rm, "_regions", lambda *a, **k: asked.append(1) or real(*a, **k))
    monkeypatch.setattr(reverse, "_BULK_FROM", 0)
    declined = []
    bulk = reverse_bulk.grad_reverse_bulk
    monkeypatch.setattr(reverse_bulk, "grad_reverse_bulk", lambda *a: declined.append(bulk(*a)) or declined[-1])
    got = reverse.grad_reverse(trace)
    assert declined == [None] and len(asked) == 1
    # (the same trace as a sweep that asks on its own)
    monkeypatch.setattr(reverse, "_BULK_FROM", float("inf"))
    assert str(got) == str(reverse.grad_reverse(trace)) and len(asked) == 2
    assert reverse._ASKED.last is None   # (the answer not held past the gradient)
