"""The bulk reverse sweep's generic constants: one template for a kind whatever its constants.

Where it sits: passes/reverse_bulk.py (the driver) groups a trace's instructions into
kinds by op and their arguments' patterns (passes/reverse_bulk_templates.py); a
constant argument's pattern was its value, so a formula whose constants are all
distinct (rate constants, fitted coefficients: 0.7316·x1·x2 + 1.2291·exp(−0.051·x3))
had about a kind per instruction, each recorded on a Builder (~60 µs) and laid out
apart: the bulk sweep was ~2-5x slower than the per-instruction sweep there (issue 14).

Here a constant is told apart only by its class where the builder cannot tell its
value from another's (`generic`: finite, of moderate size, not an integer nor a power
of two, so none of the identities' tests on a value fires: x·1, x·(−1), x + (−0.0),
c·(k·y) for a power of two c, the partials' c == 0 and c − 1 == 1), and by its sign.
A kind of such constants is recorded twice, with two unrelated representatives of the
class in place of each constant (generic_template); where both recordings give the
same template once each representative is made a ref to the constant argument itself
(("s", k): the argument, or ("u", k, p): a product's own constant argument), that
template is the kind's, and it reads each instruction's own constant. Where they differ
(a constant the partial computes from the argument) the kind is split by value as
before (the driver). x**c's c − 1, read as pow's exponent alone, is a ref ("d", k) of
the instruction's own c (MinusConstants makes those constants where keying by value
makes them: a kind's at its rank, a masked template's, reverse_bulk_masks.py, in the
order the masks made them). An instruction whose constants coincide with a
template's own constants, or with each other, is split by value too (the builder's
hash-consing would make one variable of them).

The constant sweep (passes/reverse_bulk_consts.py: G a constant, so G·c folds) takes
such a kind's partial per class too (spec_template, _class_template): G's value by
its class where it is generic (two representatives again), G·c folded as a ref
("p", k) of the instruction's own c, and by value where the two recordings differ or
the instruction's constants coincide. It recorded per instruction before: piecewise
power laws of distinct constants, where(x > c, a·x**e, b·exp(d·x)), have a G per
term, and the bulk sweep took 1.7x the per-instruction sweep's time at 30k
operations (0.98x now, the same trace; 1,477 recordings -> 46 at 400 terms).
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC
from . import reverse_bulk_templates as _templates
from .reverse_bulk_order import stable_order
from .reverse_bulk_share import _const_key

# Whether the driver keys generic constants by class (tests and benchmarks turn it off:
# then every constant is keyed by its value, as before)
ENABLED = True

# A generic constant's class: its sign (a partial may take a square root of c·c)
GENERIC_POS, GENERIC_NEG = "generic+", "generic-"
_CLASSES = (GENERIC_POS, GENERIC_NEG)
# Two representatives per argument position, unrelated (different decades and integer
# parts, so no fold on them agrees by chance: floor, comparisons with 1), none an
# integer or a power of two
_REPS = ((0.3183098861837907, 0.7316498204617153, 0.1414213562373095),
         (2718.2818284590453, 37.699111843077517, 5.196152422706632))
# G's representatives, where the constant sweep's G is generic too (reverse_bulk_consts.py)
_G_REPS = (0.5772156649015329, 14.134725141734694)


def generic(value: float) -> bool:
    """Whether the builder treats constant `value` as any other of its class: no
    identity's or partial's test on a value holds for it (0, ±1, powers of two,
    integers: c − 1 == 1), and products of a few such constants stay finite and normal."""
    return (math.isfinite(value) and 1e-30 <= abs(value) <= 1e30 and value != math.floor(value)
            and math.frexp(value)[0] not in (0.5, -0.5))


def class_of(value: float):
    """A generic constant's class key (GENERIC_POS / GENERIC_NEG), or None."""
    if not generic(value):
        return None
    return GENERIC_POS if value > 0 else GENERIC_NEG


def class_entry(entry):
    """A pattern entry (a constant's value, a structured ("mul", p, k), or None) as its
    class, or None where it is not generic (its value decides)."""
    if entry is None:
        return None
    if type(entry) is tuple:
        if entry[0] == "mul":
            c = class_of(entry[2])
            return None if c is None else ("mul", entry[1], c)
        return None
    return class_of(entry)


def classes(const_values: dict, products: dict) -> dict:
    """{variable: its class entry} for the constants `const_values` ({var: value}) and
    the products of a constant `products` ({var: ("mul", p, c)}) whose constant is
    generic (class_entry, in NumPy over the constants: ~1 µs a constant in Python)."""
    if not const_values:
        return {}
    var = np.fromiter(const_values, np.intp, len(const_values))
    value = np.fromiter(const_values.values(), np.float64, len(const_values))
    with np.errstate(invalid="ignore"):
        size = np.abs(value)
        ok = np.isfinite(value) & (size >= 1e-30) & (size <= 1e30) & (value != np.floor(value)) & \
            (np.abs(np.frexp(value)[0]) != 0.5)
    pos = ok & (value > 0)
    neg = ok & (value < 0)
    found = dict.fromkeys(var[pos].tolist(), GENERIC_POS)
    found.update(dict.fromkeys(var[neg].tolist(), GENERIC_NEG))
    if not products:
        return found
    # (a product's constant: its class by value, made once a (position, value))
    of_value = dict(zip(value[pos].tolist(), [GENERIC_POS] * int(pos.sum())))
    of_value.update(zip(value[neg].tolist(), [GENERIC_NEG] * int(neg.sum())))
    made: dict = {}
    for v, entry in products.items():
        cls = of_value.get(entry[2])
        if cls is not None:
            key = (entry[1], cls)
            e = made.get(key)
            if e is None:
                e = made[key] = ("mul", entry[1], cls)
            found[v] = e
    return found


def _is_class(entry) -> bool:
    return entry in _CLASSES if type(entry) is str else type(entry) is tuple and entry[2] in _CLASSES


def generic_template(op, j: int, pattern: tuple, g=None):
    """Partial j of `op` on a pattern with generic classes: (template, its own constants'
    values) where the template is the same for every constant of those classes (its
    refs to them made refs to the arguments), else False; None: a structural zero."""
    key = (id(op), j, None if g is None else g if type(g) is str else repr(float(g)), *map(_entry_key, pattern))
    hit = _GENERIC.get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    got = _generic(op, j, pattern, g)
    if len(_GENERIC) >= 4096:
        _GENERIC.clear()
    _GENERIC[key] = (op, got)
    return got


_GENERIC: dict = {}


def _entry_key(entry):
    """A pattern entry's key: a class as itself, a value by its repr (0.0 and -0.0
    apart, where == and hash do not tell them)."""
    if entry is None or type(entry) is str:
        return entry
    if type(entry) is tuple:
        return entry if entry[2] is None or type(entry[2]) is str else (entry[0], entry[1], repr(float(entry[2])))
    return repr(float(entry))


def _generic(op, j: int, pattern: tuple, g):
    found = []
    for reps, g_rep in zip(_REPS, _G_REPS):
        concrete, where, minus = [], {}, {}
        # (g a class: G's value its representative, told apart from every other constant)
        g_used = g if type(g) is not str else g_rep if g == GENERIC_POS else -g_rep
        for k, e in enumerate(pattern):
            if not _is_class(e):
                concrete.append(e)
                continue
            cls = e if type(e) is str else e[2]
            r = reps[k] if cls == GENERIC_POS else -reps[k]
            if type(e) is str:
                concrete.append(r)
                where[r] = ("s", k + 1)
                minus[r - 1.0] = ("d", k + 1)   # (x**c's exponent c − 1, as the builder folds it)
                if g_used is not g:   # (G·c, as the builder folds it: the constant sweep's)
                    minus[g_used * r] = ("p", k + 1)
            else:
                concrete.append(("mul", e[1], r))
                where[r] = ("u", k + 1, e[1])
        try:
            t = _templates._record(op, j, tuple(concrete), g_used)
        except Exception:   # (_Unsupported and the like: the exact path decides)
            return False
        if t is None:
            found.append(None)
            continue
        fixed = set()

        def sub(r):
            if r[0] == "c":
                if r[1] in where:   # (a representative: never 0, so == is exact)
                    return where[r[1]]
                if r[1] in minus:
                    return minus[r[1]]
                fixed.add(float(r[1]))
            return r
        tinstrs = tuple((op_, tuple(map(sub, refs))) for op_, refs in t[0])
        result = sub(t[1])
        if any(r[0] == "d" and (op_ != "pow" or k != 1) for op_, refs in tinstrs for k, r in enumerate(refs)) \
                or result[0] == "d":
            return False   # (c − 1 read only as pow's exponent, which no identity tests but for 1)
        # (a template with no representative kept as the object recorded: the seed's and
        # the negated seed's are told by identity)
        found.append(((tinstrs, result) if (tinstrs, result) != t else t, fixed))
    a, b = found
    if a is None or b is None:
        return None if a is None and b is None else False
    if repr(a[0]) != repr(b[0]) or a[1] != b[1]:
        return False
    fixed = a[1] | ({float(g)} if g is not None and type(g) is not str else set())
    return a[0], frozenset(fixed)


def spec_template(spec: tuple, g, args):
    """The template of edge spec (op, argument number, pattern[, exact patterns]) for G's
    value g (the constant sweep), on instruction arguments `args`: a generic spec's for
    those arguments' own constants (the class's template where it holds for them, as
    the regular edges': _class_template)."""
    if len(spec) > 3:
        got = _class_template(spec, g, args)
        if got is not _BY_VALUE:
            return got
        exact = spec[3]
        return _templates._template(spec[0], spec[1], tuple(exact.get(a) for a in args), g)
    return _templates._template(spec[0], spec[1], spec[2], g)


_BY_VALUE = object()   # (_class_template: record for the instruction's own values)


def _class_template(spec: tuple, g, args):
    """A generic kind's constant-sweep template for G's value g on arguments `args`,
    recorded once per class: G's value by its class where it is generic (two
    representatives, as the arguments': a partial that folds G with a constant gives
    different constants and is told by value), else by value. _BY_VALUE where the
    template is not the class's or the instruction's constants coincide (with each
    other, their c − 1, G's value or the template's own: the builder would hash-cons
    them). A formula whose constants all differ made one recording per instruction
    here (piecewise power laws: the bulk sweep 1.7x the per-instruction one at 30k)."""
    op, j, pattern, exact = spec
    g_class = class_of(g) if g is not None else None
    got = generic_template(op, j, pattern, g if g_class is None else g_class)
    if got is False:
        return _BY_VALUE
    if got is None:
        return None
    template, fixed = got
    values = []
    for a, e in zip(args, pattern):
        if _is_class(e):
            x = exact.get(a)
            values.append(x[2] if type(x) is tuple else x)
    made = [v - 1.0 for v in values]
    if g_class is not None:
        # (G·c, ref ("p", k), generic too: no identity's test holds for it either)
        products = [g * v for v in values]
        if not all(map(generic, products)):
            return _BY_VALUE
        made += products + [g]
    seen = set(fixed)
    for v in values + made:
        if v in seen:
            return _BY_VALUE
        seen.add(v)
    return template


def generic_edges(op: str, args: tuple, class_of_var: dict, pattern_of: dict, templates: list, specs: list):
    """_edges_of for an instruction with generic constant arguments: (edges, the
    generic entries' (position, entry), the templates' own constants), the templates
    appended; None where a template is not the same for every constant of the classes
    (the kind is then keyed by value). An op without scalar partials: (False, (), ()),
    as _edges_of's False."""
    opdef = _ops.OPS.get(op)
    partials = getattr(getattr(opdef, "vjp", None), "partials", None)
    if opdef is None or opdef.arity == VARIADIC or partials is None or len(partials) != len(args):
        return False, (), frozenset()
    pattern = tuple(class_of_var.get(a, pattern_of.get(a)) for a in args)
    got = []
    fixed: frozenset = frozenset()
    for j in range(len(args) - 1, -1, -1):
        if partials[j] is None:
            continue
        found = generic_template(opdef, j, pattern)
        if found is False:
            return None
        if found is None:
            continue
        got.append((j, found[0]))
        fixed |= found[1]
    edges = []
    for j, template in got:
        templates.append(template)
        specs.append((opdef, j, pattern, pattern_of))
        edges.append((j, len(templates) - 1))
    positions = tuple((k, e) for k, e in enumerate(pattern) if _is_class(e))
    return tuple(edges), positions, fixed


def coinciding(members, positions, fixed, cols, arg_rows, const_values: dict, n: int, minus: bool = False):
    """Which of a generic kind's instructions `members` (an index into them, or None for
    none) have a generic constant equal to one of the templates' own constants or to
    another of its generic constants: the builder would make one variable of them, so
    such an instruction is keyed by value. `minus`: the templates read c − 1 of
    the constants too (ref ("d", k)), compared as well."""
    if not positions:
        return None
    values = []
    for k, e in positions:
        var = cols[k][members]
        if type(e) is tuple:   # (a product's own constant argument)
            var = arg_rows[e[1]][var]
        values.append(np.fromiter(map(const_values.__getitem__, var.tolist()), np.float64, len(var)))
    if minus:
        values += [v - 1.0 for v in values]
    bad = np.zeros(len(members), bool)
    for f in fixed:
        for v in values:
            bad |= v == f
    for a in range(len(values)):
        for b in range(a + 1, len(values)):
            bad |= values[a] == values[b]
    return np.flatnonzero(bad) if bad.any() else None


# -- the kinds: instructions keyed by their arguments' patterns, by class or by value --------

def pattern_codes(keys: dict, n: int) -> tuple:
    """(each variable's pattern code, 0 a plain variable: the keys numbered in the order
    they first come, over n + 1 variables (index -1: no argument); the radix)."""
    code_of = {key: c for c, key in enumerate(dict.fromkeys(keys.values()), 1)}
    pcode = np.zeros(n + 1, np.int64)
    pcode[np.fromiter(keys, np.intp, len(keys))] = np.fromiter(map(code_of.__getitem__, keys.values()), np.int64,
                                                               len(keys))
    return pcode, len(code_of) + 1


def class_codes(pcode, radix: int, class_of_var: dict) -> tuple:
    """pattern_codes' with the variables of `class_of_var` coded by their classes
    instead (new codes from `radix` on); the new radix."""
    code_of = {key: radix + c for c, key in enumerate(dict.fromkeys(class_of_var.values()))}
    pcode = pcode.copy()
    pcode[np.fromiter(class_of_var, np.intp, len(class_of_var))] = np.fromiter(
        map(code_of.__getitem__, class_of_var.values()), np.int64, len(class_of_var))
    return pcode, radix + len(code_of)


def combined_codes(op_kind, sel, cols, pcode, radix: int) -> np.ndarray:
    """Instructions `sel`'s (op, their arguments' pattern codes) as one int64 each, in
    the order of the tuples (renumbered in order where it could overflow)."""
    combined = op_kind[sel].astype(np.int64)
    for k in range(3):
        if int(combined.max()) >= (1 << 62) // radix:
            combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        combined = combined * radix + pcode[cols[k][sel]]
    return combined


def new_constants(templates: list, cval: dict) -> bool:
    """Whether a template holds a constant that the primal does not (`cval`: the primal's
    constants' keys), which the layout makes where first held; or reads c − 1 of an
    instruction's constant (ref ("d", k): most are new)."""
    known = set(cval.values())
    return any(r[0] == "c" and _const_key(r[1]) not in known or r[0] == "d"
               for tinstrs, _ in filter(None, templates) for _, refs in tinstrs for r in refs)


def reads_minus(template) -> bool:
    """Whether a template reads c − 1 of an instruction's constant (ref ("d", k))."""
    return bool(template) and any(r[0] == "d" for _, refs in template[0] for r in refs)


def by_value_order(kind, with_const, exact, n_ops: int, templates, specs, kind_edges) -> tuple:
    """(templates, specs, kind_edges) with the templates in the order that keying every
    constant by its value gives them: by each kind's first kind keyed by value (an op's
    plain kind first, then those of `with_const` by their codes keyed by value,
    `exact`), then edge by edge (the layout's new constants, in the order its templates
    first hold them, are then the same)."""
    first = {}
    if len(with_const):
        order = stable_order(kind[with_const])
        ks = kind[with_const][order]
        heads = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        first = dict(zip(ks[heads].tolist(), zip([1] * len(heads), np.minimum.reduceat(exact[order], heads).tolist())))
    rank = [None] * len(templates)
    last = (2, 0)   # (a kind all of whose instructions were keyed by value after all: no edge)
    for k, edges in kind_edges.items():
        at = (0, k) if k < n_ops else first.get(k, last)
        for p, (_, t) in enumerate(edges):
            rank[t] = (at, p)
    perm = sorted(range(len(templates)), key=rank.__getitem__)
    if perm == list(range(len(templates))):
        return templates, specs, kind_edges, rank
    moved = {t: new for new, t in enumerate(perm)}
    return ([templates[t] for t in perm], [specs[t] for t in perm],
            {k: tuple((j, moved[t]) for j, t in edges) for k, edges in kind_edges.items()}, [rank[t] for t in perm])


class MinusConstants:
    """The constants c − 1 that templates read of their instructions' own constants
    (ref ("d", k): x**c's exponent, one template for every c), made where keying by
    value makes them: keyed by value, each value's template holds its c − 1 as a
    constant, and the layout makes a template's new constants in the templates'
    order (by_value_order's ranks); here a template that reads c − 1 stands for one
    template per kind keyed by value (`exact`: the codes of the instructions
    `with_const`), each at its rank."""

    def __init__(self, ranks: list, with_const, exact, const_values: dict):
        self.ranks, self.with_const, self.exact, self.const_values = ranks, with_const, exact, const_values
        self.dvar = None   # (per primal variable, the variable of its c − 1; -1: none)
        self.born: dict = {}   # (the masked templates: where made, reverse_bulk_masks.mask_edges)
        self.minus_at: dict = {}   # (a masked edge reading c − 1: where keyed by value makes its template)

    def code_of(self, i: int) -> int:
        """Instruction i's kind keyed by value (its code)."""
        return int(self.exact[np.searchsorted(self.with_const, i)])

    def masked(self, mk) -> None:
        """The masked templates' order (a MaskedEdges): after the kinds', as made."""
        self.born, self.minus_at = mk.born, mk.minus_at

    def merged(self, merged: np.ndarray) -> None:
        """The ranks of the layout's merged templates (each its first's)."""
        first: dict = {}
        for t, m in enumerate(merged.tolist()):
            first.setdefault(m, t)
        ranks, born = self.ranks, self.born   # (a masked template, made after the ranks: after them all)
        self.ranks = [ranks[t] if t < len(ranks) else ((3, born.get(t, t)), 0)
                      for t in (first[m] for m in range(len(first)))]

    def make(self, templates, used, e_t, e_i, reg, arg_cols, const, const_var) -> None:
        """Call const(value) for the constants of the templates `used` (those with
        regular edges `reg`) in the order keyed by value makes them; then `dvar`."""
        events = []
        dvars = []
        for t in used:
            tinstrs = templates[t][0]
            if not reads_minus(templates[t]):
                events.append((self.ranks[t], t, -1))
                continue
            ks = reg[e_t[reg] == t]
            ii = e_i[ks]
            rank = self.ranks[t]
            if rank[0][0] == 3:   # (a masked template: one per kind keyed by value, made in exits' order)
                code = np.fromiter(map(self.minus_at.__getitem__, ks.tolist()), np.int64, len(ks))
                _, at = np.unique(code, return_index=True)
                events += [(((3, int(code[k])), 0), t, int(ii[k])) for k in at.tolist()]
            else:
                code = self.exact[np.searchsorted(self.with_const, ii)]
                _, at = np.unique(code, return_index=True)
                events += [(((1, int(code[k])), rank[1]), t, int(ii[k])) for k in at.tolist()]
            for k in {r[1] for _, refs in tinstrs for r in refs if r[0] == "d"}:
                dvars.append(np.unique(arg_cols[k - 1][ii]))
        events.sort(key=lambda e: e[0])
        values = self.const_values
        for _, t, i in events:
            for _, refs in templates[t][0]:
                for r in refs:
                    if r[0] == "c":
                        const(r[1])
                    elif r[0] == "d":
                        const(values[int(arg_cols[r[1] - 1][i])] - 1.0)
        if dvars:
            self.dvar = dvar = np.full(len(arg_cols[0]) + 1, -1, np.int32)
            for v in np.unique(np.concatenate(dvars)).tolist():
                dvar[v] = const_var[_const_key(values[v] - 1.0)]
