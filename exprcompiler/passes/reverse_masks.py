"""Where the reverse sweep masks an adjoint by a where()'s condition.

Where it sits: inside passes/reverse.adjoint_sweep, which asks `where_exits` once
before its sweep and wraps the edges it names; passes/elimination.py masks the
local partials of the variables `region_masks` names. This module is the analysis
(regions, their conditions, the edges that leave them); the masks are built in
reverse_masks_build.py (masked_edges, masked, mask_built: imported here too).

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

Tensors. A region's mask is lane by lane: its conditions broadcast to the shape
of each value in it (its *mask shape*, the broadcast of the conditions' shapes
from it up to the root), and a contribution that leaves it is masked where the
contribution still has the lanes of the operation it leaves: an elementwise op's
partial at the op's (broadcast) shape, *before* the sum down to the argument's
shape (op_def's unbroadcast), so that a condition with more lanes than the
argument (A > 0 of A (2, 5) against r (5,) in log(A + r)) masks each lane before
the rows are summed. A value joins a region through an edge only where its lanes
line up with the mask (_fits): through an elementwise op's edge (a where's branch
too), the mask shape broadcasts to the value's shape, so the lanes summed into one
of its lanes share the mask's value; through any other op's edge (a reduction,
matmul, an index, a reshape) only a scalar mask, since a lane of the argument takes
from output lanes the mask does not take alike. Elsewhere the edge counts for the
nearest enclosing region that fits (the root at worst), so the region stops there:
where(c_vec, A @ b, 0) holds A @ b, not A or b. A contribution that leaves
through such an op is masked on the adjoint it takes (at the op's output shape,
zero there but for the NaN of the region's partials) when a mask is a tensor,
and on the contribution itself when all are scalars (its own NaN factors too).
Through an op that moves lanes without mixing them (transpose, reshape, stack,
concatenate, an index, a sum/mean/max/min over axes, diag, diagonal, broadcast_to...:
reverse_masks_moves) the value goes instead to a *moved* region below the nearest one
that fits, whose condition is the conditions between moved to the value's lanes
(those of the output lanes that read each lane), so that its exits are masked there:
where(transpose(L) > 0, transpose(sqrt(L)), 1) masks sqrt(L)'s exit by L > 0, and
sqrt' = inf meets no zero adjoint that escapes. Where each lane is read by one output
lane at most, the edge into it is not masked at all (a masked reader's NaN stays in a
lane its exits mask); where by several (broadcast_to), the edge is masked as above and
the condition is "some reader's holds".

A value narrower than the mask, that an elementwise op of the region broadcasts
(sqrt(s) of a scalar s in where(x > 0, sqrt(s), 0); r (5,) in where(A > 0,
sqrt(r), 0) of A (2, 5)), goes to a *narrowed* region below the nearest one that
fits: its condition is a flag at the value's shape, "some lane summed into this
one has the conditions between" (_lanes_flag: their 0/1 mask summed down, != 0;
the builder often finds it is the adjoint's own != 0). The edge into it is masked
by those conditions before its sum, so the value's adjoint is 0 wherever the flag
is, and the narrowed region masks its exits by the flag as any region does: the
scalar's adjoint is the sum over the lanes taken, and 0, not 0·NaN, where none is.
Through an op that mixes lanes (matmul, outer, softmax, log_softmax) the condition
moves as "some reader holds" (reverse_masks_moves' ANY), and the edge's contribution
and matmul's and outer's other argument are masked so (reverse_masks_build's
premask). An op that is neither elementwise nor in reverse_masks_moves.MOVES stops the
region: its argument takes the nearest one that fits (a scalar mask's, norm's). Vertex elimination
(region_masks) takes scalar traces only.

Cost (session of 2026-12-06, issue 14): linear on where-heavy formulas. A value's
uses are joined one by one, a union per step: an input's uses are not joined (it is
in the root), a union's condition (_any_of, n² steps) is made when first read
(conds), joins are remembered; the answer is as before (tests/test_where_speed.py).
"""

from __future__ import annotations

import math

from operator import itemgetter
from typing import Collection, Optional, Sequence

from .. import ops as _ops
from .. import shapes as _s
from ..errors import ShapeError
from ..op_def import negated_seed, seed
# (the masks as built, in reverse_masks_build: re-exported, its importers import them here)
from .reverse_masks_build import _LANES, _NESTED, mask_built, masked, masked_edges
from .reverse_masks_moves import ANY, _MOVED, move_kind, moved_cond

__all__ = ["where_exits", "region_masks", "carrying", "masked_edges", "masked", "mask_built", "_NESTED", "_LANES"]
_OP_OF, _SHAPE_OF, _REGION_OF = itemgetter(0), itemgetter(3), itemgetter(3)
# Up to _NESTED regions (reverse_masks_build), a union's mask is a where per region on
# each edge that leaves it; beyond, one where on a flag "any of them holds" that the
# builder makes once per union (hash-consed: comparisons, products and maxima of 0/1
# flags, no derivative).
# At most _MAX_UNION regions (a union's condition of n regions takes n² steps to make): a value
# shared by more branches is left unmasked, as where's own VJP leaves it.
_MAX_UNION = 256
# At most _PATH_TERMS conjunctions in the condition of a region below unions, multiplied out
_PATH_TERMS = 16


def _regions(instrs: Sequence, active: Sequence[int], seeded: Collection[int],
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
    made_of: dict = {}   # union -> (its parent, its members): its condition's makings
    unseen = -1
    region = [unseen] * n
    carriers: dict = {}   # (op, number of arguments) -> the arguments an adjoint flows to

    def lca(x: int, y: int) -> int:
        return _lowest_common(parent, depth, x, y)

    joins: dict = {}   # (x, y) -> join(x, y): a function of the regions made so far, which never change

    def join(x: int, y: int) -> int:
        u = joins.get((x, y))
        if u is None:
            u = joins[x, y] = _join(x, y)
        return u

    def conds(r: int) -> tuple:
        """Region r's condition (a union's made when first asked: most unions are a
        step of a value's uses joined one by one, and hold nothing; the condition of
        a union of n regions takes n² steps)."""
        c = cond[r]
        if c is None:
            q, joined = made_of[r]
            c = cond[r] = _any_of([conj for m in joined for conj in _path_dnf(m, q)])
        return c

    def _path_dnf(m: int, q: int) -> list:
        """Region m's condition below q: the conjunction of its path's, each a union
        of conjunctions (a union on the way), multiplied out."""
        dnf = [()]
        for p in _path(m, q):
            dnf = [a + b for a in dnf for b in conds(p)]
        return dnf

    def _join(x: int, y: int) -> int:
        """The smallest region that holds regions x and y: a common ancestor, or the
        union of the regions they are or join, below their lowest common ancestor q."""
        q = lca(x, y)
        if q == x or q == y:
            return q
        joined = set()
        for r in (*members.get(x, (x,)), *members.get(y, (y,))):
            path = _path(r, q)
            if math.prod(len(conds(p)) for p in path) > _PATH_TERMS:
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
            cond.append(None)   # (made when asked: conds)
            made_of[u] = (q, joined)
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
            path.append(conds(r))
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

    # a region a value joins through an op that moves lanes whose edge needs no mask
    # (EXACT and PARTIAL: reverse_masks_moves) -> that edge (i, j)
    entries: dict = {}

    def moved(e: int, f: int, i: int, j: int, a: int) -> int:
        """The region below f of a value a that op i moves (its argument j) out of
        region e's mask: masked by e's conditions up to f, moved to a's lanes."""
        path = []
        r = e
        while r != f:
            path.append(conds(r))
            r = parent[r]
        key = (f, _MOVED, tuple(path), i, j)
        r = named.get(key)
        if r is None:
            r = named[key] = len(parent)
            parent.append(f)
            depth.append(depth[f] + 1)
            cond.append(_any_of(list(moved_cond(path, instrs[i], i, j, _PATH_TERMS, lit_shape))))
            cshape.append(_broadcast(cshape[f], instrs[a][3]))
            if move_kind(instrs[i][0], j) != ANY:
                entries[r] = (i, j)
        return r

    def lit_shape(lit) -> tuple:
        if type(lit) is not tuple:
            return instrs[lit][3]
        if lit[0] == _LANES:
            return instrs[lit[3]][3]
        return instrs[lit[6][lit[4]]][3]   # (a moved literal's: its argument j's)

    edges: list = []   # (i, j, a, the edge's region), in sweep order
    fixed = {v for v, ins in enumerate(instrs) if ins[0] == "input"}
    fixed.update(seeded)
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
                elif f != e and move_kind(ins[0], j) is not None:
                    e = moved(e, f, i, j, a)
                else:
                    e = f
            if region[a] == unseen:
                region[a] = e
            elif a not in fixed:
                # (an input or a seeded variable is in the root whatever its uses: no union)
                region[a] = join(region[a], e)
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
    # (the conditions of the unions that hold a variable or an edge, and of their
    # ancestors: those the callers read)
    for r in {*region, *map(_REGION_OF, edges)}:
        while r:
            if cond[r] is None:
                conds(r)
            r = parent[r]
    return region, parent, cond, members, edges, plain, entries


def where_exits(instrs: Sequence, active: Sequence[int], seeded: Collection[int]) -> Optional[dict]:
    """For the instructions whose edges differ from their op's VJP: i -> {argument
    j: (top, conditions)}, where `top` says the edge is a where's branch and takes
    the adjoint as it is (the where's own mask is then one of the conditions, or
    none when the branch is inside its region), and `conditions` are those the
    contribution is masked by, innermost first, each a tuple of conjunctions of
    (trace var of a condition, branch taken: True for where's x) that holds where
    any of them does. None where no edge changes (no where, or each where's
    branches used elsewhere as well). Scalars and tensors (see the module's
    docstring for how a tensor's region is bounded)."""
    found = _regions(instrs, active, seeded, tensors=True)
    if found is None:
        return None
    region, parent, cond, members, edges, plain, entries = found
    exits: dict = {}
    changed = set()
    depth = [0] * len(parent)
    for r in range(1, len(parent)):   # (a region's parent is made before it)
        depth[r] = depth[parent[r]] + 1

    for i, j, a, e in edges:
        top = instrs[i][0] == "where"
        if plain[e] and not top:
            e = parent[e]
        target = region[a]
        # (most edges: within one region, nothing to mask; or into the region of a
        # move's argument whose condition is the edge's own, moved: reverse_masks_moves)
        if target == e or (target in entries and entries[target] == (i, j)):
            exits.setdefault(i, {})[j] = (top, ())
            if top:
                changed.add(i)
            continue
        conds = []
        # masked from e up to e's and the target's lowest common ancestor: the target;
        # into a union from below one of its members, the union's parent; into a
        # narrowed region (tensors), its parent (the conditions its flag sums)
        stop = _lowest_common(parent, depth, e, target)
        while e != stop:
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


def _lowest_common(parent: Sequence[int], depth: Sequence[int], x: int, y: int) -> int:
    """The lowest common ancestor of regions x and y (a region is its own ancestor)."""
    while depth[x] > depth[y]:
        x = parent[x]
    while depth[y] > depth[x]:
        y = parent[y]
    while x != y:
        x, y = parent[x], parent[y]
    return x


def carrying(op, n_args: int) -> tuple:
    """The arguments of an op that an adjoint flows to: those with a partial (all, for
    an op without partials)."""
    partials = getattr(op.vjp, "partials", None)
    if partials is None:
        return tuple(range(n_args))
    return tuple(j for j, p in enumerate(partials) if p is not None)


def _constant_partial(op, j: int) -> bool:
    partials = getattr(op.vjp, "partials", None)
    return partials is not None and partials[j] in (seed, negated_seed)


def _elementwise(op) -> bool:
    return getattr(op.vjp, "partials", None) is not None


def _broadcast(*shapes) -> Optional[tuple]:
    if any(s is None for s in shapes):
        return None
    try:
        return _s.broadcast(*shapes)
    except ShapeError:
        return None


def _fits(mask_shape: Optional[tuple], shape: tuple, lanes: bool) -> bool:
    """Whether a value of `shape` can be in a region of `mask_shape` through an edge:
    its adjoint is then zero at each of its lanes where the region's conditions do
    not hold. Through an elementwise op's edge (`lanes`: the contribution is the
    op's output lanes summed down to the argument's shape) the mask must broadcast
    to the argument's shape: the lanes summed into one then share the mask's value.
    Through any other edge (a reduction, matmul, an index...) only a scalar mask
    holds: a lane of the argument takes from lanes of the output that the mask does
    not take alike (through an op that moves lanes, a moved region: _regions)."""
    if mask_shape is None:
        return False
    if not lanes:
        return mask_shape == ()
    return _broadcast(mask_shape, shape) == shape
