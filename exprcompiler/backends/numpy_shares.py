"""The NumPy backend's shared work between a value and its derivative: which
instructions of a trace are computed together (one exp, one call giving two or three
results), decided before numpy_render.NumpyRenderer spells them.

Where it sits: numpy_backend.generated calls shared_exps (and hoist_shared, share_logs,
dead_rows) on the gradient trace before rendering; the runtime helpers named in
FUSED_HELPERS compute what the entries say (runtime_exps.py, runtime_log1p.py,
runtime_tanh.py, runtime_elementwise.py).

The patterns:
- `shared_exps`: the sigmoid, softplus and logaddexp of the same u (up to sign) are all
  computed from one exp of u, most of their cost; where a trace holds two or more of them
  (softplus(x) and its gradient sigmoid(x); sigmoid(x) and sigmoid(-x)), the exp is
  computed once on a line of its own, `e1 = exp_quiet(x)`, and each takes it:
  `v1 = softplus_of_exp(x, e1)`, `x_bar = sigmoid_of_exp(e1)` (runtime.py: softplus(x)'s
  and sigmoid(x)'s numbers; sigmoid(-x) within an ulp or two of its own call's); a
  softplus and its sigmoid alone are the rows of one `p1 = softplus_pair(x)`, those
  numbers with one test of x's bounds instead of three reductions of the exp.
  logaddexp's a - b is computed once (`hoist_shared` moves the derivative's up), and
  its partial sigmoid(-(a - b)) is sigmoid_neg_e(t1, e1), without the array -(a - b).
  Without a softplus the exp is of u itself, not -u: 1 - sigmoid(x) rewritten,
  sigmoid(-x), with its derivative's sigmoid(x) is `p1 = sigmoid_pair_of_exp_at(x, e1)`,
  e1 = exp_quiet(x), and -x has no line.
- softplus(u) and softplus(-u) (log(sigmoid(z)) and log(1 - sigmoid(z)) rewritten, the
  binary cross-entropy) share e = exp(-|u|) and one log1p: `p1 = softplus_pair_e(u, e1)`,
  their sigmoids `sigmoid_pair_e(u, e1)`; where each is read only by a neg (log(sigmoid)
  is -softplus(-u)), the negs are the rows, `p1 = neg_softplus_pair_e(u, e1)`, and the
  softpluses and -u have no line (`_both_signs`).
- Two results of one call (`_pair`): where sigmoid(u) and sigmoid(-u) share an exp (a
  sigmoid's value and derivative; logaddexp's two partials), one call computes both, a
  tuple `p1 = sigmoid_pair_of_exp(e1)` (or `sigmoid_pair_e(t1, e1)`), each read by
  index, `v1 = p1[0]`: the two calls' bits, one 1 + E and a call fewer. expm1(x) and the
  exp(x) of its derivative likewise, `p1 = expm1_pair(x)`: where expm1 takes exp(x) - 1,
  the derivative is that exp(x), no pass of its own. logaddexp(a, b) with its two
  partials and nothing else of a - b: `p1 = logaddexp_rows(a, b)`, three rows, and the
  partials' a - b, tie tests and wheres are not written (the helper gives 0.5 at ties; the
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
  (runtime.log1p's numbers, which computes the same w). log(1 - y) rewritten,
  log1p(0.0 - y), takes w = 1 - y with no 0.0 - y: `w1 = 1.0 - y`,
  `v1 = log1m_of_diff(y, w1)`, log(w1) where that is within a few ulps (the naive
  form's numbers and passes there), log1p's numbers nearer y = 0.
- 1 - exp(x) rewritten, 0.0 - expm1(x), with the exp(x) of its derivative:
  `p1 = neg_expm1_pair(x)`, 1 - exp(x) where expm1 takes exp(x) - 1 (the same bits),
  with no expm1 line.
- Lines that only shared spellings would read (the -x of a sigmoid(-x) that a pair takes
  from exp(x), the expm1 and 0.0 - y above) are not written: `dead_rows`.
- `share_logs`: xlogy(x, y) and the log(y) of its derivative share the log.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Optional

import numpy as np

from ..trace.ir import Instr, Trace
from ..trace.ir_trace import instructions
from ..trace.render_bulk import OpCodes
from ..ufunc_loops import SIMD
from .numpy_nary import NARY_HELPERS, NARY_OPS, nary_rows


FUSED_HELPERS = ("where_rare", "where_rare_kept", "exp_quiet", "sigmoid_of_exp", "sigmoid_neg_of_exp",
                 "softplus_of_exp", "exp_neg_abs", "sigmoid_e", "sigmoid_neg_e", "softplus_e", "logaddexp_e",
                 "exp_neg2abs", "tanh_of_exp", "sech2_of_exp", "sech2_of_tanh", "log1p_of_sum", "sigmoid_pair_of_exp",
                 "sigmoid_pair_e", "expm1_pair", "neg_expm1_pair", "logaddexp_rows", "log1mexp_pair", "log1mexp_rows",
                 "log1mexp_slopes", "log1m_of_diff", "softplus_pair", "softplus_pair_e", "neg_softplus_pair_e",
                 "sigmoid_pair_of_exp_at") + NARY_HELPERS


def shared_exps(trace: Trace, ops: Optional[set[str]] = None, codes: Optional[OpCodes] = None) -> dict[int, tuple]:
    """{instruction: (k, exp helper, call, passes its arguments: True, False, or "inner":
    the argument's own, the u of a sigmoid(-u)[, row])} for the sigmoids,
    softpluses and logaddexps that share one exp of the same u with another (u the
    argument under a neg, if one; for logaddexp(a, b) the trace's a - b or b - a, as its
    derivative sigmoid(a - b) has it); k is the instruction the exp is taken of. Also
    tanh and sech2 of the same x (_tanh_group), and log1p(x) with the 1 + x that comes
    after it (shared_sums; its exp helper is "": the line is `w1 = 1.0 + x`). An entry
    with a row is one of two results of one call (_pair): sigmoid(u) and sigmoid(-u)
    (sigmoid_pair_of_exp), expm1(x) and exp(x) (expm1_pair), log1mexp(x) and its slope
    log1mexp_slope(x), the op table's derivative (log1mexp_slopes), or a user's
    expm1(0.0 - x) beside it (log1mexp_pair; log1mexp_rows where the derivative is 1.0
    over that expm1, a third row).
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
        _share_exps(instrs, "logaddexp" in ops, shared, codes, {v for _, v in trace.outputs})
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
        shared.update(_expm1_pairs(instrs, {v for _, v in trace.outputs}))
        if "log1mexp" in ops:
            shared.update(_log1mexp_pairs(instrs, shared))
    if {"log1mexp", "log1mexp_slope"} <= ops:
        shared.update(_log1mexp_slopes(instrs, shared))
    if ops & NARY_OPS:   # hypot3, logaddexp3 and their partials: one rows call (numpy_nary)
        shared.update(nary_rows(instrs))
    return shared


def _expm1_pairs(instrs, outputs: set) -> dict[int, tuple]:
    """shared_exps' entries for expm1(x) and the exp(x) of its derivative (the op
    table's): one expm1_pair(x), whose derivative row costs no pass where the value is
    exp(x) - 1 (runtime_log1p.expm1_pair); or, where the expm1 is read only by a
    0.0 - expm1(x) (1 - exp(x) rewritten), that and the exp from one neg_expm1_pair(x),
    1 - exp(x) there, and the expm1 has no line (dead_rows)."""
    exps = {ins.args[0]: j for j, ins in enumerate(instrs) if ins.op == "exp"}
    mine = {i: ins.args[0] for i, ins in enumerate(instrs) if ins.op == "expm1" and ins.args[0] in exps}
    readers: dict[int, list[int]] = {i: [] for i in mine}
    for j, ins in enumerate(instrs):
        for a in ins.args:
            if a in readers:
                readers[a].append(j)
    pairs = {}
    for i, x in mine.items():
        j = readers[i][0] if len(readers[i]) == 1 and i not in outputs else None
        if j is not None and instrs[j].op == "sub" and instrs[j].args[1] == i and plus_zero(instrs[instrs[j].args[0]]):
            pairs[j] = (x, None, "neg_expm1_pair", False, 0)
            pairs[exps[x]] = (x, None, "neg_expm1_pair", False, 1)
        else:
            pairs[i] = (x, None, "expm1_pair", False, 0)
            pairs[exps[x]] = (x, None, "expm1_pair", False, 1)
    return pairs


def plus_zero(ins: Instr) -> bool:
    """Whether the instruction is the constant +0.0."""
    return ins.op == "const" and ins.value == 0.0 and np.signbit(ins.value) == 0


def _log1mexp_pairs(instrs, shared: dict) -> dict[int, tuple]:
    """shared_exps' entries for log1mexp(x) and the expm1(0.0 - x) its derivative
    -1/expm1(-x) divides by (the op table's): one log1mexp_pair(x), the value from that
    expm1 with no branch where NumPy's loops are SIMD (within a few ulps of the two
    calls', and as accurate), else the two calls' bits from one split of the points
    (runtime_elementwise.log1mexp_pair). An expm1 that another pair takes already is
    left to it. Where the derivative is 1.0 / expm1(0.0 - x) (a log1mexp at the top of
    the function, whose adjoint is the seed 1.0), that quotient is a third row of one
    log1mexp_rows(x) call: the value's own 1/t where it is -log1p(1/t), so that the
    gradient costs no division of its own."""
    minus = {}   # x -> the expm1 of +0.0 - x
    for m, ins in enumerate(instrs):
        if ins.op == "expm1" and m not in shared:
            d = instrs[ins.args[0]]
            if d.op == "sub":
                if plus_zero(instrs[d.args[0]]):
                    minus.setdefault(d.args[1], m)
    pairs = {}
    for i, ins in enumerate(instrs):
        x = ins.args[0] if ins.op == "log1mexp" else None
        if x in minus and i not in shared:
            pairs[i] = (x, None, "log1mexp_pair", False, 0)
            pairs[minus.pop(x)] = (x, None, "log1mexp_pair", False, 1)
    if pairs:
        _reciprocal_rows(instrs, pairs)
    return pairs


def _log1mexp_slopes(instrs, shared: dict) -> dict[int, tuple]:
    """shared_exps' entries for log1mexp(x) and its slope log1mexp_slope(x) (the op
    table's derivative): one log1mexp_slopes(x) call, the slope from the value's own
    steps (runtime_elementwise: -1/t, the 1/t that the value is -log1p of where NumPy's
    loops are SIMD), so that a gradient costs no expm1 and no division of its own."""
    slopes = {ins.args[0]: j for j, ins in enumerate(instrs) if ins.op == "log1mexp_slope" and j not in shared}
    pairs = {}
    for i, ins in enumerate(instrs):
        if ins.op == "log1mexp" and ins.args[0] in slopes and i not in shared:
            x = ins.args[0]
            pairs[i] = (x, None, "log1mexp_slopes", False, 0)
            pairs[slopes.pop(x)] = (x, None, "log1mexp_slopes", False, 1)
    return pairs


def _reciprocal_rows(instrs, pairs: dict) -> None:
    """_log1mexp_pairs' third rows: each pair's first division of the constant 1.0 by its
    t row becomes row 2 of a log1mexp_rows call (the three rows' entries renamed)."""
    rows = {i: share[0] for i, share in pairs.items() if share[4] == 1}   # t -> x
    found = {}   # x -> the division
    for j, ins in enumerate(instrs):
        if ins.op == "div" and ins.args[1] in rows and _one(instrs, ins.args[0]):
            found.setdefault(rows[ins.args[1]], j)
    for i, (x, exp, _, passes, row) in list(pairs.items()):
        if x in found:
            pairs[i] = (x, exp, "log1mexp_rows", passes, row)
    for x, j in found.items():
        pairs[j] = (x, None, "log1mexp_rows", False, 2)


def _one(instrs, a: int) -> bool:
    """Whether variable a is the constant 1.0 (or a copy of it: the seed of an adjoint)."""
    while instrs[a].op == "copy":
        a = instrs[a].args[0]
    return instrs[a].op == "const" and instrs[a].value == 1.0


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


def _share_exps(instrs, logaddexp: bool, shared: dict, codes: Optional[OpCodes] = None, outputs=frozenset()) -> None:
    """shared_exps' sigmoid, softplus and logaddexp groups, into `shared` (`codes`:
    op_codes of the instructions, if known; `outputs`: the trace's returned variables)."""
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
    if readers:   # and the readers of their readers (the partials' inner wheres)
        readers.update(_readers(instrs, {j for users in readers.values() for j in users} - set(readers)))
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
        if len(set(softplus)) == 2:   # softplus(u) and softplus(-u): one log1p of e = exp(-|u|)
            shared.update(_both_signs(instrs, u, members, outputs))
            continue
        # (u itself, not -u: 1 - sigmoid(u) rewritten, sigmoid(-u), and its derivative's
        # sigmoid(u) then need no array -u; sigmoid(-u) is then exp(-u) where exp(u)
        # overflows, as the call of -u gives it: sigmoid_pair_of_exp_at)
        k = softplus[0] if softplus else u
        at = not softplus and instrs[members[0]].args[0] != u
        mine = {}
        for i in members:
            same = instrs[i].args[0] == k
            if instrs[i].op == "softplus":
                if same:
                    mine[i] = (k, "exp_quiet", "softplus_of_exp", True)
            else:
                mine[i] = (k, "exp_quiet", "sigmoid_of_exp" if same else "sigmoid_neg_of_exp", False)
        if sorted(share[2] for share in mine.values()) == ["sigmoid_of_exp", "softplus_of_exp"]:
            # a softplus and its derivative alone: one softplus_pair(k), no exp line
            shared.update({i: (k, None, "softplus_pair", False, int(share[2] == "sigmoid_of_exp"))
                           for i, share in mine.items()})
        elif len(mine) > 1:
            pair = ("sigmoid_pair_of_exp_at", "k") if at else ("sigmoid_pair_of_exp", False)
            shared.update(_pair(mine, "sigmoid_of_exp", "sigmoid_neg_of_exp", *pair))


def _both_signs(instrs, u: int, members: list[int], outputs) -> dict[int, tuple]:
    """_share_exps' entries for a group with softplus(u) and softplus(-u) (log(sigmoid(z))
    and log(1 - sigmoid(z)) rewritten, the binary cross-entropy's terms): both rows of one
    softplus_pair_e(u, e), e = exp(-|u|), sharing one log1p (and softplus_e's bits), and
    the sigmoids of ±u from the same e (sigmoid_pair_e); -u has no line where only these
    read it (dead_rows). Where each softplus is read only by a neg (-softplus(∓u), as
    log(sigmoid(±u)) is rewritten), those negs are the rows of one neg_softplus_pair_e
    (the same bits, without their passes), and the softpluses have no line."""
    mine, negs = {}, {}
    softplus = [i for i in members if instrs[i].op == "softplus"]
    readers = _readers(instrs, set(softplus))
    if all(len(readers[i]) == 1 and instrs[readers[i][0]].op == "neg" and i not in outputs for i in softplus):
        negs = {i: readers[i][0] for i in softplus}
    for i in members:
        negated = instrs[i].args[0] != u   # (the argument is u or -u)
        if i in negs:
            mine[negs[i]] = (u, "exp_neg_abs", "neg_softplus_pair_e", "k", int(negated))
        elif instrs[i].op == "softplus":
            mine[i] = (u, "exp_neg_abs", "softplus_pair_e", "k", int(negated))
        else:
            mine[i] = (u, "exp_neg_abs", "sigmoid_neg_e" if negated else "sigmoid_e", "inner" if negated else True)
    return _pair(mine, "sigmoid_e", "sigmoid_neg_e", "sigmoid_pair_e", "k")


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
    0.5 at ties, as the derivative's wheres give), each partial the where(eq(a, b),
    where(eq(u, u), s, 0.5), s) of s = sigmoid(±u) that alone reads s and its inner
    where (`readers`: _readers' of the sigmoids and of their readers), whose lines
    (and u's, and the eqs': dead_rows) are then not written. Else {}."""
    lae = next((i for i in members if instrs[i].op == "logaddexp"), None)
    if lae is None or any(i not in readers for i in members if i != lae):
        return {}
    a, b = instrs[lae].args
    entries = {lae: (lae, None, "logaddexp_rows", "args", 0)}
    for i in members:
        if i == lae:
            continue
        users = readers[i]
        if len(users) != 2 or any(instrs[j].op != "where" for j in users):
            return {}
        inner, w = users   # (the inner where comes first: the outer reads it)
        c, kept, other = instrs[w].args
        if kept != inner or other != i or not _is_eq(instrs, c, {a, b}) \
                or not _is_eq(instrs, instrs[inner].args[0], {u}) or instrs[inner].args[1] != i \
                or not _is_const(instrs, instrs[inner].args[2], 0.5) or readers[inner] != [w]:
            return {}
        negated = instrs[instrs[i].args[0]].op == "neg"
        first = instrs[u].args == (a, b)   # sigmoid(u) is ∂/∂a where u = a - b
        entries[w] = (lae, None, "logaddexp_rows", "args", 1 if first != negated else 2)
    return entries if len(entries) == 3 and {e[4] for e in entries.values()} == {0, 1, 2} else {}


def _is_eq(instrs, c: int, args: set) -> bool:
    """Whether instruction c is eq of the variables `args` (one for eq(u, u))."""
    return instrs[c].op == "eq" and set(instrs[c].args) == args


def _is_const(instrs, c: int, value: float) -> bool:
    return instrs[c].op == "const" and instrs[c].value == value


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
    """The instructions no line needs: read only by shared spellings that do not read
    them (a pair's rows read their call's result; sigmoid_of_exp reads the exp,
    sigmoid_neg_e the u under its neg, log1m_of_diff and its w line the y of 0.0 - y;
    logaddexp_rows' partials read neither their where's eq nor its sigmoid), not by an
    exp's or a pair call's line, not returned; then what only those read. They are not
    named, so no line is written: the -x of a sigmoid(-x) that a pair computes from
    exp(x), neg_expm1_pair's expm1, logaddexp's a - b and eq where its rows are one call.
    `uses`: use_counts of the trace (a list or an array)."""
    instrs = trace.instrs
    unread: dict[int, int] = {}   # instruction -> its uses that no spelling makes
    kept = set()                  # read by a shared line: an exp's k, a pair call's arguments
    for i, share in shared.items():
        k, exp, call, passes = share[:4]
        if call is None:   # spelled as its op
            continue
        args = instrs[i].args
        if exp:
            kept.add(k)
        if len(share) > 4:   # a row: its call reads k's arguments, k, or k's exp
            kept.update(instrs[k].args if passes == "args" else (k,) if passes == "k" or exp is None else ())
        elif passes is True:
            continue
        elif passes == "inner":   # (the argument's last: the u of -u, the y of 0.0 - y)
            kept.update(instrs[a].args[-1] for a in args)
            if exp == "":   # the w line, 1.0 - y, does not read 0.0 - y either
                unread[args[0]] = unread.get(args[0], 0) + 1
        for a in args:
            unread[a] = unread.get(a, 0) + 1
    kept.update(v for _, v in trace.outputs)   # (read by the return: counted in uses, but said here too)
    dead, stack = [], [a for a, n in unread.items() if n == uses[a]]
    while stack:
        a = stack.pop()
        if a in shared or a in kept or instrs[a].op in ("input", "const"):
            continue
        dead.append(a)
        for b in instrs[a].args:
            unread[b] = unread.get(b, 0) + 1
            if unread[b] == uses[b]:
                stack.append(b)
    return dead


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
    of k follows the line that computes it there. Where x is 0.0 - y (log(1 - y)
    rewritten) read by those two alone, (k, "", "log1m_of_diff", "inner"): w = 1.0 - y
    is computed on its line, the log takes y and w, and 0.0 - y has no line (dead_rows)."""
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
    differences = {}   # 0.0 - y -> its log1p
    for i in shared:
        d = instrs[i].args[0]
        if instrs[d].op == "sub" and plus_zero(instrs[instrs[d].args[0]]):
            differences[d] = i
    if differences:   # (rare: the readers of those only)
        readers = _readers(instrs, set(differences))
        outputs = {v for _, v in trace.outputs}
        for d, i in differences.items():
            if sorted(readers[d]) == [i, shared[i][0]] and d not in outputs:
                shared[i] = (shared[i][0], "", "log1m_of_diff", "inner")
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


__all__ = ["FUSED_HELPERS", "dead_rows", "hoist_shared", "plus_zero", "share_logs", "shared_exps", "shared_sums"]
