"""The NumPy backend's renderer: patterns of derivative code spelled more cheaply than
the op table's generic spelling, with the same numbers, bit for bit but where said.

Where it sits: numpy_backend.generate renders a trace with it instead of the plain
trace.render.Renderer. A training step of a small network (the `mlp` bench's 64 → 32
→ 1 at batch 64) is a dozen NumPy calls on arrays of a few thousand numbers, where
each call's fixed cost is a good part of its time; these two are in every ReLU
network's gradient:

- A mask, a comparison used only as a factor of a product (relu's adjoint
  g * gt(x, 0.0)), is written `g * (x > 0.0)`: NumPy multiplies by the boolean array
  as by 0.0 and 1.0 (inf and NaN times False give NaN, as times 0.0), so one pass
  and one temporary fewer than runtime.gt's float mask. Not where the other factor
  may be a Python float (a constant, a seed such as v_bar = 1.0, or arithmetic on
  those only): a float times a boolean array is float64, which would turn a float32
  function's adjoints into float64; runtime.gt keeps the array's dtype.
- a sum over axes (a bias's adjoint, see numpy_backend._static_sums) is written
  np.add.reduce(x, axis=...): what np.sum calls for an array, a float or a NumPy
  scalar (the same loop, the same order, the same bits), without np.sum's Python
  layers (about 1 µs a call on this machine's NumPy 2.4). A sum of every element
  keeps np.sum, as the source readers and tests expect.
- A condition, a comparison used only as where's first argument (hypot's and
  xlogy's adjoints: where(eq(r, 0.0), 0.0, x / r)), is the boolean `r == 0.0`, and
  the where is np.where: runtime.where turns its float mask back into a boolean, two
  passes more for the same selection.
- where(c, x, y) with such a condition and y a new array is where_rare(c, x, y): y
  itself unless c holds somewhere (a reduction instead of a pass and an array). So is
  one whose y is an existing array (a named variable, an input) where the where is no
  output and only arithmetic reads it (hypot's adjoint x / where(r == 0.0, 1.0, r)):
  they make new arrays of y and never write to it.
- where(c, where(p == p, p + 0.0, 0.0), p) (pow's and xlogy's derivatives at zeros,
  which keep p's own derivative for second order), with such a c and p a new array
  that nothing else reads, is where_rare_kept(c, p): p itself unless c holds
  somewhere, else p changed at those points only; the inner where, == and + have no
  text (four passes and four arrays fewer).

The patterns that share work between a value and its derivative (a shared exp, two
results of one call) are numpy_shares.py's; this renderer spells what they decide.
"""

from __future__ import annotations

from operator import itemgetter

from .. import ops as _ops
from ..tensor_rules import attr_text
from ..trace.ir import Trace
from ..trace.render import Renderer, Spelling, format_op, use_counts
from .numpy_shares import dead_rows, plus_zero

_COMPARISONS = frozenset(name for name, op in _ops.OPS.items() if op.prec == _ops.PREC_CMP)
_ELEMENTWISE_FLOAT = frozenset(("add", "sub", "mul", "div", "neg", "pow"))

# the comparison itself, in Python's infix form: `x > 0.0` (a boolean array)
_INFIX = Spelling(symbol=lambda op: op.infix, call=lambda op: op.numpy, const=repr,
                  as_call=lambda op: op.infix is None, target="numpy")

# Keys (a statement program's: numpy_backend.generated) are made for the whole trace at
# once (trace/render_bulk.py) from this many instructions; a shorter trace's per
# variable (the same keys), which costs less there: bulk_keys' NumPy calls have a fixed
# cost. The renderer, µs (medians of 15 in a process, the second formula; bulk -> per
# variable): text gradients of 334 instructions 413-678 -> 226-240, 623: 486-526 ->
# 345-351, ~780: 504-521 -> 419-431, 960: 495-551 -> 696-739; deep ~750: 324 -> 322;
# SymPy ~830: 511 -> 446.
KEYS_AT_ONCE_FROM = 900





def may_be_python_float(trace: Trace) -> list[bool]:
    """Per variable: whether generated code can hold it as a Python float rather than an
    array or NumPy scalar of the function's dtype: constants, and +, -, *, /, ** of
    such values only (inputs are arrays, reductions and helpers return NumPy values)."""
    floaty = [False] * len(trace.instrs)
    for i, ins in enumerate(trace.instrs):
        if ins.op == "const":
            floaty[i] = True
        elif ins.op in _ELEMENTWISE_FLOAT or ins.op == "copy":
            floaty[i] = all(map(floaty.__getitem__, ins.args))
    return floaty


class NumpyRenderer(Renderer):
    """trace.render.Renderer with masks and conditions as boolean comparisons, sums over
    axes as np.add.reduce, and shared exps (see the module docstring). `shared`:
    shared_exps of the trace, whose members `named` names; `taken`: the names in use,
    which the e variables avoid."""

    def __init__(self, trace: Trace, spell: Spelling, name_of, named=None, shared=None, taken=(), uses=None,
                 rhs_all=False, slots=None, reads=None, codes=None, dead=None):
        """`reads`, `codes`: the trace's arguments and op codes, as Renderer takes them;
        `dead`: numpy_shares.dead_rows of the trace and `shared`, if known."""
        self._dead = dead
        self._ops = set(map(itemgetter(0), trace.instrs)) if codes is None else set(codes.names)
        self._comparisons = not _COMPARISONS.isdisjoint(self._ops)   # masks possible
        # both walk the trace, and only masks and conditions (comparisons) need them
        self._floaty = may_be_python_float(trace) if self._comparisons else None
        self._conditions = _conditions(trace) if self._comparisons else set()
        self._kept = _kept_wheres(trace, self._conditions, uses) if self._conditions else set()
        self._lent = _lent_wheres(trace, self._conditions) if self._conditions else set()
        self._shared = shared or {}
        self._uses = use_counts(trace) if uses is None and self._shared else uses   # (read for shared exps only)
        self._first: dict[tuple, int] = {}    # (k, exp helper) -> its first user
        self._e_name: dict[tuple, str] = {}   # (k, exp helper) -> the name of its exp
        self._sum_name: dict[int, str] = {}   # k of shared_sums -> its name
        self._pair_name: dict[tuple, str] = {}   # (k, exp helper, call) of a pair -> its name
        counts = {"e": 0, "w": 0, "p": 0}

        def fresh(prefix: str) -> str:
            n = counts[prefix] + 1
            while f"{prefix}{n}" in taken:
                n += 1
            counts[prefix] = n
            return f"{prefix}{n}"

        for i, (k, exp, call, _, *row) in sorted(self._shared.items()):
            if exp is not None and (k, exp) not in self._e_name:
                self._e_name[k, exp], self._first[k, exp] = fresh("e" if exp else "w"), i
                if not exp:
                    self._sum_name[k] = self._e_name[k, exp]
            if row and (k, exp, call) not in self._pair_name:   # its line before its first row's
                self._pair_name[k, exp, call], self._first[k, exp, call] = fresh("p"), i
        super().__init__(trace, spell, name_of, named=named, rhs_all=rhs_all, slots=slots, reads=reads, codes=codes)

    def _bulk_keys(self, slots, reads, codes) -> bool:
        """The keys of the trace at once, where it is long enough for that to pay (see
        KEYS_AT_ONCE_FROM); else False: the per-variable renderer makes the same keys."""
        return len(slots) >= KEYS_AT_ONCE_FROM and super()._bulk_keys(slots, reads, codes)

    def _own_formats(self) -> set[int]:
        """What _format spells otherwise than Renderer._format (a superset will do)."""
        own = set(self._shared) | set(self._sum_name) | self._conditions
        checked = {"where", "mul"} if self._comparisons else set()
        if "sum" in self._ops:
            checked.add("sum")
        if checked:
            own.update(i for i, ins in enumerate(self.trace.instrs) if ins.op in checked)
        return own

    @property
    def helpers(self) -> set[str]:
        """The runtime helpers this renderer's own spellings call."""
        names = {name for _, exp, call, *_ in self._shared.values() for name in (exp, call) if name}   # (None: none)
        # (wheres that no line spells call nothing: xlogx_rows' derivative's)
        dead = self._dead_rows() if self._conditions else set()
        rare = bool(self._conditions) and any(
            ins.op == "where" and ins.args[0] in self._conditions and i not in dead
            and (i in self._lent or self._fresh(ins.args[2])) for i, ins in enumerate(self.trace.instrs))
        if self._kept - dead:
            names = names | {"where_rare_kept"}
        return names | {"where_rare"} if rare else names

    def _dead_rows(self) -> set[int]:
        """numpy_shares.dead_rows of the trace and its shared spellings: no line."""
        return set(self._dead if self._dead is not None
                   else dead_rows(self.trace, self._shared, self._uses) if self._shared else ())

    @property
    def respelled(self) -> set[int]:
        """Instructions spelled without their op's own helper (shared, conditions, their wheres)."""
        wheres = {i for i, ins in enumerate(self.trace.instrs)
                  if ins.op == "where" and ins.args[0] in self._conditions} if self._conditions else set()
        return {i for i, share in self._shared.items() if share[2]} | self._conditions | wheres | self._dead_rows()

    def lines_before(self, i: int) -> list[str]:
        """Statements to emit before i's own: the shared exp before its first user (of k
        itself, or of a - b spelled out where the trace computes it only later), and a
        pair's call before its first row."""
        share = self._shared.get(i)
        if share is None:
            return []
        k, exp, call = share[:3]
        lines = []
        if exp is not None and self._first[k, exp] == i:
            if not exp:   # a shared sum, spelled by its name from here on
                lines.append(f"{self._e_name[k, exp]} = {self._sum_text(k, share[3])}")
            else:
                text = self._texts[k] if k < i else self._format(k)[0]
                lines.append(f"{self._e_name[k, exp]} = {exp}({text})")
        if len(share) > 4 and self._first[k, exp, call] == i:
            if share[3] == "args":   # logaddexp_rows(a, b): k is the logaddexp
                args = [self._texts[a] for a in self.trace.instrs[k].args]
                lines.append(f"{self._pair_name[k, exp, call]} = {call}({', '.join(args)})")
                return lines
            args = [self._texts[k]] if share[3] == "k" else []
            lines.append(f"{self._pair_name[k, exp, call]} = {call}({', '.join(args + [self._shared_text(k, exp)])})")
        return lines

    def _sum_text(self, k: int, passes) -> str:
        """The right-hand side of a shared sum's line: k, 1 + x or x + 1, as it is, or
        (`passes` "inner": x is 0.0 - y, which has no line) as 1 - y, the same bits (0.0 - y
        is -y but for the sign of a zero, which 1 + ±0 does not keep)."""
        if passes != "inner":
            return Renderer._format(self, k)[0]
        instrs = self.trace.instrs
        one, x = sorted(instrs[k].args, key=lambda a: instrs[a].op != "const")
        return format_op(_ops.OPS["sub"], [self.expr(one), self.expr(instrs[x].args[1])], self.spell)[0]

    def _shared_text(self, k: int, exp) -> str:
        """What a shared call takes after its own arguments: k's exp, or k itself."""
        return self._texts[k] if exp is None else self._e_name[k, exp]

    def _format(self, i: int) -> tuple[str, int]:
        ins = self.trace.instrs[i]
        if i in self._shared:
            k, exp, call, passes, *row = self._shared[i]
            if call is None:   # named only: a tanh that a sech2_of_tanh takes
                return Renderer._format(self, i)
            if row:   # a row of a pair, computed on a line of its own (lines_before)
                return f"{self._pair_name[k, exp, call]}[{row[0]}]", _ops.PREC_ATOM
            args = [self._texts[self.trace.instrs[a].args[-1] if passes == "inner" else a]
                    for a in ins.args] if passes else []
            return f"{call}({', '.join(args + [self._shared_text(k, exp)])})", _ops.PREC_ATOM
        if i in self._sum_name:
            return self._sum_name[i], _ops.PREC_ATOM
        if i in self._conditions:
            return self._boolean(i)
        if ins.op == "where" and ins.args[0] in self._conditions:
            if i in self._kept:
                return f"where_rare_kept({self._texts[ins.args[0]]}, {self._texts[ins.args[2]]})", _ops.PREC_ATOM
            call = "where_rare" if i in self._lent or self._fresh(ins.args[2]) else "np.where"
            return f"{call}({', '.join(map(self._texts.__getitem__, ins.args))})", _ops.PREC_ATOM
        if ins.op == "mul" and self._comparisons:
            mask = self._mask_arg(ins.args)
            if mask is not None:
                args = [self._boolean(a) if k == mask else self.expr(a) for k, a in enumerate(ins.args)]
                return format_op(_ops.OPS["mul"], args, self.spell)
        elif ins.op == "sum" and dict(ins.attrs).get("axis") is not None:
            attrs = dict(ins.attrs)
            items = [self._texts[ins.args[0]], f"axis={attr_text('axis', attrs['axis'])}"]
            if attrs.get("keepdims"):
                items.append("keepdims=True")
            return f"np.add.reduce({', '.join(items)})", _ops.PREC_ATOM
        return Renderer._format(self, i)   # (not super(): once per line of the source)

    def _fresh(self, a: int) -> bool:
        """Whether variable a is a new array that where_rare may return as it is: written
        inline as arithmetic on an array, or a shared exp's helper used once (a name, a
        view or a float must not be)."""
        ins = self.trace.instrs[a]
        if a in self._shared:   # a helper's new array, named only to come after its exp
            return self._uses[a] == 1
        if a in self._sum_name:   # log1p_of_sum's argument too
            return False
        return not self.named[a] and ins.op in _ELEMENTWISE_FLOAT and not self._floaty[a]

    def _mask_arg(self, args) -> int | None:
        """The position of the product's mask factor, or None."""
        instrs = self.trace.instrs
        masks = [k for k, a in enumerate(args) if instrs[a].op in _COMPARISONS and not self.named[a]]
        if len(masks) != 1:
            return None
        other = args[1 - masks[0]]
        if instrs[other].op in _COMPARISONS or self._floaty[other]:
            return None
        return masks[0]

    def _boolean(self, a: int) -> tuple[str, int]:
        ins = self.trace.instrs[a]
        return format_op(_ops.OPS[ins.op], list(map(self.expr, ins.args)), _INFIX)


def _conditions(trace: Trace) -> set[int]:
    """The comparisons used only as a where's condition (not an output)."""
    instrs = trace.instrs
    uses: dict[int, bool] = {}   # comparison -> every use so far is a condition
    for ins in instrs:
        for k, a in enumerate(ins.args):
            if instrs[a].op in _COMPARISONS:
                uses[a] = uses.get(a, True) and ins.op == "where" and k == 0
    outputs = {v for _, v in trace.outputs}
    return {a for a, only in uses.items() if only and a not in outputs}


def _lent_wheres(trace: Trace, conditions: set[int]) -> set[int]:
    """The where(c, x, y) with c among `conditions` that may return y itself, whatever y
    is: not an output, and read only by arithmetic (_ELEMENTWISE_FLOAT), which makes a
    new array and leaves its arguments as they are."""
    instrs = trace.instrs
    wheres = {i for i, ins in enumerate(instrs) if ins.op == "where" and ins.args[0] in conditions}
    wheres.difference_update(v for _, v in trace.outputs)
    for ins in instrs[min(wheres, default=len(instrs)) + 1:]:   # (their readers come after them)
        if ins.op not in _ELEMENTWISE_FLOAT:
            wheres.difference_update(ins.args)
            if not wheres:
                break
    return wheres


def _kept_wheres(trace: Trace, conditions: set[int], uses=None) -> set[int]:
    """The where(c, where(eq(p, p), add(p, 0.0), 0.0), p) with c among `conditions`
    that where_rare_kept(c, p) may spell: the inner where, eq and add read only there,
    and p a new array (arithmetic on arrays, not a shared helper's) that only they read,
    so that the helper may return it and change it in place. `uses`: use_counts of the
    trace, if known."""
    instrs = trace.instrs
    found = []
    for i, ins in enumerate(instrs):
        if ins.op != "where" or ins.args[0] not in conditions:
            continue
        _, inner, p = ins.args
        w = instrs[inner]
        if w.op != "where" or not plus_zero(instrs[w.args[2]]):
            continue
        e, a = instrs[w.args[0]], instrs[w.args[1]]
        if (e.op == "eq" and e.args == (p, p) and a.op == "add" and a.args[0] == p
                and plus_zero(instrs[a.args[1]]) and instrs[p].op in _ELEMENTWISE_FLOAT):
            found.append((i, inner, w.args[0], w.args[1], p))
    if not found:
        return set()
    if uses is None:
        uses = use_counts(trace)
    floaty = may_be_python_float(trace)
    # (p: twice by the eq, once by the add and by the outer where)
    return {i for i, inner, e, a, p in found
            if uses[inner] == uses[e] == uses[a] == 1 and uses[p] == 4 and not floaty[p]}


__all__ = ["NumpyRenderer", "may_be_python_float"]
