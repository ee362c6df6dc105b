"""Where the reverse sweep masks an adjoint by a where()'s condition.

Where it sits: inside passes/reverse.adjoint_sweep, which asks `where_exits` once
before its sweep and wraps the edges it names; passes/elimination.py masks the
local partials of the variables `region_masks` names.

where(c, a, b) passes its adjoint to the branch taken: ā = where(c, ḡ, 0). On
its own that is not enough: the untaken branch's partials may be NaN or infinite
there (sqrt'(-1), 1/0), and 0·NaN is NaN, so the gradient of
where(x > 0, sqrt(x), 0) would be NaN at x = -1 where the function's slope is 0.

The instructions whose adjoint comes only (transitively) from branch a of a
where(c, a, b) form a *region* masked by c (branch b's: by not-c). Adjoint enters
a region only through its where, so a region's adjoints matter only where its
condition holds. The sweep therefore lets the adjoint into the region unmasked and
masks each contribution that *leaves* it (to an instruction outside, or to an
input's adjoint): where(c, contribution, 0). Inside, NaN may appear at points
where the branch is not taken; it never escapes. Regions nest (a where inside a
branch): a region's parent is the region of its where, and an edge that leaves
several regions at once is masked by each of their conditions, innermost first.
An instruction whose adjoint comes from inside and outside a region belongs to the
smallest region that holds all its uses (the root: none). One read in the branches
of wheres of different conditions (sqrt(x) in where(x > 0, sqrt(x), 0) +
where(x < -1, 2·sqrt(x), 0)) belongs to the union of those regions, masked where
any of their conditions holds: where(c1, t, where(c2, t, 0)), or, for more than
_NESTED regions, one where on a flag "any of them holds". Wheres of one
condition in one region share their branches' regions: a Hessian's tangent sweep
makes a where per direction, each with the primal's condition.

A region of additions, subtractions, negations and copies only (partials ±1) is
left to where's own mask at its top (as many wheres, and the trace as before).

Only the edges that carry adjoint count as uses (not a where's condition, not an
argument whose partial is a structural zero): a variable used both as the
condition and inside a branch still belongs to the branch's region. Inputs, and
variables seeded with a cotangent, belong to no region.

Only traces of scalars are masked (a tensor condition may broadcast beyond the
argument's shape); other traces keep where's own VJP (the taken branch).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Collection, Optional, Sequence

from .. import ops as _ops
from ..op_def import negated_seed, seed

_OP_OF, _SHAPE_OF = itemgetter(0), itemgetter(3)
# Up to _NESTED regions, a union's mask is a where per region on each edge that leaves
# it; beyond, one where on a flag "any of them holds" that the builder makes once per
# union (hash-consed: comparisons, products and maxima of 0/1 flags, no derivative).
# At most _MAX_UNION regions (a union of n regions takes n² steps to make): a value
# shared by more branches is left unmasked, as where's own VJP leaves it.
_NESTED = 4
_MAX_UNION = 256


def _regions(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> Optional[tuple]:
    """(each variable's region, each region's parent, each region's condition, the
    edges (i, j, a, the edge's region) in sweep order, each region's plainness), or
    None where there is no region (no where, or a tensor)."""
    if "where" not in map(_OP_OF, instrs) or any(map(_SHAPE_OF, instrs)):
        return None
    ops = _ops.OPS
    n = len(instrs)
    # regions: 0 is the root (no mask); a where makes two, its branches' (shared by
    # the wheres of the same condition in the same region), each masked by one
    # condition; a union of sibling regions is masked by any of theirs
    parent, depth, cond = [0], [0], [None]
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

    def join(x: int, y: int) -> int:
        """The smallest region that holds regions x and y: a common ancestor, or the
        union of the regions they are or join, below their lowest common ancestor q."""
        q = lca(x, y)
        if q == x or q == y:
            return q
        joined = set()
        for r in (*members.get(x, (x,)), *members.get(y, (y,))):
            path = _path(r, q)
            if any(len(cond[p]) != 1 for p in path):
                # (a union on the way: its condition is no conjunction; the region
                # below q stands for r, a larger one)
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
            cond.append(_any_of([tuple(lit for p in _path(r, q) for lit in cond[p][0]) for r in joined]))
        return u

    def _path(r: int, q: int) -> list:
        """r and its ancestors below q."""
        path = [r]
        while parent[path[-1]] != q:
            path.append(parent[path[-1]])
        return path

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
            js = carriers[key] = _carrying(ops[ins[0]], len(args))
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
                branch[j] = r
        for j in js:
            a = args[j]
            if not active[a]:
                continue
            e = branch[j] if ins[0] == "where" else m
            edges.append((i, j, a, e))
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


def where_exits(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> Optional[dict]:
    """For the instructions whose edges differ from their op's VJP: i -> {argument
    j: (top, conditions)}, where `top` says the edge is a where's branch and takes
    the adjoint as it is (the where's own mask is then one of the conditions, or
    none when the branch is inside its region), and `conditions` are those the
    contribution is masked by, innermost first, each a tuple of conjunctions of
    (trace var of a condition, branch taken: True for where's x) that holds where
    any of them does. None where no edge changes (no where, a tensor, or each
    where's branches used elsewhere as well)."""
    found = _regions(instrs, active, seeded)
    if found is None:
        return None
    region, parent, cond, members, edges, plain = found
    exits: dict = {}
    changed = set()
    for i, j, a, e in edges:
        top = instrs[i][0] == "where"
        if plain[e] and not top:
            e = parent[e]
        target, conds = region[a], []
        # (into a union from below one of its members: up to the union's parent)
        stop = parent[target] if target in members else target
        while e != target and e != stop:
            conds.append(cond[e])
            e = parent[e]
        exits.setdefault(i, {})[j] = (top, tuple(conds))
        if (len(conds) != 1) if top else conds:   # (a where's own VJP: its one mask)
            changed.add(i)
    return {i: exits[i] for i in changed} or None


def region_masks(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> dict:
    """variable -> the conditions (as where_exits gives them, innermost first) under
    which its region is taken, for the variables in a region that is masked: where
    they do not hold, the variable's partials are not the function's."""
    found = _regions(instrs, active, seeded)
    if found is None:
        return {}
    region, parent, cond = found[:3]
    chains: dict = {0: ()}

    def chain(r: int) -> tuple:
        if r not in chains:
            chains[r] = (cond[r], *chain(parent[r]))
        return chains[r]

    return {v: chain(r) for v, r in enumerate(region) if r}


def _any_of(conjunctions: list) -> tuple:
    """The conjunctions less those that never hold (a condition and its negation)
    and those that hold only where another does (a superset of its literals)."""
    sets = [frozenset(c) for c in conjunctions]
    live = [k for k, c in enumerate(sets) if not any((v, not side) in c for v, side in c)]
    return tuple(conjunctions[k] for k in live
                 if not any(sets[m] < sets[k] or (sets[m] == sets[k] and m < k) for m in live))


def _carrying(op, n_args: int) -> tuple:
    """The arguments of an op that an adjoint flows to: those with a partial (all, for
    an op without partials)."""
    partials = getattr(op.vjp, "partials", None)
    if partials is None:
        return tuple(range(n_args))
    return tuple(j for j, p in enumerate(partials) if p is not None)


def _constant_partial(op, j: int) -> bool:
    partials = getattr(op.vjp, "partials", None)
    return partials is not None and partials[j] in (seed, negated_seed)


def masked_edges(b, edges: tuple, exit: dict, vmap: Sequence[int]) -> tuple:
    """An instruction's edges (reverse._edges) with the masks of `exit`
    (where_exits' entry for it) applied: each edge's partial or VJP wrapped."""
    out = []
    for j, partial, vjp in edges:
        if j not in exit:   # (an inactive argument: the sweep skips it)
            out.append((j, partial, vjp))
            continue
        top, conds = exit[j]
        if vjp is None:
            if top:
                partial = seed   # (the sweep's own path for it: no call)
            if conds:
                partial = _masked_partial(partial, _in_builder(conds, vmap))
            out.append((j, partial, None))
        else:
            if top:
                vjp = _taken_vjp
            if conds:
                vjp = _masked_vjp(vjp, _in_builder(conds, vmap))
            out.append((j, None, vjp))
    return tuple(out)


def masked(b, c: int, conds: tuple, vmap: Sequence[int]) -> int:
    """Builder var c where `conds` (trace vars, as region_masks gives them) hold, else 0."""
    return _mask(b, c, _in_builder(conds, vmap))


def _in_builder(conds: tuple, vmap: Sequence[int]) -> tuple:
    return tuple(tuple(tuple((vmap[c], side) for c, side in each) for each in anyof) for anyof in conds)


def _taken_vjp(b, j, g, args, out, attrs):
    return g


def _mask(b, c: Optional[int], conds: tuple) -> Optional[int]:
    """c where each of `conds` holds, else 0. A condition holds where any of its
    conjunctions does, a conjunction where each of its (variable, branch) does."""
    if c is not None:
        for anyof in conds:
            if len(anyof) > _NESTED:
                c = b.where(_any_flag(b, anyof), c, 0.0)
                continue
            masked = 0.0
            for each in reversed(anyof):
                t = c
                for v, side in each:
                    t = b.where(v, t, masked) if side else b.where(v, masked, t)
                masked = t
            c = masked
    return c


def _any_flag(b, anyof: tuple) -> int:
    """1.0 where any of the conjunctions holds, else 0.0 (a where's condition holds
    where it is nonzero, NaN included)."""
    flags = []
    for each in anyof:
        f = None
        for v, side in each:
            lit = b.apply("ne" if side else "eq", v, 0.0)
            f = lit if f is None else b.mul(f, lit)
        flags.append(f)
    flag = flags[0]
    for f in flags[1:]:
        flag = b.apply("maximum", flag, f)
    return flag


def _masked_partial(partial, conds: tuple):
    return lambda b, g, *args: _mask(b, partial(b, g, *args), conds)


def _masked_vjp(vjp, conds: tuple):
    return lambda b, j, g, args, out, attrs: _mask(b, vjp(b, j, g, args, out, attrs), conds)
