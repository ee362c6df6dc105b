"""The bulk reverse sweep's templates: each op kind's partial recorded once.

Where it sits: passes/reverse_bulk.py (the driver) groups a trace's instructions
into kinds, an op and its arguments' patterns, and asks here for each kind's edges
(_edges_of): partial j recorded on a Builder over placeholders (_record), the
seed G, the arguments and the result, as a few instructions over slot refs (a
template); passes/reverse_bulk_layout.py and passes/reverse_bulk_write.py then
make a template's instructions for every edge of its kind at once. Recorded on a real Builder so its folds and identities
apply as in grad_reverse's sweep: a constant argument is that constant, and an
argument whose shape the identities look into (c·(k·v), a negation) is a
placeholder of that shape (_argument_patterns, _placeholder). The constant sweep
(passes/reverse_bulk_consts.py) records with G a named constant (`g`). Templates
are cached across calls, keyed by the op's definition and the patterns' keys (not
across processes: read back from the code store, a template took as long as its
recording, ~18 µs; session 38).
"""

from __future__ import annotations

import numpy as np

from .. import ops as _ops
from ..op_def import VARIADIC, negated_seed, seed
from ..trace.ir import Builder, Label
from ..trace.labels import Labels
from .reverse_bulk_share import _const_key, kept_for

# A template: (instructions, result). An instruction is (op name, refs); a ref is
# ("s", k): slot k (0 the seed G, 1..m the arguments, m + 1 the result), ("c", value):
# a constant, ("t", k): the template's instruction k. result is a ref, or the whole
# template None (a structural zero: no contribution).
_SEED_TEMPLATE = ((), ("s", 0))
_NEG_TEMPLATE = ((("neg", (("s", 0),)),), ("t", 0))


class _Unsupported(Exception):
    """A partial built something the bulk sweep does not lay out."""


def _template(op, j: int, pattern: tuple, g=None):
    """_record's template, kept across calls (a Builder and a partial's calls for each
    op kind: at 10² operations a fifth of the sweep). Keyed by the op's definition
    itself, so a table entry replaced (by a test) records its own."""
    key = (id(op), j, _const_key_or_none(g), *map(_pattern_key, pattern))
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is op:
        return hit[1]
    template = _record(op, j, pattern, g)
    if len(_TEMPLATES) >= 4096:   # (many constant exponents: the cache stays small)
        _TEMPLATES.clear()
    _TEMPLATES[key] = (op, template)
    return template


_TEMPLATES: dict = {}


def _text_of(template) -> str:
    """repr(template), kept for the templates in use (a few hundred, met on every call):
    a key that tells 0.0 from -0.0, where tuples' equality does not."""
    return kept_for(_TEXTS, template, repr)


_TEXTS: dict = {}


def _const_key_or_none(value):
    return None if value is None else _const_key(value)


def _pattern_key(entry):
    """A pattern entry's key: a constant's, or a structured entry with its constant's."""
    if type(entry) is tuple:
        return (entry[0], entry[1], _const_key_or_none(entry[2]))
    return _const_key_or_none(entry)


def _record(op, j: int, pattern: tuple, g_value=None):
    """Partial j of `op` on placeholders, arguments that are constants in `pattern`
    (their values) given as those constants: a template (see above). With `g_value`,
    the seed G is a named copy of that constant (an adjoint of the seed's cascade),
    so the builder's folds and identities on it apply."""
    partial = op.vjp.partials[j]
    if partial is seed:
        return _SEED_TEMPLATE
    if partial is negated_seed:
        return _NEG_TEMPLATE
    b = Builder(pull_negations=True)
    g = b.input("g") if g_value is None else b.name(b.const(g_value), "g")
    inner: dict = {}   # a structured argument's own argument -> its ref
    args = [_placeholder(b, k, v, inner) for k, v in enumerate(pattern)]
    out = b.input("out")
    slots = {g: ("s", 0), out: ("s", len(args) + 1)}
    for k, a in enumerate(args):
        slots.setdefault(a, ("s", k + 1))
    for v, r in inner.items():
        slots.setdefault(v, r)
    first = len(b.instrs)
    c = partial(b, g, *args, out)
    if c is None:
        return None
    refs: dict = {}
    instrs = []

    def ref(v):
        if v in slots:
            return slots[v]
        if v in refs:
            return refs[v]
        ins = b.instrs[v]
        if ins.op == "const":
            return ("c", ins.value)
        if v < first or ins.op in ("input", "copy") or ins.attrs or ins.shape:
            raise _Unsupported(ins.op)
        arg_refs = tuple(map(ref, ins.args))   # (arguments first: topological)
        r = refs[v] = ("t", len(instrs))
        instrs.append((ins.op, arg_refs))
        return r
    # (a recursion as deep as the partial's expression: a few levels)
    result = ref(c)
    # ref() appends an instruction after its arguments, so the list is in a valid
    # order; it is also the builder's order, since each partial builds its result last
    return tuple(instrs), result


def _placeholder(b, k: int, entry, inner: dict) -> int:
    """Argument k of a recording: an input, a constant (a float entry), or what the
    builder's identities look into (a structured entry, the primal argument's shape):
    ("mul", p, c), a product whose argument p is the constant c (c·(k·v) folds to
    (c·k)·v); ("neg", labelled), a negation (−(−v) is v; an unlabelled one is pulled
    out of products). Its own argument is an input, ref ("u", k + 1, its position)."""
    if entry is None:
        return b.input(f"x{k}")
    if type(entry) is not tuple:
        return b.const(entry)
    y = b.input(f"y{k}")
    first = len(b.instrs)
    if entry[0] == "mul":
        c = b.const(entry[2])
        var = b.mul(c, y) if entry[1] == 0 else b.mul(y, c)
        inner[y] = ("u", k + 1, 1 - entry[1])
    else:
        var = b.neg(y)
        inner[y] = ("u", k + 1, 0)
        if entry[1] and var >= first:
            b.labels[var] = _PLACEHOLDER_LABEL
    if var < first or b.instrs[var].op != entry[0]:
        raise _Unsupported(entry[0])   # (the builder did not build it as the primal has it)
    return var


_PLACEHOLDER_LABEL = Label("v", 1, None, None)


def _argument_patterns(instrs, labels, kind, op_id, cols, is_const, const_values) -> tuple:
    """The primal variables whose shape the builder's identities look into, as an
    argument: products of a constant and a variable, and negations (labelled or
    not); ({var: pattern entry (see _placeholder)}, {var: its key})."""
    found: dict = {}
    keys: dict = {}
    if "neg" in op_id:
        negs = np.flatnonzero(kind == op_id["neg"])
        found.update(dict.fromkeys(negs.tolist(), _NEG_LABELLED))
        # (labels as columns: the unlabelled read off them, no Label made for each negation)
        bare = negs[~labels.named()[negs]].tolist() if isinstance(labels, Labels) else \
            [v for v in negs.tolist() if labels[v] is None]
        found.update(dict.fromkeys(bare, _NEG_UNLABELLED))
        keys.update(found)   # (a negation's entry is its key)
    if "mul" in op_id:
        c1 = is_const[cols[1]]
        scaled = np.flatnonzero((kind == op_id["mul"]) & (is_const[cols[0]] != c1))
        made: dict = {}   # (p, the constant's variable) -> (entry, key), or None: made once for all its products
        for v, p, c in zip(scaled.tolist(), c1[scaled].astype(np.int8).tolist(),
                           np.where(c1[scaled], cols[1][scaled], cols[0][scaled]).tolist()):
            hit = made.get((p, c), False)
            if hit is False:
                k = const_values[c]
                # (a builder makes no product of 1 or -1: not one to look into)
                entry = ("mul", p, k)
                hit = made[p, c] = None if k == 1.0 or k == -1.0 else (entry, _pattern_key(entry))
            if hit is not None:
                found[v], keys[v] = hit
    return found, keys


_NEG_LABELLED, _NEG_UNLABELLED = ("neg", True, None), ("neg", False, None)


def _edges_of(op: str, args: tuple, pattern_of: dict, templates: list, specs: list):
    """((argument number, template id), ...) of an instruction `op(args)`, last
    argument first, without structural zeros; False if the op has no scalar partials."""
    opdef = _ops.OPS.get(op)
    pattern = tuple(pattern_of.get(a) for a in args)
    plain = all(p is None for p in pattern)   # (no constant or structured argument: its edges kept by op)
    if plain:
        hit = _PLAIN.get((op, len(args)))
        if hit is not None and hit[0] is opdef:
            base = len(templates)
            for template, spec in hit[2]:
                templates.append(template)
                specs.append(spec)
            return tuple((j, base + k) for k, j in enumerate(hit[1]))
    partials = getattr(getattr(opdef, "vjp", None), "partials", None)
    if opdef is None or opdef.arity == VARIADIC or partials is None or len(partials) != len(args):
        return False
    edges = []
    for j in range(len(args) - 1, -1, -1):
        if partials[j] is None:
            continue
        template = _template(opdef, j, pattern)
        if template is None:
            continue
        templates.append(template)
        specs.append((opdef, j, pattern))
        edges.append((j, len(templates) - 1))
    if plain:
        if len(_PLAIN) >= 4096:
            _PLAIN.clear()
        _PLAIN[op, len(args)] = (opdef, [j for j, _ in edges], [(templates[t], specs[t]) for _, t in edges])
    return tuple(edges)


_PLAIN: dict = {}   # (op, arity) -> (its definition, argument numbers, (template, spec) each): _edges_of
