"""Index adjoints kept sparse through elementwise ops, in the reverse sweep of tensors.

Where it sits: inside passes/reverse.adjoint_sweep, on traces of tensors that
index (x[key]); a trace without an index op never comes here (its sweep, and its
generated code, are as before).

The adjoint of x[key] is scatter(g, x, key) (tensor_rules.vjp_index): zero outside
key, structurally. An elementwise op upstream multiplies its adjoint lane by lane by
its partial, and 0·inf is NaN in the lanes the output never read: sqrt(z)[2] had
gradient [nan, nan, 0.5] at z = [0, -800, 1], -log(softmax(z))[0] NaN everywhere.
So the sweep keeps such an adjoint as *terms* (g, keys): scatter(g) through the
chain of keys (x[k1][k2]: k1 first), summed, and an elementwise op whose adjoint is
only terms pushes each one through as scatter(g · partial[keys]): its arguments and
output are read at the keyed lanes only (index; an argument that the op broadcasts
is indexed by the key projected onto its own axes, `project`, and the contribution
summed down to it), which is also O(|key|) work where scatter(g) · partial was O(n).
A where()'s masks (reverse_masks) on such an edge, or on an index or an op that
moves lanes, are applied at the keyed lanes, their conditions indexed alike
(reverse_index_keyed).

Only structural zeros are skipped: a value read through x[0] and also elsewhere
has a dense adjoint, and the sum is dense (the terms are materialized as scatters
and added, no term lost); a numeric zero adjoint times inf stays NaN
(sqrt(x)·sqrt(x) at 0). Terms of the same keys merge (x[0] + x[0]); past MAX_TERMS
distinct keys on one value they are materialized (a dense adjoint, as before).
Terms materialized together are scattered into the block of their value that holds
their lanes, then that into the whole, where the block is small (`_hull`): one pass
over the value where each term's scatter, and each sum, was one.
An index of an index composes keys (x[1:][0]) and stays sparse. Ops that move
lanes without mixing them, or mix them along one axis only (transpose, reshape,
stack, concatenate, broadcast_to, reductions over an axis, softmax, matmul, diagonal,
diag), move the terms to keys of their arguments (reverse_index_moves.py; a
reshape's lanes that are no block, in runs: reverse_index_reshape.py); other ops
(norm, scatter, sum_to, ...), and keys that do not map, take the materialized adjoint.
"""

from __future__ import annotations

import math
from typing import Optional

from .reverse_index_keyed import keyed_conds, project, read
from .reverse_index_moves import MOVES, moved, one_key, trim_key
from .reverse_index_reshape import slice_item
from .reverse_masks import mask_built, masked as mask_traced

# At most this many terms of distinct keys per adjoint: a value read at many keys
# (x[0]*x[1] + x[2]*x[3] + ...) pushes each through every op upstream, so past it the
# adjoint is dense (the sweep's work and trace as before the terms).
MAX_TERMS = 16


def materialize(b, terms: list, ref: int) -> int:
    """The terms as one dense adjoint shaped like `ref`: nested scatters, summed in order
    (several, within the block of ref that holds their lanes where that is at most a
    quarter of it: `_hull`)."""
    if len(terms) > 1:
        hull = _hull(b, terms, ref)
        if hull is not None:
            key, inner = hull
            part = b.index(ref, key=key)
            total = None
            for (g, _), k in zip(terms, inner):
                v = b.scatter(g, part, key=k) if k else g   # (k (): the whole block)
                total = v if total is None else b.add(total, v)
            return b.scatter(total, ref, key=key)
    total = None
    for g, keys in terms:
        refs = [ref]
        for key in keys[:-1]:
            refs.append(b.index(refs[-1], key=key))
        v = g
        for key, r in zip(reversed(keys), reversed(refs)):
            v = b.scatter(v, r, key=key)
        total = v if total is None else b.add(total, v)
    return total


def _hull(b, terms: list, ref: int) -> Optional[tuple]:
    """(the smallest block of ref that holds every term's lanes, each term's key within
    it), or None where that block is more than a quarter of ref, or a size is named:
    the terms' scatters of the whole (and their sums) were each a pass over ref, and
    the sum of them is the same within the block (the same additions, lane by lane);
    the block (its index, its scatters and the one of it) costs at most 1.5 passes."""
    shape = b.shape(ref)
    if not all(type(d) is int for d in shape):
        return None
    keys = [one_key(keys, shape) for _, keys in terms]
    if None in keys:
        return None
    hull, los, size = [], [], 1
    for a, d in enumerate(shape):
        items = [k[a] for k in keys]
        if all(type(i) is int for i in items) and len(set(items)) == 1:
            hull.append(items[0])
            los.append(None)
            continue
        lanes = [range(i, i + 1) if type(i) is int else range(d)[slice(*i)] for i in items]
        lo, hi = min(min(r) for r in lanes), max(max(r) for r in lanes) + 1
        hull.append(slice_item(range(lo, hi), d))
        los.append((lo, hi))
        size *= hi - lo
    if 4 * size > math.prod(shape):
        return None
    inner = []
    for k in keys:
        rel = []
        for i, span, d in zip(k, los, shape):
            if span is None:   # (an int of every term: the block has no such axis)
                continue
            lo, hi = span
            if type(i) is int:
                rel.append(i - lo)
            else:
                r = range(d)[slice(*i)]
                rel.append(slice_item(range(r.start - lo, r.start - lo + r.step * len(r), r.step), hi - lo))
        inner.append(trim_key(tuple(rel)))
    return trim_key(tuple(hull)), inner


def add_terms(b, have: Optional[list], new: list) -> list:
    """`have` (terms, or None) with `new` added: a term of keys already held adds to it."""
    if have is None:
        have = []
    for g, keys in new:
        for k, (h, hkeys) in enumerate(have):
            if hkeys == keys:
                have[k] = (b.add(h, g), keys)
                break
        else:
            have.append((g, keys))
    return have


_SKIP = object()   # an edge's structural zero (a None partial)


def lane_rule(vjp, j: int):
    """(partial, builder conditions) of an elementwise edge's VJP — partial None: the
    adjoint passes as it is (a where's branch inside its region) — _SKIP for a
    structural zero, None for an op that is not elementwise."""
    lane = getattr(vjp, "lane", None)   # (reverse_masks._lane_vjp: a masked edge)
    if lane is not None:
        return lane
    partials = getattr(vjp, "partials", None)
    if partials is None:
        return None
    return _SKIP if partials[j] is None else (partials[j], ())


def push(b, terms: list, args: list, out: int, rules: list) -> Optional[dict]:
    """The terms of an elementwise op's adjoint pushed to its arguments: for each
    (j, (partial, conditions)) of `rules`, argument j's (dense part or None, terms).
    None where a shape does not line up (the caller takes the dense path)."""
    got: dict = {j: [None, []] for j, _ in rules}
    cond_vars = {v for _, (_, conds) in rules for anyof in conds for each in anyof for v, _ in each}
    for g, keys in terms:
        if 0 in b.shape(g):   # (a key that reads no lane: no contribution, not a dense 0)
            continue
        o = out
        xs = list(args)
        cs = {v: v for v in cond_vars}
        arg_keys: list = [[] for _ in args]
        for key in keys:
            shape = b.shape(o)
            for k, x in enumerate(xs):
                pk = project(key, shape, b.shape(x))
                if pk is None:
                    return None
                if pk:
                    xs[k] = b.index(x, key=pk)
                    arg_keys[k].append(pk)
            for v, c in cs.items():
                pk = project(key, shape, b.shape(c))
                if pk is None:
                    return None
                if pk:
                    cs[v] = read(b, c, pk)
            o = b.index(o, key=key)
        for j, (partial, conds) in rules:
            c = g if partial is None else partial(b, g, *xs, o)
            if c is None:   # (a rule's structural zero: x**0)
                continue
            if conds:
                c = mask_built(b, c, tuple(tuple(tuple((cs[v], side) for v, side in each) for each in anyof)
                                      for anyof in conds))
            x = xs[j]
            cshape, xshape = b.shape(c), b.shape(x)
            if cshape != xshape:
                if len(cshape) < len(xshape) or any(d == 1 and e != 1 for d, e in zip(cshape[::-1], xshape[::-1])):
                    c = b.broadcast_to(c, o)   # (a partial narrower than the keyed lanes)
                    cshape = b.shape(c)
                if cshape != xshape:
                    c = b.sum_to(c, x)
            if arg_keys[j]:
                got[j][1].append((c, tuple(arg_keys[j])))
            else:   # (the argument is read whole: a dense contribution)
                got[j][0] = c if got[j][0] is None else b.add(got[j][0], c)
    return got


def _edge_masks(edges: tuple, exit: dict) -> Optional[dict]:
    """Argument j -> (pre, builder conditions) of the where()'s masks on the edges of an
    op that is not elementwise (reverse_masks_build.masked_edges: on the adjoint the op
    takes, or on its contribution); None where an edge holds no such mask."""
    masks = {}
    for j, _, vjp in edges:
        if j not in exit:
            continue
        pre, post = getattr(vjp, "premask", None), getattr(vjp, "postmask", None)
        if pre is None and post is None:
            return None
        masks[j] = (True, pre) if pre is not None else (False, post)
    return masks


class IndexTerms:
    """adjoint_sweep's index adjoints kept as terms: `terms`, trace var -> its terms
    (g, keys), besides its dense adjoint adj[var] (None: none); `step` is called for
    each instruction that indexes or holds terms, before the sweep's own edges."""

    def __init__(self, b, instrs, vmap, adj, active, bar_labels, named):
        self.b, self.instrs, self.vmap, self.adj, self.active = b, instrs, vmap, adj, active
        self.bar_labels, self.named = bar_labels, named
        self.terms: dict = {}

    def give(self, a: int, c: int, mark: int) -> None:
        """A dense contribution c to v̄_a, named as the sweep names it."""
        b, adj = self.b, self.adj
        total = c if adj[a] is None else b.add(adj[a], c)
        label = self.bar_labels[a]
        if label is not None:
            total = b.name(total, label, mark)
            self.named[total] = a
        adj[a] = total

    def take(self, a: int, new: list, mark: int) -> None:
        """Terms contributed to v̄_a: held, but an input's made dense at once (nothing
        upstream to push them through: its scatter as the index's VJP made it), and
        past MAX_TERMS keys, all."""
        got = add_terms(self.b, self.terms.pop(a, None), new)
        if self.instrs[a][0] == "input" or len(got) > MAX_TERMS:
            self.give(a, materialize(self.b, got, self.vmap[a]), mark)
        else:
            self.terms[a] = got

    def step(self, i: int, g: Optional[int], ins, edges: tuple, exit: Optional[dict]) -> Optional[int]:
        """Instruction i's adjoint (dense g, and its terms): an index's goes to its
        argument as terms, an elementwise op's terms are pushed through it, a lane-moving
        op's moved to keys of its arguments (reverse_index_moves); None when
        done, else the dense adjoint for the sweep's own path (the terms added).
        `exit`: where_exits' masks where i leaves a where()'s branch (else None)."""
        b, vmap = self.b, self.vmap
        terms = self.terms.pop(i, None)
        mark = len(b.instrs)
        args = ins[1]
        if ins[0] == "index" and exit is not None and terms is None and g is not None and 0 in exit:
            # an index leaving a where()'s branch: its adjoint masked as the index's own
            # masked edge masks it (before the scatter, reverse_masks._premasked_vjp; for
            # scalar conditions the same as after), then kept as a term like any other
            conds = exit[0][1]
            kept = mask_traced(b, g, conds, vmap) if conds else g
            if b.shape(kept) == b.shape(g):
                g, exit = kept, None
        elif ins[0] == "index" and exit is not None and terms is not None and 0 in exit:
            # the same with terms: theirs masked at their keyed lanes (the mask on the
            # adjoint, or on the contribution where the conditions are scalars: alike
            # for a scatter), the dense part as above
            masks = _edge_masks(edges, exit)
            conds = None if masks is None else masks[0][1]
            shape = b.shape(vmap[i])
            if conds is not None and all(keyed_conds(b, conds, keys, shape, build=False) is not None
                                         for _, keys in terms):
                kept = None if g is None else mask_traced(b, g, exit[0][1], vmap) if exit[0][1] else g
                if kept is None or b.shape(kept) == b.shape(g):
                    terms = [(mask_built(b, t, keyed_conds(b, conds, keys, shape)), keys) for t, keys in terms]
                    g, exit = kept, None
        if ins[0] == "index" and exit is None:
            if self.active[args[0]]:
                key = dict(ins.attrs)["key"]
                new = [] if g is None else [(g, (key,))]
                self.take(args[0], new + [(t, (key,) + keys) for t, keys in terms or ()], mark)
            return None
        if terms is None:
            return g
        got = None
        if g is None and ins[0] in MOVES:
            # (a where()'s mask on an edge: each term's at its keyed lanes, moved)
            masks = None if exit is None else _edge_masks(edges, exit)
            if exit is None or masks is not None:
                got = moved(b, terms, ins[0], [vmap[v] for v in args], vmap[i], dict(ins.attrs),
                            [self.active[v] for v in args], masks)
        elif g is None:
            rules = []
            for j, _, vjp in edges:
                if not self.active[args[j]]:
                    continue
                rule = lane_rule(vjp, j)
                if rule is None:
                    rules = None
                    break
                if rule is not _SKIP:
                    rules.append((j, rule))
            got = None if rules is None else push(b, terms, [vmap[v] for v in args], vmap[i], rules)
        if got is not None:
            for j, (dense, new) in got.items():
                if dense is not None:
                    self.give(args[j], dense, mark)
                if new:
                    self.take(args[j], new, mark)
            return None
        # (neither elementwise nor a move, a key that does not map, or read whole too: dense)
        self.give(i, materialize(b, terms, vmap[i]), mark)
        return self.adj[i]
