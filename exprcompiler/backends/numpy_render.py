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
  itself unless c holds somewhere (a reduction instead of a pass and an array).

And some that share work between a value and its derivative:
- `shared_exps`: the sigmoid, softplus and logaddexp of the same u (up to sign) are all
  computed from one exp of u, most of their cost; where a trace holds two or more of them
  (softplus(x) and its gradient sigmoid(x); sigmoid(x) and sigmoid(-x)), the exp is
  computed once on a line of its own, `e1 = exp_quiet(x)`, and each takes it:
  `v1 = softplus_of_exp(x, e1)`, `x_bar = sigmoid_of_exp(e1)` (runtime.py: softplus(x)'s
  and sigmoid(x)'s numbers; sigmoid(-x) within an ulp or two of its own call's).
  logaddexp's a - b is computed once (`hoist_shared` moves the derivative's up), and
  its partial sigmoid(-(a - b)) is sigmoid_neg_e(t1, e1), without the array -(a - b).
- Two results of one call (`_pair`): where sigmoid(u) and sigmoid(-u) share an exp (a
  sigmoid's value and derivative; logaddexp's two partials), one call computes both, a
  tuple `p1 = sigmoid_pair_of_exp(e1)` (or `sigmoid_pair_e(t1, e1)`), each read by
  index, `v1 = p1[0]`: the two calls' bits, one 1 + E and a call fewer. expm1(x) and the
  exp(x) of its derivative likewise, `p1 = expm1_pair(x)`: where expm1 takes exp(x) - 1,
  the derivative is that exp(x), no pass of its own. logaddexp(a, b) with its two
  partials and nothing else of a - b: `p1 = logaddexp_rows(a, b)`, three rows, and the
  partials' a - b, tie test and where are not written (the helper gives 0.5 at ties; the
  naive form's numbers where that is accurate, the stable form's elsewhere).
- tanh(x) and its derivative sech2(x) (the stable form of 1 - tanh(x)**2): where
  np.tanh's loop is SIMD (ufunc_loops.SIMD), `v1 = np.tanh(x)` and
  `x_bar = sech2_of_tanh(x, v1)`, 1 - t² where that is accurate (np.tanh and two passes:
  the naive form's cost and numbers there); else they share w = exp(-2|x|):
  `e1 = exp_neg2abs(x)`, `v1 = tanh_of_exp(x, e1)`, `x_bar = sech2_of_exp(e1)`; sech2's
  numbers either way, and tanh's within two ulps or so (np.tanh's own where
  |tanh x| < 1/2): an exp and a few passes instead of a scalar np.tanh and an exp.
- log1p(x) and the 1 + x of its derivative 1/(1 + x) share w = 1 + x:
  `w1 = 1.0 + x`, `v1 = log1p_of_sum(x, w1)`, and the derivative divides by w1
  (runtime.log1p's numbers, which computes the same w).
- `share_logs`: xlogy(x, y) and the log(y) of its derivative share the log.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Optional

import numpy as np

from .. import ops as _ops
from ..tensor_rules import attr_text
from ..trace.ir import Instr, Trace
from ..trace.ir_trace import instructions
from ..trace.render import Renderer, Spelling, format_op, use_counts
from ..trace.render_bulk import OpCodes
from ..ufunc_loops import SIMD

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


FUSED_HELPERS = ("where_rare", "exp_quiet", "sigmoid_of_exp", "sigmoid_neg_of_exp", "softplus_of_exp",
                 "exp_neg_abs", "sigmoid_e", "sigmoid_neg_e", "softplus_e", "logaddexp_e", "exp_neg2abs",
                 "tanh_of_exp", "sech2_of_exp", "sech2_of_tanh", "log1p_of_sum", "sigmoid_pair_of_exp",
                 "sigmoid_pair_e", "expm1_pair", "logaddexp_rows", "log1mexp_pair")


def shared_exps(trace: Trace, ops: Optional[set[str]] = None, codes: Optional[OpCodes] = None) -> dict[int, tuple]:
    """{instruction: (k, exp helper, call, passes its arguments: True, False, or "inner":
    the argument's own, the u of a sigmoid(-u)[, row])} for the sigmoids,
    softpluses and logaddexps that share one exp of the same u with another (u the
    argument under a neg, if one; for logaddexp(a, b) the trace's a - b or b - a, as its
    derivative sigmoid(a - b) has it); k is the instruction the exp is taken of. Also
    tanh and sech2 of the same x (_tanh_group), and log1p(x) with the 1 + x that comes
    after it (shared_sums; its exp helper is "": the line is `w1 = 1.0 + x`). An entry
    with a row is one of two results of one call (_pair): sigmoid(u) and sigmoid(-u)
    (sigmoid_pair_of_exp), expm1(x) and exp(x) (expm1_pair), log1mexp(x) and the
    expm1(0.0 - x) of its derivative (log1mexp_pair).
    Where a logaddexp is among them, e = exp(-|u|) (exp_neg_abs), as logaddexp needs:
    runtime.sigmoid_e, softplus_e, logaddexp_e. Otherwise E = exp(±u) (exp_quiet), ± as
    the softpluses have it: sigmoid(±u) = E/(1 + E), sigmoid(∓u) = 1/(1 + E),
    softplus(±u) = log1p(E): two cheap passes where sigmoid_e takes four (a softplus
    of the other sign keeps its own call). `ops`: the trace's ops, and `codes` its
    op_codes, if known."""
    instrs = instructions(trace)   # (a few items: a trace held as columns makes no tuple of them all)
    if ops is None:   # one pass; the passes below only where they can find something
        ops = set(map(itemgetter(0), instrs))
    shared: dict[int, tuple] = {}
    if ops & {"logaddexp", "sigmoid", "softplus"}:
        _share_exps(instrs, "logaddexp" in ops, shared, codes)
    if {"tanh", "sech2"} <= ops:
        tanh: dict[int, list[int]] = {}
        for i, ins in enumerate(instrs):
            if ins.op in ("tanh", "sech2"):
                tanh.setdefault(ins.args[0], []).append(i)
        for k, members in tanh.items():
            if {instrs[i].op for i in members} == {"tanh", "sech2"}:
                shared.update(_tanh_group(instrs, k, members))
    if "log1p" in ops:
        shared.update(shared_sums(trace))
    if "expm1" in ops:
        shared.update(_expm1_pairs(instrs))
        if "log1mexp" in ops:
            shared.update(_log1mexp_pairs(instrs, shared))
    return shared


def _expm1_pairs(instrs) -> dict[int, tuple]:
    """shared_exps' entries for expm1(x) and the exp(x) of its derivative (the op
    table's): one expm1_pair(x), whose derivative row costs no pass where the value is
    exp(x) - 1 (runtime_log1p.expm1_pair)."""
    exps = {ins.args[0]: j for j, ins in enumerate(instrs) if ins.op == "exp"}
    pairs = {}
    for i, ins in enumerate(instrs):
        if ins.op == "expm1" and ins.args[0] in exps:
            x = ins.args[0]
            pairs[i] = (x, None, "expm1_pair", False, 0)
            pairs[exps[x]] = (x, None, "expm1_pair", False, 1)
    return pairs


def _log1mexp_pairs(instrs, shared: dict) -> dict[int, tuple]:
    """shared_exps' entries for log1mexp(x) and the expm1(0.0 - x) its derivative
    -1/expm1(-x) divides by (the op table's): one log1mexp_pair(x), the two calls' bits
    from one split of the points (runtime_elementwise.log1mexp_pair). An expm1 that
    another pair takes already is left to it."""
    minus = {}   # x -> the expm1 of +0.0 - x
    for m, ins in enumerate(instrs):
        if ins.op == "expm1" and m not in shared:
            d = instrs[ins.args[0]]
            if d.op == "sub":
                zero = instrs[d.args[0]]
                if zero.op == "const" and zero.value == 0.0 and np.signbit(zero.value) == 0:
                    minus.setdefault(d.args[1], m)
    pairs = {}
    for i, ins in enumerate(instrs):
        x = ins.args[0] if ins.op == "log1mexp" else None
        if x in minus and i not in shared:
            pairs[i] = (x, None, "log1mexp_pair", False, 0)
            pairs[minus.pop(x)] = (x, None, "log1mexp_pair", False, 1)
    return pairs


def _tanh_group(instrs, k: int, members: list[int]) -> dict[int, tuple]:
    """shared_exps' entries for the tanh and sech2 of x = k (one of each: the builder
    keeps one instruction per op and argument). Where np.tanh's loop is SIMD
    (ufunc_loops.SIMD), the sech2 is sech2_of_tanh(x, t): np.tanh and 1 - t² at the naive
    form's cost where that is accurate. A tanh before it keeps its own spelling (call
    None: an entry only to be named) and the sech2 takes its variable (exp None: no line
    of its own); a tanh after it, as the derivative of 1 - tanh(x)**2 has it, is computed
    on a line before the sech2 and named there (exp "", as shared_sums' 1 + x). Else both
    come from w = exp(-2|x|): tanh_of_exp, sech2_of_exp."""
    if not SIMD["tanh"]:
        return {i: (k, "exp_neg2abs", "tanh_of_exp" if instrs[i].op == "tanh" else "sech2_of_exp",
                    instrs[i].op == "tanh") for i in members}
    t = next(i for i in members if instrs[i].op == "tanh")
    s = next(i for i in members if instrs[i].op == "sech2")
    if t < s:
        return {t: (t, None, None, True), s: (t, None, "sech2_of_tanh", True)}
    return {s: (t, "", "sech2_of_tanh", True)}


_EXP_USERS = frozenset(("logaddexp", "sigmoid", "softplus"))


def _share_exps(instrs, logaddexp: bool, shared: dict, codes: Optional[OpCodes] = None) -> None:
    """shared_exps' sigmoid, softplus and logaddexp groups, into `shared` (`codes`:
    op_codes of the instructions, if known)."""
    differences = {}
    for i, ins in enumerate(instrs if logaddexp else ()):
        if ins.op == "sub":
            differences.setdefault(ins.args, i)
    groups: dict[int, list[int]] = {}
    if codes is None:
        members = compress(range(len(instrs)), map(_EXP_USERS.__contains__, map(itemgetter(0), instrs)))   # in C
    else:
        members = np.flatnonzero(codes.among(*_EXP_USERS)).tolist()
    for i in members:
        ins = instrs[i]
        if ins.op == "logaddexp":
            u = differences.get(ins.args, differences.get(ins.args[::-1]))
        else:
            u = ins.args[0]
            u = instrs[u].args[0] if instrs[u].op == "neg" else u
        if u is not None:
            groups.setdefault(u, []).append(i)
    # logaddexp(a, b) with its two partials only: the readers of those sigmoids, one pass
    triples = [m for m in groups.values() if sorted(instrs[i].op for i in m) == ["logaddexp", "sigmoid", "sigmoid"]]
    readers = _readers(instrs, {i for m in triples for i in m if instrs[i].op == "sigmoid"}) if triples else {}
    for u, members in groups.items():
        if len(members) < 2:   # (most: a sigmoid alone; shares nothing)
            continue
        ops = {instrs[i].op for i in members}
        if "logaddexp" in ops:
            rows = _logaddexp_rows(instrs, u, members, readers) if len(members) == 3 else {}
            if rows:
                shared.update(rows)
                continue
            calls = {"sigmoid": "sigmoid_e", "softplus": "softplus_e", "logaddexp": "logaddexp_e"}
            mine = {i: (u, "exp_neg_abs", calls[instrs[i].op], True) for i in members}
            for i in members:   # sigmoid(-u) as sigmoid_neg_e(u, e): no array -u
                if instrs[i].op == "sigmoid" and instrs[instrs[i].args[0]].op == "neg":
                    mine[i] = (u, "exp_neg_abs", "sigmoid_neg_e", "inner")
            shared.update(_pair(mine, "sigmoid_e", "sigmoid_neg_e", "sigmoid_pair_e", "k") if len(members) > 1
                          else {})
            continue
        softplus = [instrs[i].args[0] for i in members if instrs[i].op == "softplus"]
        k = softplus[0] if softplus else instrs[members[0]].args[0]
        mine = {}
        for i in members:
            same = instrs[i].args[0] == k
            if instrs[i].op == "softplus":
                if same:
                    mine[i] = (k, "exp_quiet", "softplus_of_exp", True)
            else:
                mine[i] = (k, "exp_quiet", "sigmoid_of_exp" if same else "sigmoid_neg_of_exp", False)
        if len(mine) > 1:
            shared.update(_pair(mine, "sigmoid_of_exp", "sigmoid_neg_of_exp", "sigmoid_pair_of_exp"))


def _readers(instrs, wanted: set[int]) -> dict[int, list[int]]:
    """{i: the instructions that read i} for the instructions `wanted`."""
    readers: dict[int, list[int]] = {i: [] for i in wanted}
    for j, ins in enumerate(instrs):
        for a in ins.args:
            if a in readers:
                readers[a].append(j)
    return readers


def _logaddexp_rows(instrs, u: int, members: list[int], readers: dict) -> dict:
    """shared_exps' entries for logaddexp(a, b) and its two partials, where those are all
    the group holds: the rows 0, 1, 2 of one logaddexp_rows(a, b) (its value, ∂/∂a, ∂/∂b;
    0.5 at ties, as the derivative's where gives), each partial the where(eq(a, b), 0.5,
    sigmoid(±u)) that alone reads the sigmoid (`readers`: _readers'), whose lines (and
    u's, and the eq's: dead_rows) are then not written. Else {}."""
    lae = next((i for i in members if instrs[i].op == "logaddexp"), None)
    if lae is None or any(i not in readers for i in members if i != lae):
        return {}
    a, b = instrs[lae].args
    entries = {lae: (lae, None, "logaddexp_rows", "args", 0)}
    for i in members:
        if i == lae:
            continue
        users = readers[i]
        if len(users) != 1 or instrs[users[0]].op != "where":
            return {}
        w = users[0]
        c, half, _ = instrs[w].args
        if instrs[c].op != "eq" or set(instrs[c].args) != {a, b} or instrs[half].op != "const" \
                or instrs[half].value != 0.5:
            return {}
        negated = instrs[instrs[i].args[0]].op == "neg"
        first = instrs[u].args == (a, b)   # sigmoid(u) is ∂/∂a where u = a - b
        entries[w] = (lae, None, "logaddexp_rows", "args", 1 if first != negated else 2)
    return entries if len(entries) == 3 and {e[4] for e in entries.values()} == {0, 1, 2} else {}


def _pair(mine: dict, first: str, second: str, call: str, passes=False) -> dict:
    """`mine` (shared_exps' entries of one group) with its one `first` and one `second`
    (calls of the same exp) as the rows 0 and 1 of one `call` of the exp (and of k
    before it, `passes` "k"): a pass and a call fewer."""
    rows = {name: [i for i, share in mine.items() if share[2] == name] for name in (first, second)}
    if len(rows[first]) != 1 or len(rows[second]) != 1:
        return mine
    for row, name in enumerate((first, second)):
        i = rows[name][0]
        mine[i] = mine[i][:2] + (call, passes, row)
    return mine


def dead_rows(trace: Trace, shared: dict, uses) -> list[int]:
    """The instructions read only by logaddexp_rows' partials (their where, eq, sigmoid,
    neg and u), which the rows' spelling does not read: not named, so no line is written."""
    instrs = trace.instrs
    rows = [i for i, share in shared.items() if share[2] == "logaddexp_rows" and share[4]]
    if not rows:
        return []
    reads: dict[int, int] = {}
    stack, dead = list(rows), []
    while stack:
        i = stack.pop()
        for a in instrs[i].args:
            reads[a] = reads.get(a, 0) + 1
            if reads[a] == uses[a] and a not in shared and instrs[a].op not in ("input", "const"):
                dead.append(a)
                stack.append(a)
    outputs = {v for _, v in trace.outputs}
    return [i for i in dead if i not in outputs]


def hoist_shared(trace: Trace) -> Trace:
    """The trace with each shared exp's argument (logaddexp's a - b, which its derivative
    computes only after the value) moved up to just before the exp's first user, where
    its arguments allow: the exp then takes the named difference, which the derivative
    uses again, instead of computing a - b a second time. (numpy_backend._prepared
    calls it where the trace has a logaddexp, the only exp whose k can come later.)"""
    moves: dict[int, int] = {}   # k -> the first member, for a k that comes after it
    for i, (k, exp, *_) in sorted(shared_exps(trace).items()):
        if exp and k > i and k not in moves and all(a < i for a in trace.instrs[k].args):
            moves[k] = i
    if not moves:
        return trace
    before: dict[int, list[int]] = {}
    for k, i in sorted(moves.items()):
        before.setdefault(i, []).append(k)
    order = [j for i in range(len(trace.instrs)) if i not in moves for j in before.get(i, []) + [i]]
    new = {old: n for n, old in enumerate(order)}
    return Trace([trace.instrs[o]._replace(args=tuple(new[a] for a in trace.instrs[o].args)) for o in order],
                 [trace.labels[o] for o in order], [(n, new[v]) for n, v in trace.outputs], trace.source)


def shared_sums(trace: Trace) -> dict[int, tuple]:
    """{log1p instruction: (k, "", "log1p_of_sum", True)} where k, 1 + x or x + 1, comes
    later in the trace than log1p(x) (its derivative's, in either mode), so that every use
    of k follows the line that computes it there."""
    instrs = trace.instrs
    one = {i for i, ins in enumerate(instrs) if ins.op == "const" and ins.value == 1.0}
    sums = {}
    for k, ins in enumerate(instrs):
        if ins.op == "add" and len(ins.args) == 2 and (ins.args[0] in one) != (ins.args[1] in one):
            sums.setdefault(ins.args[1] if ins.args[0] in one else ins.args[0], []).append(k)
    shared = {}
    for i, ins in enumerate(instrs):
        if ins.op == "log1p":
            later = [k for k in sums.get(ins.args[0], ()) if k > i]
            if later:
                shared[i] = (later[0], "", "log1p_of_sum", True)
    return shared


def share_logs(trace: Trace) -> Trace:
    """xlogy(x, y), where the trace also takes log(y) (xlogy's own derivative in x is
    log(y)), lowered to where(x == 0, 0.0, x * log(y)) with that one log: the values of
    runtime.xlogy (x * log(y), 0 where x == 0), a log fewer (x*log(x), value and
    gradient: half the time). The log moves up to the xlogy; instructions that become
    identical (x == 0 of the derivative's where) are kept once. (numpy_backend._prepared
    calls it where the trace has an xlogy.)"""
    instrs = trace.instrs
    logs = {ins.args[0]: i for i, ins in enumerate(instrs) if ins.op == "log"}
    if not any(ins.op == "xlogy" and ins.args[1] in logs for ins in instrs):
        return trace
    out: list[Instr] = []
    labels: list = []
    new: list[int] = []
    seen: dict = {}   # (op, args, attrs) of an unlabelled instruction -> its index in out
    moved = {}        # old index of a log moved up -> its new index

    def emit(ins: Instr, label=None) -> int:
        # a constant by its repr, as the Builder keys it: 0.0 == -0.0 (and their
        # hashes agree), so the where's 0.0 was taken for a -0.0 of the trace
        key = (ins.op, ins.args, repr(ins.attrs) if ins.op == "const" else ins.attrs)
        if label is None and ins.op != "input" and key in seen:
            return seen[key]
        out.append(ins)
        labels.append(label)
        if label is None:
            seen[key] = len(out) - 1
        return len(out) - 1

    for i, ins in enumerate(instrs):
        if i in moved:
            new.append(moved[i])
            continue
        ins = ins._replace(args=tuple(new[a] for a in ins.args))
        j = logs.get(instrs[i].args[1]) if ins.op == "xlogy" else None
        if j is None:
            new.append(emit(ins, trace.labels[i]))
            continue
        x, y = ins.args
        if j < i:
            log = new[j]
        else:   # the log comes up here, with its label if it has one
            log = emit(Instr("log", (y,), (), instrs[j].shape), trace.labels[j])
            moved[j] = log
        zero = emit(Instr("const", (), (("value", 0.0),), ()))
        product = emit(Instr("mul", (x, log), (), ins.shape))
        new.append(emit(Instr("where", (emit(Instr("eq", (x, zero), (), out[x].shape)), zero, product), (),
                              ins.shape), trace.labels[i]))
    return Trace(out, labels, [(n, new[v]) for n, v in trace.outputs], trace.source)


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
                 rhs_all=False, slots=None, reads=None, codes=None):
        """`reads`, `codes`: the trace's arguments and op codes, as Renderer takes them."""
        self._ops = set(map(itemgetter(0), trace.instrs)) if codes is None else set(codes.names)
        self._comparisons = not _COMPARISONS.isdisjoint(self._ops)   # masks possible
        # both walk the trace, and only masks and conditions (comparisons) need them
        self._floaty = may_be_python_float(trace) if self._comparisons else None
        self._conditions = _conditions(trace) if self._comparisons else set()
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
        rare = bool(self._conditions) and any(
            ins.op == "where" and ins.args[0] in self._conditions and self._fresh(ins.args[2])
            for ins in self.trace.instrs)
        return names | {"where_rare"} if rare else names

    @property
    def respelled(self) -> set[int]:
        """Instructions spelled without their op's own helper (shared, conditions, their wheres)."""
        wheres = {i for i, ins in enumerate(self.trace.instrs)
                  if ins.op == "where" and ins.args[0] in self._conditions} if self._conditions else set()
        rows = set(dead_rows(self.trace, self._shared, self._uses)) if self._shared else set()
        return {i for i, share in self._shared.items() if share[2]} | self._conditions | wheres | rows

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
                lines.append(f"{self._e_name[k, exp]} = {Renderer._format(self, k)[0]}")
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
            args = [self._texts[self.trace.instrs[a].args[0] if passes == "inner" else a]
                    for a in ins.args] if passes else []
            return f"{call}({', '.join(args + [self._shared_text(k, exp)])})", _ops.PREC_ATOM
        if i in self._sum_name:
            return self._sum_name[i], _ops.PREC_ATOM
        if i in self._conditions:
            return self._boolean(i)
        if ins.op == "where" and ins.args[0] in self._conditions:
            call = "where_rare" if self._fresh(ins.args[2]) else "np.where"
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


__all__ = ["FUSED_HELPERS", "NumpyRenderer", "dead_rows", "hoist_shared", "may_be_python_float", "share_logs",
           "shared_exps"]
