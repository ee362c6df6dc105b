"""The bulk reverse sweep's negation classes: the builder's identities on negated adjoints.

Where it sits: passes/reverse_bulk_layout.py lays out the regular edges' blocks;
before their sizes are summed into positions it asks here which contributions the
identities of grad_reverse's builder on negations change. A first contribution −m
and a second c, not a negation, is c − m (the negation dropped); a later
contribution that is a negated G (−x) is old − x (G's negation dropped if nothing
else reads it); a later contribution −m is `old − m` (the negation not built). An
adjoint's class, negation or not, is found for the later contributions that are G
(_negations), through the chains of copies the layout's `up` follows.
"""

from __future__ import annotations

import numpy as np

from .reverse_bulk_consts import E


def _negations(n, templates, e_t, e_a, single, fresh, neg_last, cs, up, wanted) -> np.ndarray:
    """The adjoints of `wanted` at the end: a negation (1), not one (0), or not known
    (2). A single regular contribution is one where its template's result is a
    negation, and is G's class where it is G (carried down by `up`); a sum is not one;
    the constant sweep's, as its refs say (asked of the roots wanted only)."""
    cls = np.zeros(n, np.int8)
    e = np.flatnonzero(single)
    t = e_t[e]
    cls[e_a[e]] = np.where(neg_last[t], 1, np.where(fresh[t], 0, 2))
    roots = up[wanted]
    final = cs.final
    for a in set(roots.tolist()) & final.keys():
        r = final[a]
        cls[a] = 2 if r[0] == E else cs._negated(r) is not None   # (E: a regular edge's total, not followed)
    return cls[roots]


def _negation_classes(n, o, wrt_set, templates, e_i, e_a, e_t, py, first, next_edge, fresh, neg_last, seed_t, cs,
                      up) -> tuple:
    """(as_sub, dropped, swap, unneg, neg_edge) over the edges in sweep order (`py`:
    the constant sweep's, not asked; `first`: an argument's first contribution):
    `as_sub`, a later contribution whose negation is not built (old − m); `dropped`,
    an edge not laid out; `swap`, the second contribution written c − x; `unneg`, a
    later contribution G written old − x; `neg_edge`, per variable the single edge
    whose result is its negation (-1: none)."""
    as_sub = ~first & neg_last[e_t] & ~py    # old − m: the negation is not built
    # A first contribution that is a negation −x, and a second that is not one (a
    # fresh result): the builder's old + c is c − x, and the negation, which nothing
    # else reads, is dropped by grad_reverse's finish: `swap` marks the second edge,
    # `dropped` the first
    # (c is a negation where it is one fresh, or G that is one: the class of G for the
    # later contributions that are G, 2 where not known)
    later_g = np.flatnonzero(~py & ~first & (e_t == seed_t))
    g_negated = np.full(len(e_i), 2, np.int8)
    g_negated[later_g] = _negations(n, templates, e_t, e_a, first & (next_edge < 0) & ~py, fresh, neg_last, cs, up,
                                    e_i[later_g])
    del later_g
    dropped = ~py & first & neg_last[e_t]
    second = np.where(dropped, next_edge, -1)
    ok = second >= 0
    s2 = second[ok]
    ok[ok] = ~py[s2] & (fresh[e_t[s2]] & ~neg_last[e_t[s2]] | (g_negated[s2] == 0))
    del s2
    dropped &= ok
    swap = np.zeros(len(e_i), bool)
    swap[second[dropped]] = True
    del second, ok
    # A later contribution that is G, where G is a negation −x made by its own single
    # edge: old + G is old − x (`unneg`); that negation, if nothing else reads it (every
    # edge out of its variable such a one, and not an output), is dropped too
    neg_edge = np.full(n, -1, np.int64)   # (the single edge whose result is the variable's negation)
    lone = np.flatnonzero(first & (next_edge < 0) & ~py & neg_last[e_t])
    neg_edge[e_a[lone]] = lone
    unneg = (g_negated == 1) & (neg_edge[e_i] >= 0)
    del g_negated, lone   # (`up`: the caller's, dropped on return)
    if unneg.any():
        out_edges = np.bincount(e_i, minlength=n)
        unneg_edges = np.bincount(e_i[unneg], minlength=n)
        gone = np.flatnonzero((out_edges == unneg_edges) & (unneg_edges > 0))
        gone = gone[~np.isin(gone, [o, *wrt_set])]
        dropped[neg_edge[gone]] = True
        del out_edges, unneg_edges, gone
    return as_sub, dropped, swap, unneg, neg_edge
