"""The bulk reverse sweep's where() masks: the edges that leave a where's branch.

Where it sits: passes/reverse_bulk.py (the driver) asks reverse_masks.where_exits
once for a trace with a where() and, where it names edges, this module gives each
such edge a template of its own: the partial's template (or, for a where's branch,
the seed G: reverse_masks.masked_edges takes it as it is) followed by the wheres
that reverse_masks._mask builds on it, their conditions slots ("m", k) read from a
column per edge (`MaskedEdges.cols`, resolved by passes/reverse_bulk_write.py). The
wheres are made as the builder makes them (a where has no identity; within one
contribution alike wheres are one), so the trace is the per-instruction sweep's.

The constant sweep (passes/reverse_bulk_consts.py) records a masked edge's partial
for G's value (MaskedEdges.constant_template: −G of a constant is folded) and makes
its wheres as the builder does: folded on constants alone (a condition 2 > 0), found
where made before (by sources, through copies) or in the primal. On the regular
edges, what the builder might find already built is declined (the driver returns
None and grad_reverse sweeps per instruction): a mask on a contribution that
hash-consing found, or that is a constant or an argument (check_layout); on a G
that names a primal variable whose where or negation the primal has; two masked
where(c, G, 0) of one G's source (through copies, or the primal variable named);
a −G where G is a negation (−(−m) is m) or whose key another negation of G has
(fresh_negations). A union of more than reverse_masks._NESTED regions is masked by
a flag "any holds" (reverse_masks._any_flag) that the builder makes once: here the
masked template reads the flag as a condition column ("flag", k in the mask's
shape: one template whatever the union), and Flags makes its instructions as the
builder does, each once, in the block of the first edge (sweep order) that reads it,
just before that edge's where on it (the layout shifts the template's later
instructions: reverse_bulk_write's `shifts`); declined: a flag on a constant
sweep's edge, a condition that is a constant or whose ne/eq with 0 the primal has,
a primal with copies. Measured against the
per-instruction sweep on random where formulas (tests/test_where_bulk.py): the same
values bit for bit; the same printed trace on ~98% of them, the rest the bulk
sweep's known differences (a constant sweep's sum with a regular edge's, x·G made
twice: reverse_bulk.py), one or two instructions more.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Optional

import numpy as np

from .reverse_bulk_negations import _classes
from .reverse_bulk_share import _MAX_BLOCK
from .reverse_bulk_generic import reads_minus, spec_template
from .reverse_bulk_templates import _NEG_TEMPLATE, _SEED_TEMPLATE, _Unsupported
from .reverse_masks import _NESTED

_ZERO = ("c", 0.0)
_FIRST = itemgetter(0)


class MaskedEdges:
    """Per edge (in sweep order): `cols` (K, E) the condition variables of its mask
    (-1: none), `masked` whether it has one, `seedlike` whether the masked
    contribution is G's (a where's branch, add's, sub's x), `base_r` the partial's
    result in its template (-1: G), `negates` whether its partial negates G;
    `recipes` {masked template: (its partial's spec, or None for G; the mask's shape)}
    for the constant sweep, which records a partial for G's value."""

    __slots__ = ("cols", "masked", "seedlike", "base_r", "negates", "recipes", "g_named", "flags", "slots", "born",
                 "minus_at")

    def __init__(self, E: int):
        self.cols = np.full((0, E), -1, np.int32)
        self.masked = np.zeros(E, bool)
        self.seedlike = np.zeros(E, bool)
        self.base_r = np.full(E, -1, np.int8)
        self.negates = np.zeros(E, bool)
        self.recipes: dict = {}
        self.g_named = None   # (per edge, the primal variable its G names, -1: none: check_layout)
        self.flags: list = []   # [(edge, [(its flag's column, the union's conjunctions), ...])], in sweep order
        self.slots: dict = {}   # {masked template with a union's flag: the wheres on its flags}
        self.born: dict = {}   # {masked template: where in the order of exits it was made}
        self.minus_at: dict = {}   # {edge whose partial reads c − 1: where keying by value makes its template}

    def constant_template(self, specs: list):
        """The constant sweep's recording of template t for G's value c (see
        reverse_bulk_layout): a masked one's partial recorded so, then masked."""
        recipes = self.recipes

        def recorded(t: int, c, args):   # (args: the instruction's, for a generic kind's spec)
            recipe = recipes.get(t)
            if recipe is None:
                return spec_template(specs[t], c, args)
            spec, shape = recipe
            if _union(shape):
                # (a union's flag on a constant adjoint: the constant sweep's items are not
                # hash-consed with the regular edges' flags; declined)
                raise _Unsupported("union")
            base = _SEED_TEMPLATE if spec is None else spec_template(spec, c, args)
            if base is _NEG_TEMPLATE:   # (−G of a constant G: folded, as the constant sweep folds it)
                base = ((), ("c", -c))
            return _masked(base, shape)
        return recorded


def mask_edges(exits: dict, e_i: np.ndarray, e_j: np.ndarray, e_t: np.ndarray, templates: list,
               specs: list, is_const=None, value_key=None) -> Optional[MaskedEdges]:
    """Give the edges that `exits` (where_exits' answer) names their masked templates
    (appended to `templates` and `specs`; `e_t` changed in place). None: declined
    (`is_const`: per variable, whether it is a constant; `value_key`: an instruction's
    kind keyed by value, where a template reads c − 1 of its constant: MinusConstants)."""
    E = len(e_i)
    mk = MaskedEdges(E)
    # (edges in sweep order: consumers descending, arguments descending; as keys, ascending reversed)
    key = (e_i.astype(np.int64) * 3 + e_j)[::-1]
    wanted = [(i, j, top, conds) for i, by_j in exits.items() for j, (top, conds) in by_j.items() if top or conds]
    if not wanted or not E:
        return mk
    want = np.array([i * 3 + j for i, j, _, _ in wanted], np.int64)
    at = np.minimum(np.searchsorted(key, want), E - 1)
    found = key[at] == want
    pos = (E - 1 - at).tolist()
    made: dict = {}   # (base template id or -1 for G, the mask's shape) -> template id
    literals: dict = {}   # a union -> its condition variables
    rows: list = []   # (edge, its condition variables)
    masked, seedlike, base_r, negates = mk.masked, mk.seedlike, mk.base_r, mk.negates
    seed_t = -1
    first_at: dict = {}   # (an instruction's kind keyed by value, j, shape) -> where first met
    for w, ((i, j, top, conds), hit, k) in enumerate(zip(wanted, found.tolist(), pos)):
        if not hit:
            continue   # (an edge the bulk sweep has not: from a variable no adjoint reaches)
        if not conds:   # (a where's branch inside its region: G as it is, a copy)
            if seed_t < 0:
                # (the seed template of add's or sub's edges, where there is one: the
                # layout tells a copy of G by its template, merged per arity)
                seed_t = next((t for t, tp in enumerate(templates) if tp is _SEED_TEMPLATE), -1)
                if seed_t < 0:
                    seed_t = len(templates)
                    templates.append(_SEED_TEMPLATE)
                    specs.append((None, 0, (None, None)))   # (a binary op's: read for its arity alone)
                    mk.born[seed_t] = w
            e_t[k] = seed_t
            continue
        base = -1 if top else int(e_t[k])
        if base >= 0 and templates[base] is _SEED_TEMPLATE:
            base = -1
        numbered: dict = {}
        shape = []
        unions = []   # (a union's flag: its column, its conjunctions of variables)
        for anyof in conds:
            if len(anyof) > _NESTED:
                vs = literals.get(anyof)
                if vs is None:
                    vs = literals[anyof] = list(dict.fromkeys(v for each in anyof for v, _ in each))
                    if is_const is not None and is_const[vs].any():
                        return None   # (a flag of a constant condition: the builder folds it)
                f = numbered.setdefault(("flag", len(unions)), len(numbered))
                unions.append((f, anyof))
                shape.append(("flag", f))
            else:
                shape.append(tuple(tuple((numbered.setdefault(v, len(numbered)), side) for v, side in each)
                                   for each in anyof))
        shape = tuple(shape)
        t = made.get((base, shape))
        if t is None:
            template = _masked(_SEED_TEMPLATE if base < 0 else templates[base], shape)
            if len(template[0]) > _MAX_BLOCK:
                return None
            t = made[base, shape] = len(templates)
            mk.born[t] = w
            if unions:   # (the wheres on its flags, in the order made)
                mk.slots[t] = [w for w, (op, refs) in enumerate(template[0])
                               if op == "where" and refs[0][0] == "m" and refs[0][1] in {f for f, _ in unions}]
            templates.append(template)
            specs.append(specs[int(e_t[k])] if base < 0 else specs[base])
            mk.recipes[t] = (None if base < 0 else specs[base], shape)
        if value_key is not None and base >= 0 and reads_minus(templates[base]):
            # (keyed by value, its own masked template: made where its kind's first is)
            mk.minus_at[k] = first_at.setdefault((value_key(i), j, shape), w)
        e_t[k] = t
        masked[k] = True
        if unions:
            mk.flags.append((k, unions))
            for f, anyof in unions:   # (the conditions of its flags, after the template's columns:
                # check_layout tells two masks apart by them)
                for v in literals[anyof]:
                    numbered.setdefault(v, len(numbered))
        rows.append((k, list(numbered)))
        if base < 0:
            seedlike[k] = True
        else:
            tinstrs, result = templates[base]
            base_r[k] = result[1] if result[0] == "t" else -2
            negates[k] = any(op == "neg" and refs == (("s", 0),) for op, refs in tinstrs)
    mk.flags.sort(key=_FIRST)
    width = max((len(vs) for _, vs in rows), default=0)
    mk.cols = np.full((width, E), -1, np.int32)
    for k, vs in rows:
        mk.cols[:len(vs), k] = [-1 if type(v) is tuple else v for v in vs]   # (a flag's: the layout's)
    return mk


def _masked(base: tuple, shape: tuple) -> tuple:
    """The template `base` with reverse_masks._mask's wheres on its result (a
    condition k is ref ("m", k)); a union of more than _NESTED conjunctions, its flag
    "any holds" (reverse_masks._any_flag: ne/eq of each condition with 0, their
    products, the maxima) and one where on it. The flag reads conditions and
    constants alone: the layout's hash-consing (reverse_bulk_share._hash_cons) makes
    it once, at the first edge in sweep order that holds it, as the builder does."""
    tinstrs, result = base
    instrs = list(tinstrs)
    seen: dict = {}   # (the builder hash-conses alike wheres within the contribution)

    def made(op, *refs):
        r = seen.get(refs)
        if r is None:
            r = seen[refs] = ("t", len(instrs))
            instrs.append((op, refs))
        return r
    c = result
    for anyof in shape:   # (as reverse_masks._mask: innermost first)
        if anyof[0] == "flag":   # (a union's flag, made by the layout: place_flags)
            c = made("where", ("m", anyof[1]), c, _ZERO)
            continue
        masked = _ZERO
        for each in reversed(anyof):
            t = c
            for m, side in each:
                t = made("where", ("m", m), t, masked) if side else made("where", ("m", m), masked, t)
            masked = t
        c = masked
    return tuple(instrs), c


def _union(shape: tuple) -> bool:
    """Whether a mask's shape holds a union masked by a flag (more than _NESTED conjunctions)."""
    return any(anyof[0] == "flag" for anyof in shape)


def check_layout(mk: MaskedEdges, py, groups, shared, templates, e_i, e_t, up, g_src, primal, instrs) -> bool:
    """Whether the layout makes the masked edges as the builder does (see the module's
    docstring), those not the constant sweep's (`py`: it records them for G's value,
    and finds what the primal has): no partial's result under a mask was found built
    (nor is it a constant or an argument); where a masked G that it reads as it is or
    negates names a primal variable (`g_src`), the primal (`primal`, a _PrimalTable)
    has none of its wheres or that negation; no two masked G of one source (through
    copies: `up`, or the primal variable they name) have one mask. (A masked −G:
    fresh_negations.)"""
    regular = mk.masked & ~py
    if not regular.any():
        return True
    if (regular & (mk.base_r == -2)).any():
        return False
    for t, idx in groups:
        if t in shared and len(idx) and regular[idx].any():
            r = int(mk.base_r[idx[0]])
            if r >= 0 and not shared[t][0][regular[idx], r].all():
                return False
    named = g_src[e_i]
    mk.g_named = named   # (for fresh_negations: after the layout's g_src is dropped)
    for k in np.flatnonzero(regular & (mk.seedlike | mk.negates) & (named >= 0)).tolist():
        if primal is None or _found(templates[e_t[k]], int(named[k]), mk.cols[:, k].tolist(), primal, instrs):
            return False
    seeds = np.flatnonzero(mk.seedlike & regular)
    if not len(seeds):
        return True
    source = np.where(named[seeds] >= 0, named[seeds], len(g_src) + up[e_i[seeds]])
    rows = np.vstack((source, e_t[seeds], mk.cols[:, seeds])).T
    return len({tuple(r) for r in rows.tolist()}) == len(rows)


def _found(template: tuple, g: int, conds: list, primal, instrs) -> bool:
    """Whether a masked template whose G names primal variable g may find what the
    primal has: its −G (or G is a negation: −(−m) is m), or one of its wheres."""
    at: dict = {}
    for k, (op, refs) in enumerate(template[0]):
        if op == "neg" and refs == (("s", 0),):
            if instrs[g][0] == "neg" or primal("neg", [g]) is not None:
                return True
            continue
        if op != "where":
            continue
        vs = []
        for r in refs:
            v = g if r == ("s", 0) else primal.const(r[1]) if r[0] == "c" else conds[r[1]] if r[0] == "m" \
                else at.get(r[1]) if r[0] == "t" else None
            if v is None:
                break
            vs.append(v)
        else:
            if primal.where(tuple(vs)) is not None:
                return True
    return False


def fresh_negations(mk: MaskedEdges, n, templates, e_i, e_a, e_t, py, first, next_edge, fresh, neg_last, seed_t, cs,
                    up, neg_t) -> bool:
    """Whether each regular masked edge whose partial negates G builds that negation
    (the builder's −(−m) is m, and it keys −G by G's source: a second −G of one
    source, or one of a negation made elsewhere, is found). Asked of the layout's
    negation classes (reverse_bulk_negations._classes) with those edges counted as
    negated seeds: G not a negation, and a key of its own among all the negated seeds."""
    mine = mk.negates & mk.masked & ~py
    if not mine.any():
        return True
    # (the masked templates that negate G: a mask over the (merged) templates)
    negating = np.zeros(len(templates), bool)
    negating[e_t[mine]] = True
    negating |= neg_t
    seeds = np.flatnonzero(~py & (e_t == seed_t) & (~first | (next_edge >= 0)))
    _, dneg, key = _classes(n, templates, e_i, e_t, e_a, first & (next_edge < 0) & ~py, fresh, neg_last, cs, up,
                            negating, py, e_i[seeds])
    at = np.flatnonzero(mine)
    if dneg[at].any() or (key[at] < 0).any():
        return False
    others = np.flatnonzero(negating[e_t] & ~py & ~mine)
    # (a G that names a primal variable: keyed by it, apart from the variables' keys)
    named = mk.g_named
    keys = np.where(named[at] >= 0, n + named[at], key[at])
    other_keys = np.where(named[others] >= 0, n + named[others], key[others])
    return len(np.unique(keys)) == len(keys) and not np.isin(keys, other_keys).any()


class Flags:
    """The unions' flags of the regular masked edges (reverse_masks._any_flag: ne/eq
    of each condition with 0, their products, the maxima), made as the builder makes
    them: an instruction once, at the first edge in sweep order that needs it (its
    hash-consing), within that edge's block just before the where on the flag; the
    others read it. `made` [(edge, its slot, op, a, b)] (a, b: a primal variable, or
    -1 - j for the j-th made), `extra` per edge how many it makes, `flag_of` [(edge,
    its flag's column, the flag: as a, b)]."""

    __slots__ = ("made", "extra", "flag_of")

    def __init__(self, mk: MaskedEdges, E: int, zero: int):
        made = self.made = []
        self.extra = np.zeros(E, np.int32)
        self.flag_of = []   # (edge, its flag's column, the flag: as a, b)
        memo: dict = {}

        def make(k, slot, op, a, b):
            key = (op, min(a, b), max(a, b)) if op == "mul" else (op, a, b)   # (mul's key: in order)
            r = memo.get(key)
            if r is None:
                r = memo[key] = -1 - len(made)
                made.append((k, slot, op, a, b))
            return r
        done: dict = {}   # (a union met before: its flag, nothing made)
        for k, unions in mk.flags:
            for slot, (f, anyof) in enumerate(unions):
                flag = done.get(anyof)
                if flag is not None:
                    self.flag_of.append((k, f, flag))
                    continue
                flags = []
                for each in anyof:
                    g = None
                    for v, side in each:
                        lit = make(k, slot, "ne" if side else "eq", v, zero)
                        g = lit if g is None else make(k, slot, "mul", g, lit)
                    flags.append(g)
                flag = flags[0]
                for g in flags[1:]:
                    flag = make(k, slot, "maximum", flag, g)
                done[anyof] = flag
                self.flag_of.append((k, f, flag))
        if made:
            self.extra = np.bincount([m[0] for m in made], minlength=E).astype(np.int32)

    def covered(self, py: np.ndarray, primal, templates) -> bool:
        """Whether the layout makes them as the builder does: no flag on a constant
        sweep's edge (its items are not hash-consed with the regular edges'), no
        condition's ne/eq with 0 that the primal has (a _PrimalTable; None: a primal
        with copies, whose keys go through them) or that a partial may make (a
        template's ne/eq with 0: c**x's)."""
        if not self.made:
            return True
        if primal is None or py[[k for k, _, _ in self.flag_of]].any():
            return False
        if any(op in ("ne", "eq") and _ZERO in refs for tp in templates if tp for op, refs in tp[0]):
            return False
        return not any(primal(op, [a, b]) is not None for _, _, op, a, b in self.made if op in ("ne", "eq"))

    def place(self, out, mk: MaskedEdges, templates, groups, shared, e_t, start) -> tuple:
        """Put the flags' instructions (`out`, a NewInstrs) once the blocks' `start`s
        are known, and write each flag into its edges' column; returns (how many were
        put, {template: [(its where on a flag, per edge of the group the instructions
        made before it)]}: _write_regular's shifts)."""
        E = len(e_t)
        slots_of: dict = {}   # edge -> per slot, how many it makes
        for k, slot, _, _, _ in self.made:
            counts = slots_of.setdefault(k, {})
            counts[slot] = counts.get(slot, 0) + 1
        row = np.full(E, -1, np.int64)   # (an edge's row in its template's group)
        for t, idx in groups:
            if t in mk.slots:
                row[idx] = np.arange(len(idx))
        shifts: dict = {}
        at_of: dict = {}   # (edge, slot) -> where its first made instruction goes
        for k, counts in slots_of.items():
            t = int(e_t[k])
            before = 0
            for slot, w in enumerate(mk.slots[t]):
                kept = int(shared[t][2][row[k], w]) if t in shared else w   # (the block's instructions before it)
                at_of[k, slot] = int(start[k]) + kept + before
                before += counts.get(slot, 0)
        for t, idx in groups:
            if t not in mk.slots or not len(idx):
                continue
            shift = []
            for slot in range(len(mk.slots[t])):
                extra = np.fromiter((slots_of.get(k, {}).get(slot, 0) for k in idx.tolist()), np.int32, len(idx))
                if extra.any():
                    shift.append((mk.slots[t][slot], extra))
            if shift:
                shifts[t] = shift
        var = []
        seen: dict = {}
        for k, slot, _, _, _ in self.made:
            q = seen.get((k, slot), 0)
            seen[k, slot] = q + 1
            var.append(at_of[k, slot] + q)

        def resolved(a: int) -> int:
            return a if a >= 0 else var[-1 - a]
        placed = 0
        by_op: dict = {}
        for (_, _, op, a, b), v in zip(self.made, var):
            by_op.setdefault(op, []).append((v, resolved(a), resolved(b)))
        for op, rows in by_op.items():
            pos, a, b = (np.array(c, np.int32) for c in zip(*rows))
            placed += out.put(pos, op, [a, b])
        for k, f, flag in self.flag_of:
            mk.cols[f, k] = resolved(flag)
        return placed, shifts
