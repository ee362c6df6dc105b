"""The NumPy backend's rows of the three-term stable forms: where a trace holds hypot3(x, y,
z) or logaddexp3(a, b, c) and the partials the op table builds for it, one call of
runtime.hypot3_rows or runtime.logaddexp3_rows gives the value (row 0) and the partials
(rows 1-3), at the naive form's cost where that is accurate, instead of the partials'
own passes (hypot3's sum of squares, comparison, scalings and products; logaddexp3's
maximum, selections and exps, some twenty passes).

Where it sits: numpy_shares.shared_exps adds these entries to its own (the same form,
(k, None, call, "args", row): numpy_render spells the call `p1 = hypot3_rows(x, y, z)`
before its first row and each row `p1[row]`; dead_rows then drops the lines only the
partials read). The partials are found by their own rules: the op table's partials
(ops_special), at a seed of 1, built once on three placeholder arguments (_pattern),
then looked up instruction by instruction in the trace with the op's arguments in
the placeholders' places, as the builder's hash-consing would find them. So a change
of those rules changes what is looked for (the rows helpers must keep their bits:
tests/test_nary_stable.py), and a trace whose partials came out otherwise (an
identity the builder applied to a negated argument) keeps its own lines.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from ..ops import OPS
from ..trace.builder_ops import _COMMUTATIVE
from ..trace.ir import Builder
from .c_forms import hypot3_quotients

# the rows helpers generated code may call (names no variable may take)
NARY_HELPERS = ("hypot3_rows", "logaddexp3_rows")
_ROWS = {"hypot3": "hypot3_rows", "logaddexp3": "logaddexp3_rows"}
NARY_OPS = frozenset(_ROWS)


@functools.lru_cache(maxsize=None)
def _pattern(opname: str, divided: bool = False) -> tuple:
    """The partials of `opname` at a seed of 1 as its op-table rules build them, on
    three placeholder arguments, in a derivative pass's builder: (instructions, the
    op's position, the partials' positions, the positions of operations on the
    arguments and constants alone). The instructions are (op, arguments, attributes),
    arguments by position in the list; the first three are the placeholders.
    `divided`: as c_forms.hypot_quotients leaves them (hypot3's partials as over_norm
    and a where: the trace the NumPy backend renders)."""
    b = Builder(pull_negations=True)
    xs = [b.input(f"x{j}") for j in range(3)]
    out = b.apply(opname, *xs)
    one = b.const(1.0)   # (mul(1, p) is p: the partial itself)
    partials = tuple(OPS[opname].partials[j](b, one, *xs, out) for j in range(3))
    made = list(b.instrs)
    if divided:
        hypot3_quotients(made)
    instrs = tuple((ins[0], ins[1], ins[2]) for ins in made)
    leaves = {j for j, ins in enumerate(instrs) if ins[0] in ("input", "const")}
    direct = frozenset(j for j, ins in enumerate(instrs) if j not in leaves and j != out and set(ins[1]) <= leaves)
    return instrs, out, partials, direct


class _Index:
    """(op, arguments) -> the instructions, and constant value -> its instructions, the
    arguments through copies and add's and mul's in order (the builder's keys). A key
    may have several: the trace NumPy renders is not hash-consed again after its
    rewrites (a user's x**2 becomes an x·x beside the partials' own)."""

    def __init__(self, instrs):
        self.by_key: dict = {}
        self.consts: dict = {}
        self.sources: dict = {}
        self.values: dict = {}   # scalar constant -> its value
        self.seen: set = set()
        for i, ins in enumerate(instrs):
            op = ins.op
            if op == "copy":
                self.sources[i] = self.sources.get(ins.args[0], ins.args[0])
            elif op == "const":
                if ins.shape == ():
                    self.consts.setdefault(float(ins.value).hex(), []).append(i)
                    self.values[i] = float(ins.value)
            elif op != "input" and not ins.attrs:
                self.by_key.setdefault(self._key(op, ins.args), []).append(i)
        self.guards = any(key[0] == "hypot3_guard" for key in self.by_key)

    def _key(self, op: str, args) -> tuple:
        args = tuple(self.sources.get(a, a) for a in args)
        if op in _COMMUTATIVE and args[1] < args[0]:
            args = (args[1], args[0])
        return op, args

    def const(self, value: float) -> tuple:
        return tuple(self.consts.get(float(value).hex(), ()))

    def find(self, op: str, args) -> tuple:
        """The instructions op(*a) for `a` among the candidates `args` (a tuple of
        instructions each), () if the trace has none; those found are kept in `seen`
        (the partials' intermediate values, and the partials). On constants alone,
        the constant the builder folds it into (hypot3(x, y, 2)'s 2·2)."""
        if not all(args):
            return ()
        if all(a[0] in self.values for a in args):
            with np.errstate(all="ignore"):
                return self.const(float(OPS[op].evaluate(*(np.float64(self.values[a[0]]) for a in args))))
        found = tuple(dict.fromkeys(i for a in itertools.product(*args) for i in self.by_key.get(self._key(op, a), ())))
        self.seen.update(found)
        return found


def _partials(ix: _Index, opname: str, i: int, args, divided: bool) -> tuple[list, set]:
    """The instruction of each partial of the op `i` on `args` (None where absent), by
    its _pattern (`divided` or not) with the arguments and the op in their places; and
    those found of the pattern's operations on the arguments alone (x·x in hypot3's: a
    user's x**2 may be that instruction too)."""
    instrs, out, partials, direct = _pattern(opname, divided)
    at: list = []   # per pattern instruction, the trace's candidates
    for j, (op, a, attrs) in enumerate(instrs):
        if j < 3:
            at.append((args[j],))
        elif j == out:
            at.append((i,))
        elif op == "const":
            at.append(ix.const(dict(attrs)["value"]))
        else:
            at.append(() if attrs else ix.find(op, tuple(at[k] for k in a)))
    return [at[p][0] if at[p] else None for p in partials], {t for j in direct for t in at[j]}


def nary_rows(instrs) -> dict[int, tuple]:
    """shared_exps' entries for each hypot3 and logaddexp3 of `instrs` whose partials'
    intermediate values nothing else reads (so that no line computes them: in a Hessian
    the trace reads them again, and its own partials, not the rows', then go with them;
    an operation on the op's arguments alone, x·x, may have other readers: its line
    stays for them, and the rest still go):
    {instruction: (the op's instruction, None, its rows helper, "args", row)}, the op
    itself row 0, the partial in argument j row j + 1. A partial that two arguments
    share (hypot3(x, x, y)) takes the first one's row: the rows are equal."""
    ix, entries, found = None, {}, []
    for i, ins in enumerate(instrs):
        call = _ROWS.get(ins.op)
        if call is None:
            continue
        ix = ix or _Index(instrs)
        ix.seen = set()
        rows = {}
        # (hypot3's partials as ops where the trace has them, else divided: c_forms)
        divided = ins.op == "hypot3" and not ix.guards
        partials, direct = _partials(ix, ins.op, i, ins.args, divided)
        for j, p in enumerate(partials):
            if p is not None and p not in rows and p not in entries:
                rows[p] = j + 1
        if rows:
            found.append((i, call, rows, ix.seen - set(rows) - direct))
    if not found:
        return entries
    readers = _readers(instrs, set().union(*(inner for *_, inner in found)))
    for i, call, rows, inner in found:
        if all(r in inner or r in rows for v in inner for r in readers[v]):
            entries[i] = (i, None, call, "args", 0)
            entries.update({p: (i, None, call, "args", row) for p, row in rows.items()})
    return entries


def _readers(instrs, wanted: set) -> dict:
    """{i: the instructions that read i} for the instructions `wanted`."""
    readers: dict = {i: [] for i in wanted}
    for j, ins in enumerate(instrs):
        for a in ins.args:
            if a in readers:
                readers[a].append(j)
    return readers


__all__ = ["NARY_HELPERS", "NARY_OPS", "nary_rows"]
