"""The bulk reverse sweep's write-out: each kind's template made for all its edges.

Where it sits: passes/reverse_bulk_layout.py has given every regular edge its block
of positions (start .. total), and decided what is shared with earlier instructions
(passes/reverse_bulk_share.py) and what the identities on negations drop or swap
(passes/reverse_bulk_negations.py); here each kind's template instructions are made
from NumPy columns (G the consumer's adjoint, the arguments', an earlier instance
where shared), then what closes each contribution (a copy, add or sub), and the
`c − x` and `old − x` of the negation identities. Each instruction is put in its
place as it is made: no list of them all in block order, nor a permutation of it
(the peak at 10^6 operations).
"""

from __future__ import annotations

from itertools import repeat

import numpy as np

from ..trace.ir import _new_tuple
from ..trace.ir_trace import Instr
from .reverse_bulk_share import _const_key


class NewInstrs:
    """The new instructions (after the n primal ones), in place, and which are written."""

    def __init__(self, n: int, size: int):
        self.n = n
        self.new: list = [None] * size
        self.written = np.zeros(size, bool)

    def put(self, pos, op, argcols) -> int:
        n = self.n
        self.written[pos - n] = True
        # (any() of the Nones list.__setitem__ returns: a C-level loop that keeps nothing)
        any(map(self.new.__setitem__, (pos - n).tolist(),
                map(_new_tuple, repeat(Instr), zip(repeat(op), zip(*argcols), repeat(()), repeat(())))))
        return len(pos)


def _write_regular(out: NewInstrs, instrs, templates, groups, shared, firsts, e_i, start, total, prev, adj, arg_cols,
                   const_var, first, as_sub, dropped, swap, unneg, result_hit, dead, fresh, neg_last, prev_edge,
                   neg_edge) -> int:
    """Put the regular edges' instructions (per edge, in sweep order: `start`, its
    first position; `total`, where its adjoint is after it; `prev`, the adjoint
    before it); `groups` [(template id, its edges)], `shared` and `firsts` from the
    hash-consing, the masks from the layout. Returns how many were put."""
    put = out.put
    placed = 0
    negated = np.full(len(e_i), -1, np.int64)   # (a dropped negation's argument)
    swapped = np.full(len(e_i), -1, np.int64)   # (a swapped edge's c)
    for t, idx in groups:
        if not len(idx):
            continue
        tinstrs, result = templates[t]
        ii = e_i[idx]
        st = start[idx]
        cols = {("s", 0): adj[ii]}   # (the seed G: the consumer's adjoint)
        at = [st + k for k in range(len(tinstrs))]   # each instruction's variable
        kept = [slice(None)] * len(tinstrs)
        if t in shared:
            keep, alias, offsets = shared[t]
            for k in range(len(tinstrs)):
                at[k] = st + offsets[:, k]
                if not keep[:, k].all():
                    kept[k] = keep[:, k]
                    hit = alias[:, k]
                    built = firsts[np.where(keep[:, k] | (hit >= 0), 0, -1 - hit)]   # (an earlier instance)
                    at[k] = np.where(keep[:, k], at[k], np.where(hit >= 0, hit, built))

        def column(r):
            if r[0] == "t":
                return at[r[1]]
            if r[0] == "c":
                return np.full(len(idx), const_var[_const_key(r[1])], np.int32)
            if r[0] == "u":
                if r not in cols:
                    cols[r] = arg_cols[r[2]][column(("s", r[1]))]
                return cols[r]
            if r not in cols:   # an argument's column, or the result's slot (after the arguments)
                k = r[1] - 1
                cols[r] = arg_cols[k][ii] if k < len(instrs[ii[0]][1]) else ii
            return cols[r]
        sub = as_sub[idx]
        drop = dropped[idx]
        for k, (op, refs) in enumerate(tinstrs):
            keep = kept[k]
            if k == len(tinstrs) - 1 and neg_last[t]:
                keep = ~sub & ~drop   # (the negation of an `old − m` is not built; never shared)
            pos = at[k][keep]
            if len(pos):
                placed += put(pos, op, [column(r)[keep].tolist() for r in refs])
        # what closes each contribution: a copy (first, result not fresh), add or sub
        res = column(result)
        if tinstrs and result[0] == "t" and neg_last[t]:
            m = column(tinstrs[result[1]][1][0])
        else:
            m = res
        fi, before, ends = first[idx], prev[idx], total[idx]
        sw = swap[idx]
        for mask, op, cols2 in ((fi & (~fresh[t] | result_hit[idx]) & ~dead[idx], "copy", (res,)),
                                (~fi & sub, "sub", (before, m)),
                                (~fi & ~sub & ~sw & ~unneg[idx], "add", (before, res))):
            if mask.any():
                placed += put(ends[mask], op, [c[mask].tolist() for c in cols2])
        if neg_last[t]:   # (what a negation negates: for `c − x` and `old − x`)
            negated[idx] = m
        if sw.any():
            swapped[idx[sw]] = res[sw]
    if swap.any():
        at_swap = np.flatnonzero(swap)
        placed += put(total[at_swap], "sub", [swapped[at_swap].tolist(), negated[prev_edge[at_swap]].tolist()])
    if unneg.any():
        at_unneg = np.flatnonzero(unneg)
        placed += put(total[at_unneg], "sub", [prev[at_unneg].tolist(),
                                                negated[neg_edge[e_i[at_unneg]]].tolist()])
    return placed
