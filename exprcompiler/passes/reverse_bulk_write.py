"""The bulk reverse sweep's write-out: each kind's template made for all its edges.

Where it sits: passes/reverse_bulk_layout.py has given every regular edge its block
of positions (start .. total), and decided what is shared with earlier instructions
(passes/reverse_bulk_share.py) and what the identities on negations drop or swap
(passes/reverse_bulk_negations.py); here each kind's template instructions are made
from NumPy columns (G the consumer's adjoint, the arguments', an earlier instance
where shared), then what closes each contribution (a copy, add or sub), and the
`c − x` and `old − x` of the negation identities. Each kind's are put in their
places as int32 columns (an op code, the arguments: 15 bytes an instruction), no
list of tuples in block order; at the end the gradient's Columns (trace/columns.py)
are made from them (NewInstrs.columns: generate reads its op codes and arguments
there), and the gradient holds its new instructions as those columns, their tuples
made only when asked for (trace/column_instrs.py). The new instructions' labels as
columns: bar_columns.
"""

from __future__ import annotations

from array import array
from operator import itemgetter

import numpy as np

from ..trace.columns import CODE, CONST, UNKNOWN, Columns, frozen, op_code_bytes
from ..trace.ir import _new_tuple
from ..trace.ir_trace import Instr
from ..trace.labels import KINDS, NONE, Labels, as_labels
from .reverse_bulk_share import _const_key
from .reverse_bulk_templates import _Unsupported


_ARGS = itemgetter(1)


class NewInstrs:
    """The new instructions (after the n primal ones), in place, and which are written.
    The regular edges' (put) are kept as columns, the gradient's (`columns`), whose
    tuples are made when asked for in position order (column_instrs.ColumnInstrs), so
    each kind of tuple lies in memory in the order every later stage reads the trace:
    made a kind at a time, they were scattered, and reading their arguments took 1.8x
    as long (np.fromiter over them, 10^5 text)."""

    def __init__(self, n: int, size: int):
        self.n = n
        self.new: list = [None] * size
        self.written = np.zeros(size, bool)
        self.code = np.full(size, -1, np.int16)   # (an op's number in `ops`; -1: not put)
        self.arity = np.zeros(size, np.int8)
        self.args = np.zeros((3, size), np.int32)   # (positions are int32: the driver's bound)
        self.ops: dict = {}
        self.moved = None   # (where reverse_bulk_fold moved them: a Moved)
        self._deferred: dict = {}   # arity -> (positions, op codes, lengths, argument columns): see defer

    def put(self, pos, op, argcols) -> int:
        p = pos - self.n
        self.written[p] = True
        self.code[p] = self.ops.setdefault(op, len(self.ops))
        self.arity[p] = len(argcols)
        for k, col in enumerate(argcols):
            self.args[k, p] = col
        return len(p)

    def defer(self, pos, op, argcols) -> int:
        """put(pos, op, argcols), written at the next `flush` with the others of its
        arity: a put's few NumPy calls made once per arity, not per template
        instruction (the sweep's fixed cost: ~60 puts at 10^3 operations). A large
        one is put now (its columns not held until the flush: memory at 10^5)."""
        if len(pos) > _DEFER_AT_MOST:
            return self.put(pos, op, argcols)
        batch = self._deferred.setdefault(len(argcols), ([], [], [], [[] for _ in argcols]))
        batch[0].append(pos)
        batch[1].append(self.ops.setdefault(op, len(self.ops)))
        batch[2].append(len(pos))
        for k, col in enumerate(argcols):
            batch[3][k].append(col)
        return len(pos)

    def flush(self) -> None:
        """Write what `defer` kept."""
        for arity, (pos, codes, lengths, cols) in self._deferred.items():
            p = np.concatenate(pos) - self.n
            self.written[p] = True
            self.code[p] = np.repeat(np.array(codes, np.int16), lengths)
            self.arity[p] = arity
            for k, col in enumerate(cols):
                self.args[k, p] = np.concatenate(col)
        self._deferred = {}

    def columns(self, primal: Columns) -> Columns:
        """The gradient's Columns (trace/columns.py): `primal`'s, then the new
        instructions' in their places (after a fold's move: `new` and `code` moved
        too), from the arrays put; the positions not put are constants, made as tuples.
        Generate reads them and not every tuple again for its op codes and arguments
        (cache misses at 10^6 operations), and the gradient holds its instructions as
        them (column_instrs.ColumnInstrs): the argument rows are dropped, so the pass's
        peak holds one copy."""
        moved = self.moved
        code, arity = self.code, self.arity.view(np.uint8)
        kept = arity if moved is None else arity * moved.keep   # (a dropped one's arguments: none)
        if moved is not None:
            code, arity = moved.columns(code, -1), moved.columns(arity, 0)
            placed = [None] * moved.size   # (the tuples kept, in their new places)
            for q in np.flatnonzero(moved.keep & (self.code < 0)).tolist():
                placed[moved.new_rel[q]] = self.new[q]
            for dst, value in moved.consts:
                placed[dst] = _new_tuple(Instr, ("const", (), (("value", value),), ()))
            self.new = placed
        # (argument j of each instruction that has one, put at its place: 2.5x as fast
        # as a mask over the rows' transpose)
        at = np.cumsum(kept, dtype=np.int64)
        at -= kept
        at += len(primal.flat)
        flat = np.empty(int(at[-1] + kept[-1]) if len(at) else len(primal.flat), primal.flat.dtype)
        flat[:len(primal.flat)] = primal.flat
        for j in range(int(kept.max(initial=0))):
            has = np.flatnonzero(kept > j)
            flat[at[has] + j] = self.args[j, has]
        del kept, at
        self.code, self.arity, self.args = code, None, None
        tuples = list(map(self.new.__getitem__, np.flatnonzero(code < 0).tolist()))
        if op_code_bytes(tuples).count(CONST) != len(tuples) or any(map(len, map(_ARGS, tuples))):
            raise AssertionError("bulk sweep: a new instruction not put is not a constant")   # (a bug)
        table = np.array([CODE.get(op, UNKNOWN) for op in self.ops] + [CONST], np.uint8)   # (code -1: a constant)
        return frozen(np.concatenate((primal.code, table[code])), np.concatenate((primal.counts, arity)), flat)

    def fixed(self, cols: Columns) -> dict:
        """{position: tuple} of the new instructions not put (the constants: their
        values) and of those whose op the columns' table does not hold (registered
        after it was made: made here from `cols`, columns' answer), after `columns`
        (in their moved places): the rest are made from the columns when asked for
        (trace/column_instrs.py)."""
        new, n, code = self.new, self.n, self.code
        fixed = {n + q: new[q] for q in np.flatnonzero(code < 0).tolist()}
        names = list(self.ops)
        odd = [k for k, op in enumerate(names) if op not in CODE]
        if odd:
            starts = cols.starts()
            for q in np.flatnonzero(np.isin(code, odd)).tolist():
                s, c = int(starts[n + q]), int(cols.counts[n + q])
                fixed[n + q] = _new_tuple(Instr, (names[code[q]], tuple(cols.flat[s:s + c].tolist()), (), ()))
        return fixed


_DEFER_AT_MOST = 1 << 10   # (instructions a put that NewInstrs.defer keeps for the flush)


def _write_regular(out: NewInstrs, instrs, templates, groups, shared, firsts, e_i, start, total, prev, adj, arg_cols,
                   const_var, first, as_sub, dropped, swap, unneg, result_hit, dead, fresh, neg_last, prev_edge,
                   neg_edge, dneg, neg_hit, built_neg, neg_ext, mask_cols=None, dvar=None, shifts=None) -> int:
    """Put the regular edges' instructions (per edge, in sweep order: `start`, its
    first position; `total`, where its adjoint is after it; `prev`, the adjoint
    before it); `groups` [(template id, its edges)], `shared` and `firsts` from the
    hash-consing, the masks from the layout; `mask_cols`, the conditions of the
    edges that leave a where's branch (ref ("m", k): reverse_bulk_masks.py); `dvar`,
    per primal constant the variable of its c − 1 (ref ("d", k): a generic pow's
    exponent, reverse_bulk_generic.MinusConstants); `shifts` {template: [(its where
    on a union's flag, per edge how many flag instructions come before it)]}
    (reverse_bulk_masks.Flags.place). Returns how many were put."""
    put, defer = out.put, out.defer
    placed = 0
    E = len(e_i)
    # (what closes each contribution, and the masks it is chosen by, over all the
    # edges at once: a few NumPy calls in all, not a few dozen per template)
    dn_all = dneg | (neg_hit >= 0) | (neg_ext >= 0)   # (−(−m): m closes it; a negation found: a copy)
    last_keep = (~as_sub | built_neg) & ~dropped & ~dn_all
    # (positions are int32: the driver's bound)
    res_all = np.full(E, -1, np.int32)   # (each edge's contribution, and what its negation negates)
    m_all = np.full(E, -1, np.int32)
    t_of = np.full(E, -1, np.int32)   # (its template; -1: not a regular edge)
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
        if shifts is not None and t in shifts:
            for w, extra in shifts[t]:   # (the wheres from a flag's on: past its instructions)
                for k in range(w, len(tinstrs)):
                    at[k] = at[k] + extra

        def column(r):
            if r[0] == "t":
                return at[r[1]]
            if r[0] == "c":
                return np.full(len(idx), const_var[_const_key(r[1])], np.int32)
            if r[0] == "m":   # (a where's condition, of a masked edge: its own column)
                return mask_cols[r[1]][idx]
            if r[0] == "d":   # (an argument's constant c, as c − 1)
                if r not in cols:
                    cols[r] = dvar[column(("s", r[1]))]
                return cols[r]
            if r[0] == "u":
                if r not in cols:
                    cols[r] = arg_cols[r[2]][column(("s", r[1]))]
                return cols[r]
            if r not in cols:   # an argument's column, or the result's slot (after the arguments)
                k = r[1] - 1
                cols[r] = arg_cols[k][ii] if k < len(instrs[ii[0]][1]) else ii
            return cols[r]
        for k, (op, refs) in enumerate(tinstrs):
            keep = kept[k]
            if k == len(tinstrs) - 1 and neg_last[t]:
                # (the negation of an `old − m` is not built, unless another finds it; never shared)
                keep = last_keep[idx]
            pos = at[k][keep]
            if len(pos):
                placed += defer(pos, op, [column(r)[keep] for r in refs])
        res = res_all[idx] = column(result)
        # (what a negation negates: for `c − x` and `old − x`)
        m_all[idx] = column(tinstrs[result[1]][1][0]) if tinstrs and result[0] == "t" and neg_last[t] else res
        t_of[idx] = t
    regular = t_of >= 0
    negated = np.where(regular & neg_last[t_of], m_all, np.int64(-1))   # (a dropped negation's argument)
    swapped = np.where(regular & swap, res_all, np.int64(-1))   # (a swapped edge's c)
    for mask, op, cols2 in ((first & (~fresh[t_of] | result_hit) & ~dead & ~dn_all, "copy", (res_all,)),
                            (~first & as_sub & (neg_hit < 0) & (neg_ext < 0), "sub", (prev, m_all)),
                            (~first & ~as_sub & ~swap & ~unneg & ~dn_all, "add", (prev, res_all))):
        mask &= regular
        if mask.any():
            placed += defer(total[mask], op, [c[mask] for c in cols2])
    del res_all, m_all, t_of, regular, dn_all, last_keep
    out.flush()   # (the instructions put so far are read below: _negated_by)
    found = np.flatnonzero((neg_hit >= 0) | (neg_ext >= 0))
    if len(found):   # (a negation found built: what it negates; a first contribution, a copy of it)
        at = start[np.maximum(neg_hit[found], 0)]
        outside = neg_ext[found] >= 0
        negated[found] = np.where(outside, -1, negated[np.maximum(neg_hit[found], 0)])
        # (made elsewhere: r's adjoint; what it negates is known where r's own edge made
        # it, even where that negation is not laid out, read by no instruction here: a
        # later contribution is old − m; grad_reverse's finish drops it, unread. Where
        # that edge found its own, or r has none: through the instructions put)
        ext, r = found[outside], neg_ext[found[outside]]
        own = neg_edge[r]
        finder = np.zeros(len(e_i), bool)
        finder[found] = True
        by_own = (own >= 0) & ~finder[np.maximum(own, 0)]
        negated[ext] = np.where(by_own, negated[np.maximum(own, 0)], -1)
        for k in np.flatnonzero(~by_own).tolist():
            negated[ext[k]] = _negated_by(out, instrs, int(adj[r[k]]))
        del own, finder, by_own
        fi = first[found] & ~dropped[found]
        for k in np.flatnonzero(outside & fi).tolist():   # (a copy reads it: it is put)
            at[k] = _negation_at(out, instrs, int(adj[neg_ext[found[k]]]))
        placed += put(total[found[fi]], "copy", [at[fi]])
        later = found[as_sub[found]]
        placed += put(total[later], "sub", [prev[later], negated[later]])
    if dneg.any():
        # −(−m) is m: G's negation's argument (its own edge's, or found through the
        # copies and the instructions put: a constant sweep's, a chain's, the primal's)
        at = np.flatnonzero(dneg)
        m = _negated_g(out, instrs, e_i[at], adj, neg_edge, negated)
        fi, sw = first[at], swap[at]
        for mask, op, cols2 in ((fi, "copy", (m,)), (~fi & ~sw, "add", (prev[at], m))):
            if mask.any():
                placed += put(total[at[mask]], op, [c[mask] for c in cols2])
        swapped[at[sw]] = m[sw]
    if swap.any():
        at_swap = np.flatnonzero(swap)
        p = prev_edge[at_swap]
        x = negated[p]
        copied = x < 0   # (the first a copy of a negated G: what G negates)
        x[copied] = _negated_g(out, instrs, e_i[p[copied]], adj, neg_edge, negated)
        placed += put(total[at_swap], "sub", [swapped[at_swap], x])
    if unneg.any():
        at_unneg = np.flatnonzero(unneg)
        placed += put(total[at_unneg], "sub", [prev[at_unneg], _negated_g(out, instrs, e_i[at_unneg], adj, neg_edge,
                                                                           negated)])
    return placed


def _negated_g(out: NewInstrs, instrs, consumers, adj, neg_edge, negated) -> np.ndarray:
    """x where each consumer's adjoint G names −x: its own single edge's negation's
    argument, else found through copies (see _negated_by)."""
    own = neg_edge[consumers]
    m = np.where(own >= 0, negated[np.maximum(own, 0)], -1)
    for k in np.flatnonzero(own < 0).tolist():
        m[k] = _negated_by(out, instrs, int(adj[consumers[k]]))
    return m


def _negated_by(out: NewInstrs, instrs, v: int) -> int:
    """x where variable v names −x (through copies), among the primal's `instrs` and
    the new instructions put; raises _Unsupported where it names no negation."""
    return _negation_at(out, instrs, v, True)


def _negation_at(out: NewInstrs, instrs, v: int, argument: bool = False) -> int:
    """The negation that variable v names (through copies), or (`argument`) what it
    negates; raises _Unsupported where v names no negation."""
    n, names = out.n, list(out.ops)
    while True:
        if v < n:
            op, args = instrs[v][0], instrs[v][1]
        else:
            code = int(out.code[v - n])
            if code < 0:   # (a constant, or not put)
                raise _Unsupported
            op, args = names[code], (int(out.args[0, v - n]),)
        if op == "neg":
            return args[0] if argument else v
        if op != "copy":
            raise _Unsupported
        v = args[0]


_BAR, _V = KINDS.index("bar"), KINDS.index("v")


def bar_columns(primal: Labels, label_of: np.ndarray, bar_labels: list, items: dict, moved=None) -> Labels:
    """The new instructions' labels as columns: v̄_k where `label_of` (the primal
    variable whose adjoint a new one is; -1: none) has the common label v_k (k > 0),
    read off the primal's columns (the constant sweep's items' too: their label_of is
    set by ConstantSweep.put); the others (inputs' adjoints: `bar_labels`; `items`
    {position: label}, if any) through as_labels; `moved`: where reverse_bulk_fold
    moved the instructions (a Moved), or None."""
    p_kinds = np.frombuffer(primal.kinds, np.uint8)
    p_index = np.frombuffer(primal.indexes, primal.indexes.typecode)
    has = label_of >= 0
    src = np.where(has, label_of, 0)
    common = has & (p_kinds[src] == _V) & (p_index[src] > 0)
    kinds = np.where(common, _BAR, NONE).astype(np.uint8)
    index = np.where(common, p_index[src], 0).astype(np.int64)
    del src, common
    rest = np.flatnonzero(has & (kinds == NONE))
    of = label_of[rest].tolist()
    # (each variable's asked once, a Label made per ask: most are an input's v̄, which
    # labels every contribution to it; on deep at 10^3 operations 169 asks, 2 inputs)
    made = {v: bar_labels[v] for v in set(of)}
    fix = dict(zip(rest.tolist(), map(made.__getitem__, of)))
    del of, made
    fix.update(items)
    odd = {}
    if fix:
        at = np.fromiter(fix, np.intp, len(fix))
        part = as_labels(list(fix.values()))
        kinds[at] = np.frombuffer(part.kinds, np.uint8)
        index[at] = np.frombuffer(part.indexes, part.indexes.typecode)
        odd = {int(at[i]): lab for i, lab in part.odd.items()}
    if moved is not None:   # (where reverse_bulk_fold moved the instructions: a Moved)
        kinds, index = moved.columns(kinds, NONE), moved.columns(index, 0)
        odd = moved.keyed(odd)
    wide = len(index) and (int(index.max()) >= 1 << 31 or int(index.min()) < -(1 << 31))
    return Labels(kinds.tobytes(), array("q" if wide else "i", index.astype(np.int64 if wide else np.int32).tobytes()),
                  dict(sorted(odd.items())))
