"""The NumPy backend's rows of the three-term stable forms: where a trace holds hypot3(x, y,
z) or logaddexp3(a, b, c) and the partials the op table builds for it, one call of
runtime.hypot3_rows or runtime.logaddexp3_rows gives the value (row 0) and the partials
(rows 1-3), at the naive form's cost where that is accurate, instead of the partials'
own passes (hypot3's comparisons, scalings and products; logaddexp3's maximum, exps and
selections, some twenty passes).

Where it sits: numpy_shares.shared_exps adds these entries to its own (the same form,
(k, None, call, "args", row): numpy_render spells the call `p1 = hypot3_rows(x, y, z)`
before its first row and each row `p1[row]`; dead_rows then drops the lines only the
partials read). The partials are found by looking up, instruction by instruction, the
very operations ops_special._over_norm3 and _softmax3 make (the builder makes each once),
so a trace whose partials came out otherwise (a constant argument the builder folded
into them) keeps its own lines.
"""

from __future__ import annotations

from typing import Optional

# the rows helpers generated code may call (names no variable may take)
NARY_HELPERS = ("hypot3_rows", "logaddexp3_rows")
NARY_OPS = frozenset(("hypot3", "logaddexp3"))


class _Index:
    """(op, arguments) -> the instruction, and constant value -> its instruction."""

    def __init__(self, instrs):
        self.by_key: dict = {}
        self.consts: dict = {}
        self.seen: set = set()
        for i, ins in enumerate(instrs):
            if ins.op == "const":
                if ins.shape == ():
                    self.consts.setdefault(float(ins.value).hex(), i)
            elif ins.op != "input" and not ins.attrs:
                self.by_key.setdefault((ins.op, ins.args), i)

    def const(self, value: float) -> Optional[int]:
        return self.consts.get(float(value).hex())

    def find(self, op: str, *args) -> Optional[int]:
        """The instruction op(*args), None if the trace has none; those found are kept
        in `seen` (the partials' intermediate values, and the partials)."""
        i = None if None in args else self.by_key.get((op, args))
        if i is not None:
            self.seen.add(i)
        return i


def _hypot3_partials(ix: _Index, h: int, xs) -> list:
    """The instruction of each partial of hypot3 `h` (None where absent): where(out == 0,
    0, x·k·(1/(out·k))) as _over_norm3 builds it."""
    lo, hi, one, zero = ix.const(2.0 ** -60), ix.const(2.0 ** 60), ix.const(1.0), ix.const(0.0)
    inner = ix.find("where", ix.find("gt", h, hi), lo, one)
    k = ix.find("where", ix.find("lt", h, lo), hi, inner)
    r = ix.find("div", one, ix.find("mul", h, k))
    q = ix.find("eq", h, zero)
    return [ix.find("where", q, zero, ix.find("mul", ix.find("mul", x, k), r)) for x in xs]


def _logaddexp3_partials(ix: _Index, lae: int, xs) -> list:
    """The instruction of each partial of logaddexp3 `lae` (None where absent):
    exp(x - m)·(1/(1 + s)) as _softmax3 builds it."""
    zero, one = ix.const(0.0), ix.const(1.0)
    m = ix.find("maximum", ix.find("maximum", xs[0], xs[1]), xs[2])
    q = [ix.find("eq", x, m) for x in xs]
    e = [ix.find("exp", ix.find("where", qx, zero, ix.find("sub", x, m))) for qx, x in zip(q, xs)]
    s = ix.find("where", q[0], ix.find("add", e[1], e[2]),
                ix.find("where", q[1], ix.find("add", e[0], e[2]), ix.find("add", e[0], e[1])))
    r = ix.find("div", one, ix.find("add", one, s))
    return [ix.find("mul", ex, r) for ex in e]


_FORMS = {"hypot3": ("hypot3_rows", _hypot3_partials), "logaddexp3": ("logaddexp3_rows", _logaddexp3_partials)}


def nary_rows(instrs) -> dict[int, tuple]:
    """shared_exps' entries for each hypot3 and logaddexp3 of `instrs` whose partials'
    intermediate values nothing else reads (so that no line computes them: in a Hessian
    the trace reads them again, and its own partials, not the rows', then go with them):
    {instruction: (the op's instruction, None, its rows helper, "args", row)}, the op
    itself row 0, the partial in argument j row j + 1. A partial that two arguments
    share (hypot3(x, x, y)) takes the first one's row: the rows are equal."""
    ix, entries, found = None, {}, []
    for i, ins in enumerate(instrs):
        form = _FORMS.get(ins.op)
        if form is None:
            continue
        ix = ix or _Index(instrs)
        call, partials = form
        ix.seen = set()
        rows = {}
        for j, p in enumerate(partials(ix, i, ins.args)):
            if p is not None and p not in rows and p not in entries:
                rows[p] = j + 1
        if rows:
            found.append((i, call, rows, ix.seen - set(rows)))
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
