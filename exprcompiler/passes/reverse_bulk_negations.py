"""The bulk reverse sweep's negation classes: the builder's identities on negated adjoints.

Where it sits: passes/reverse_bulk_layout.py lays out the regular edges' blocks;
before their sizes are summed into positions it asks here which contributions the
identities of grad_reverse's builder on negations change. A first contribution −m
(or a copy of a negated G) and a second c, not a negation, is c − m (the negation
dropped); a later contribution that is a negated G (−x) is old − x (G's negation
dropped if nothing else reads it); a later contribution −m is `old − m` (the
negation not built); a negated seed of a negated G, −(−m), is m (no negation
built); a negated seed whose G names what an earlier negation negates finds that
negation (the builder keys −G by G's source). An adjoint's class, negation or not,
is found for the G that contributions and negated seeds read (_classes), through
the chains of copies the layout's `up` follows and the chains of negated seeds.
"""

from __future__ import annotations

import numpy as np

from .reverse_bulk_consts import E


def _classes(n, templates, e_i, e_t, e_a, single, fresh, neg_last, cs, up, neg_t, py, wanted) -> tuple:
    """(cls, dneg, key): per variable, whether its adjoint at the end is a negation
    (1), not one (0), or not known (2), for the roots (`up`) of `wanted` and of the
    negated seeds' consumers; per edge, whether it is a negated seed (`neg_t`: a mask
    over the templates) whose G is a negation −m: the builder's −(−m) is m, no
    negation built; and a negated seed's key, G's source (the variable whose adjoint
    G names; -1 - r: what r's negation, made elsewhere, negates). A single regular
    contribution is one where its template's result is a negation, but a single
    negated seed of a negated G is m (not one); a sum is not one; the constant
    sweep's, as its refs say. A chain of negated seeds alternates (−(−(−x)) is −x):
    those whose G is such a seed's are swept in order, in Python, the rest at once."""
    cls = np.zeros(n, np.int8)
    e = np.flatnonzero(single)
    t = e_t[e]
    cls[e_a[e]] = np.where(neg_last[t], 1, np.where(fresh[t], 0, 2))
    negs = np.flatnonzero(neg_t[e_t] & ~py)
    g_roots = up[e_i[negs]]
    for a, r in cs.finals(list(set(up[wanted].tolist()) | set(g_roots.tolist()))).items():
        cls[a] = 2 if r[0] == E else cs._negated(r) is not None   # (E: a regular edge's total, not followed)
    dneg = np.zeros(len(e_i), bool)
    key = np.full(len(e_i), -1, np.int64)
    if not len(negs):
        return cls, dneg, key
    alone = single[negs]
    in_chain = np.zeros(n, bool)
    in_chain[e_a[negs[alone]]] = True
    chained = in_chain[g_roots]   # (G a single negated seed's: its class settled in the sweep)
    # the rest: G's class is known
    rest, r = ~chained, g_roots[~chained]
    hit = cls[r] == 1
    dneg[negs[rest]] = hit
    key[negs[rest]] = r
    a = e_a[negs[rest]]
    lone = alone[rest]
    cls[a[lone & hit]] = 0
    names = dict(zip(a[lone & hit].tolist(), (-1 - r[lone & hit]).tolist()))   # a -> the key v̄_a names (m)
    negates = dict(zip(a[lone & ~hit].tolist(), r[lone & ~hit].tolist()))   # a -> the key whose −v̄ v̄_a is
    if chained.any():
        c = bytearray(cls.tobytes())
        at = negs[chained]
        found = bytearray(len(at))
        keys = g_roots[chained].tolist()
        for k, (r, a, one) in enumerate(zip(keys, e_a[at].tolist(), alone[chained].tolist())):
            g = r
            while g in names:   # (the key of −G: G's source, as the builder's)
                g = names[g]
            keys[k] = g
            if c[r] == 1:   # (G is a negation; sweep order: G's root settled before)
                found[k] = 1
                if one:
                    c[a] = 0
                    names[a] = negates.get(r, -1 - r)
            elif one:
                negates[a] = g
        dneg[at] = np.frombuffer(found, np.uint8).astype(bool)
        key[at] = keys
        cls = np.frombuffer(bytes(c), np.int8)
    return cls, dneg, key


def _negation_classes(n, o, wrt_set, templates, e_i, e_a, e_t, py, first, next_edge, fresh, neg_last, seed_t, cs,
                      up, neg_t, dead) -> tuple:
    """(as_sub, dropped, swap, unneg, neg_edge, dneg, unread, copy_neg, neg_key) over the edges in sweep
    order (`py`: the constant sweep's, not asked; `first`: an argument's first
    contribution; `dead`: an edge whose copy is not laid out): `as_sub`, a later
    contribution whose negation is not built (old − m); `dropped`, an edge not laid
    out; `swap`, the second contribution written c − x; `unneg`, a later contribution
    G written old − x; `neg_edge`, per variable the single edge whose result is its
    negation (-1: none); `dneg`, a negated seed of a negated G, which is m (see
    _classes); `unread`, an edge whose G's negation may be read no more, `copy_neg`, a
    first contribution that is a copy of a negated G read by nothing once swapped:
    the layout drops them where nothing reads them; `neg_key`, a negated seed's
    G's source (see _classes)."""
    # (the seeds whose G's class is asked: a later one, or a first one with a later)
    seeds = np.flatnonzero(~py & (e_t == seed_t) & (~first | (next_edge >= 0)))
    cls, dneg, neg_key = _classes(n, templates, e_i, e_t, e_a, first & (next_edge < 0) & ~py, fresh, neg_last, cs, up,
                                  neg_t, py, e_i[seeds])
    as_sub = ~first & neg_last[e_t] & ~py & ~dneg    # old − m: the negation is not built
    # A first contribution that is a negation −x (one fresh, or a copy of a G that is
    # one), and a second that is not one (a fresh result, a G that is not one, m of a
    # −(−m)): the builder's old + c is c − x, and the negation, which nothing else
    # reads, is dropped by grad_reverse's finish: `swap` marks the second edge,
    # `dropped` the first (a copy: `copy_neg`, dropped after)
    # (the class of G for the contributions that are G, 2 where not known)
    g_negated = np.full(len(e_i), 2, np.int8)
    g_negated[seeds] = cls[up[e_i[seeds]]]
    del seeds, cls
    copy_neg = ~py & first & (e_t == seed_t) & (g_negated == 1) & ~dead
    dropped = ~py & first & neg_last[e_t] & ~dneg
    second = np.where(dropped | copy_neg, next_edge, -1)
    ok = second >= 0
    s2 = second[ok]
    ok[ok] = ~py[s2] & (fresh[e_t[s2]] & ~neg_last[e_t[s2]] | (g_negated[s2] == 0) | dneg[s2])
    del s2
    dropped &= ok
    copy_neg &= ok
    swap = np.zeros(len(e_i), bool)
    swap[second[ok]] = True
    del second, ok
    # A later contribution that is G, where G is a negation −x: old + G is old − x
    # (`unneg`); where G is the negation made by its variable's own single edge and
    # nothing else reads it (every edge out of its variable such a one, or a −(−x),
    # and not an output), it is not laid out; else it is `unread`
    neg_edge = np.full(n, -1, np.int64)   # (the single edge whose result is the variable's negation)
    lone = np.flatnonzero(first & (next_edge < 0) & ~py & neg_last[e_t] & ~dneg)
    neg_edge[e_a[lone]] = lone
    unneg = ~first & (g_negated == 1)
    del g_negated, lone   # (`up`: the caller's, dropped on return)
    own = neg_edge[e_i] >= 0
    gone_reader = (unneg | dneg) & own
    if gone_reader.any():
        out_edges = np.bincount(e_i, minlength=n)
        unneg_edges = np.bincount(e_i[gone_reader], minlength=n)
        gone = np.flatnonzero((out_edges == unneg_edges) & (unneg_edges > 0))
        kept = np.zeros(n, bool)   # (not np.isin: ~100 µs a call)
        kept[[o, *wrt_set]] = True
        gone = gone[~kept[gone]]
        dropped[neg_edge[gone]] = True
        del out_edges, unneg_edges, gone
    return as_sub, dropped, swap, unneg, neg_edge, dneg, (unneg | dneg) & ~own, copy_neg, neg_key


def _negation_hits(e_i, e_t, neg_t, py, dneg, neg_key, aliased) -> tuple:
    """Per edge, the earlier edge whose negation of G its own negation is (-1: none):
    the builder keys −G by G's source, so two negated seeds whose G are copies of
    one adjoint (one `neg_key`) make one negation; the first in sweep order is
    built (or would be: a later contribution's −m is built, then read by nothing),
    the others find it. (`aliased`: those that the hash-consing found, of a G that
    names a primal variable.) And per edge, the variable r whose adjoint names the
    negation that its own negation finds (-1: none): G names m, the m of a −(−m)
    where that negation was made elsewhere (a constant sweep's, the primal's, a
    partial's): −m is found. Returns (hit, external)."""
    hit = np.full(len(e_i), -1, np.int64)
    c = np.flatnonzero(~py & neg_t[e_t] & ~dneg & ~aliased)
    external = np.full(len(e_i), -1, np.int64)
    outside = c[neg_key[c] < 0]
    external[outside] = -1 - neg_key[outside]
    c = c[neg_key[c] >= 0]
    if len(c) < 2:
        return hit, external
    order = c[np.argsort(neg_key[c], kind="stable")]   # (by source, in sweep order within one)
    key = neg_key[order]
    head = np.ones(len(order), bool)
    head[1:] = key[1:] != key[:-1]
    built = order[np.maximum.accumulate(np.where(head, np.arange(len(order)), 0))]
    hit[order[~head]] = built[~head]
    return hit, external
